"""The 1p-frac family's arms of the transfer study (``fractaldb experiment transfer``,
docs/training.md): 1p-frac, and OFDB beside it.

OFDB is a preset of the fractal family (docs/ofdb-1pfrac.md), listed here so that
the study keeps its arm order (the arms are listed in family registration order,
and the study has always shown the two one-image-per-class arms together, 1p-frac
first): moving it to the fractal family's study.py would move it before ``perlin``.
"""

from __future__ import annotations

from ..base import StudyArm

#: arm -> StudyArm: 32 classes at 64 px, one image each.
ARMS = {
    "1p-frac": StudyArm("1p-frac-tiny", ("shard_size=1000", "onepfrac.classes=32", "onepfrac.image_size=64",
                                         "onepfrac.points=20000"),
                        "1p-frac: 32 perturbations of one fractal, 1 image each"),
    "ofdb": StudyArm("ofdb-1k", ("shard_size=1000", "fractal.categories=32", "fractal.image_size=64",
                                 "fractal.points=20000"), "OFDB: one image per FractalDB category (32 images)"),
}
