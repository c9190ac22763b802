"""RCDB's arm of the transfer study (``fractaldb experiment transfer``, docs/training.md)."""

from __future__ import annotations

from ..base import StudyArm

#: arm -> StudyArm: 32 classes at 64 px (centres and radii scaled down to the small frame).
ARMS = {
    "rcdb": StudyArm("rcdb-tiny", ("shard_size=1000", "rcdb.classes=32", "rcdb.instances=100", "rcdb.image_size=64",
                                   "rcdb.start_pos=24", "rcdb.vertex_num=100"),
                     "RCDB radial contours, 32 classes x 100 instances"),
}
