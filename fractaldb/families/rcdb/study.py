"""RCDB's arm of the transfer study (``fractaldb experiment transfer``, docs/training.md)."""

from __future__ import annotations

from ..base import StudyArm

#: arm -> StudyArm: 32 classes at 64 px; the centre offsets, start radii and orbit counts are
#: the script's scaled by 64 / 512 (else two thirds of the images would be empty).
ARMS = {
    "rcdb": StudyArm("rcdb-tiny", ("shard_size=1000", "rcdb.classes=32", "rcdb.instances=100", "rcdb.image_size=64",
                                   "rcdb.start_pos=50", "rcdb.radius_span=12", "rcdb.line_num_span=25"),
                     "RCDB radial contours, 32 classes x 100 instances"),
}
