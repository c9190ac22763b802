"""The colour-fractal family's arm of the transfer study (``fractaldb experiment transfer``,
docs/training.md); the multi-label ``multifractal`` family has none."""

from __future__ import annotations

from ..base import StudyArm

#: arm -> StudyArm of :class:`ColorFractalFamily`: 32 classes at 64 px.
ARMS = {
    "color-fractal": StudyArm("color-fractal-tiny", ("shard_size=1000", "colorfractal.classes=32",
                                                     "colorfractal.instances=100", "colorfractal.image_size=64",
                                                     "colorfractal.points=20000"),
                              "colour sigma-factor fractals on noise backgrounds, 32 classes x 100"),
}
