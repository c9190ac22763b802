"""The 3-D fractal family's arm of the transfer study (``fractaldb experiment transfer``, docs/training.md)."""

from __future__ import annotations

from ..base import StudyArm

#: arm -> StudyArm: 32 categories at 64 px.
ARMS = {
    "fractal3d": StudyArm("fractal3d-tiny", ("shard_size=1000", "fractal3d.categories=32", "fractal3d.instances=10",
                                             "fractal3d.n_views=10", "fractal3d.image_size=64"),
                          "MV-FractalDB: 3-D fractals, 32 categories x 10 instances x 10 views"),
}
