"""The Perlin family's arms of the transfer study (``fractaldb experiment transfer``,
docs/training.md): Perlin noise alone (in the ``--quick`` study too) and mixed with FractalDB."""

from __future__ import annotations

from ..base import StudyArm

#: arm -> StudyArm: 32 classes at 64 px each.
ARMS = {
    "perlin": StudyArm("perlin-tiny", ("shard_size=1000", "perlin.classes=32", "perlin.instances=100",
                                       "perlin.image_size=64"), "Perlin noise, 32 classes x 100 instances",
                       quick=True, contrast=True),
    "fractal+perlin": StudyArm("fractal+perlin", ("shard_size=1000", "fractal.categories=16", "fractal.image_size=64",
                                                  "fractal.points=20000", "fractal.patches=1", "perlin.classes=16",
                                                  "perlin.instances=100", "perlin.image_size=64"),
                               "16 FractalDB categories + 16 Perlin classes, 100 images each"),
}
