"""The 1p-frac family's arm of the transfer study (``fractaldb experiment transfer``,
docs/training.md)."""

from __future__ import annotations

from ..base import StudyArm

#: arm -> StudyArm: 32 classes at 64 px, one image each.
ARMS = {
    "1p-frac": StudyArm("1p-frac-tiny", ("shard_size=1000", "onepfrac.classes=32", "onepfrac.image_size=64",
                                         "onepfrac.points=20000"),
                        "1p-frac: 32 perturbations of one fractal, 1 image each"),
}
