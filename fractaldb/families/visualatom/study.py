"""VisualAtom's arm of the transfer study (``fractaldb experiment transfer``, docs/training.md):
32 classes x 100 instances at 64 px, modern mode.  At 64 px the default centre spread and radii
would put most contours outside the frame, so the arm scales them with the image."""

from __future__ import annotations

from ..base import StudyArm

#: arm -> StudyArm.
ARMS = {
    "visualatom": StudyArm("visualatom-tiny", ("shard_size=1000", "visualatom.classes=32", "visualatom.instances=100",
                                               "visualatom.image_size=64", "visualatom.start_pos=32",
                                               "visualatom.radius_min=2", "visualatom.vertices=[50, 200]",
                                               "visualatom.orbits=[1, 40]"),
                           "VisualAtom contours, 32 classes x 100 instances"),
}
