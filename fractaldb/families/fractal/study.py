"""The fractal family's arms of the transfer study (``fractaldb experiment transfer``,
docs/training.md): FractalDB in three renderings, OFDB (one image per category), and the
scaling study's FractalDB.

Every arm has 32 classes rendered at 64 px; the study gives every arm the same
pretraining budget (images x epochs).
"""

from __future__ import annotations

from ...errors import ConfigError
from ..base import StudyArm

_FRACTAL = ("shard_size=1000", "fractal.categories=32", "fractal.image_size=64", "fractal.points=20000",
            "fractal.weights=0.4", "fractal.patches=1", "fractal.flips=4")


def scaled(categories: int) -> StudyArm:
    """FractalDB with ``categories`` classes and 3,200 images in all (25 weights x patches x flips each)."""
    per = 3200 // categories
    patches, flips = (per // 100, 4) if per >= 100 else (1, per // 25)
    if patches * flips * 25 * categories != 3200:
        raise ConfigError(f"the scaling study needs 3200 / categories to be 25 x patches x flips, got {categories}")
    over = tuple(o for o in _FRACTAL if not o.startswith(("fractal.categories", "fractal.patches", "fractal.flips")))
    return StudyArm("tiny", over + ("fractal.sampler=modern", f"fractal.categories={categories}",
                                    f"fractal.patches={patches}", f"fractal.flips={flips}"),
                    f"FractalDB, {categories} categories x {3200 // categories} images")


#: arm -> StudyArm.
ARMS = {
    "fractaldb": StudyArm("tiny", _FRACTAL + ("fractal.sampler=modern",),
                          "FractalDB, official-style patch renders, modern sampler "
                          "(32 categories x 25 weights x 4 flips)", primary=True, scaled=scaled),
    "fractal-point": StudyArm("tiny", _FRACTAL + ("fractal.sampler=modern", "fractal.mode=point"),
                              "FractalDB in point mode (same categories as fractaldb)"),
    "fractal-svd": StudyArm("tiny", _FRACTAL + ("fractal.sampler=svd",),
                            "sigma-factor (svd) sampled fractals, patch mode"),
    "ofdb": StudyArm("ofdb-1k", ("shard_size=1000", "fractal.categories=32", "fractal.image_size=64",
                                 "fractal.points=20000"), "OFDB: one image per FractalDB category (32 images)"),
}
