"""The 1p-frac family: one fractal (a sigma-factor system) and ``classes`` perturbed
copies of it, one image and one label each (Nakamura et al., ECCV'24).

Modules: :mod:`.model` (the base system, the perturbation search and the
render settings).  Rendering is the fractal family's own renderers
(:mod:`fractaldb.families.fractal.render`, :mod:`~fractaldb.families.fractal.render_cuda`)
in official mode.  This module is the family's face to the rest of fractaldb
(:class:`OnePFracFamily`); docs/ofdb-1pfrac.md compares it with the original.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...encode import FORMATS
from ...errors import ConfigError
from ..base import Family, RenderedBlock, setting
from ..fractal.render import CPURenderer
from .model import Perturbation, render_config, search_classes
from . import study

__all__ = ["OnePFracFamily", "OnePFracSettings", "sample_key"]


def sample_key(klass: int) -> str:
    """``pf00042``: 1p-frac class (perturbation) 42."""
    return f"pf{klass:05d}"


@dataclass(frozen=True)
class OnePFracSettings:
    """The ``onepfrac:`` section of a preset (defaults: the paper's 1p-frac, sigma 3.5,
    delta 0.1, 1000 classes, 512x512), plus the dataset seed."""

    classes: int = setting(1000, "Perturbed copies of the base fractal: one image and one label each.",
                           "an integer > 0", lambda v: v > 0)
    delta: float = setting(0.1, "Perturbation: each coefficient a..f of each map times U(1 - delta, 1 + delta).",
                           "a number in (0, 1]", lambda v: 0.0 < v <= 1.0)
    sigma: float = setting(3.5, "Centre of the base system's sigma-factor (sum of s1 + 2 s2 over its maps).",
                           "a number > 0; sigma +- sigma_margin must lie inside (0, 3 x maps)", lambda v: v > 0)
    sigma_margin: float = setting(0.1, "Half-width of the sigma-factor's uniform range.", "a number >= 0",
                                  lambda v: v >= 0)
    maps: int = setting(2, "Maps of the base system.", "an integer in 1..32", lambda v: 1 <= v <= 32)
    fill_rate: float = setting(0.05, "Accept a class when more than this fraction of its image is drawn "
                               "(else redraw its factors).", "a number in [0, 1)", lambda v: 0.0 <= v < 1.0)
    max_attempts: int = setting(1000, "Factor draws per class before the search gives up.", "an integer > 0",
                                lambda v: v > 0)
    image_size: int = setting(512, "Image side in pixels.", "an integer in 16..8192", lambda v: 16 <= v <= 8192)
    points: int = setting(100_000, "Chaos-game points per image.", "an integer >= 2", lambda v: v >= 2)
    image_format: str = setting("png", "Stored image format.", " | ".join(FORMATS), lambda v: v in FORMATS)
    seed: int = 1

    def __post_init__(self):
        lo, hi = self.sigma - self.sigma_margin, self.sigma + self.sigma_margin
        if not 0.0 < lo <= hi < 3 * self.maps:
            raise ConfigError(f"onepfrac sigma {self.sigma} +- {self.sigma_margin} must lie inside (0, "
                              f"{3 * self.maps}) for {self.maps} maps (each map's s1 + 2 s2 is at most 3); "
                              "choose a smaller sigma or margin, or more maps")
        self.render_config()  # size vs pad

    def render_config(self):
        return render_config(self.seed, self.image_size, self.points)


class OnePFracFamily(Family):
    name = "onepfrac"
    summary = "1p-frac: one sigma-factor fractal x perturbed copies (one image and one label each)"
    study_arms = study.ARMS
    settings = OnePFracSettings
    count_key = "classes"
    legacy_keys: dict = {}
    config_types = (OnePFracSettings,)

    def find_classes(self, cfg: OnePFracSettings, workers: int, progress=None) -> list:
        return search_classes(cfg, workers, progress)

    def class_docs(self, classes) -> list:
        return [p.to_dict() for p in classes]

    def classes_from_docs(self, docs) -> list:
        return [Perturbation.from_dict(d) for d in docs]

    def blocks_per_class(self, cfg) -> int:
        return 1

    def images_per_block(self, cfg) -> int:
        return 1

    def channels(self, cfg, classes) -> int:
        return 1

    def sample_key(self, cfg, classes, klass, block, offset):
        return sample_key(klass)

    def sample_meta(self, cfg, classes, klass, block, offset):
        return {"class": klass, "delta": cfg.delta, "seed": cfg.seed}

    def export_path(self, meta, ext):
        k = meta["class"]
        # "perturb-" sorts after the digit-named fractal and the "perlin-" folders,
        # so ImageFolder's sorted order is the label order in mixed datasets too.
        return f"perturb-{k:05d}/perturb-{k:05d}.{ext}"

    cpu_renderer = CPURenderer  # the fractal family's renderers, in official mode
    cuda_renderer = "..fractal.render_cuda.CUDARenderer"

    @staticmethod
    def _jobs(classes, ks):
        # Category id = class index: it names the class's patch-mask stream.
        return [(k, classes[k].ifs, 0) for k in ks]

    def render_blocks(self, renderer, cfg, classes, jobs):
        jobs = list(jobs)
        blocks = renderer.render_many(self._jobs(classes, [k for k, _, _ in jobs])) if jobs else ()
        for (k, b, offsets), block in zip(jobs, blocks):
            yield RenderedBlock(k, b, list(offsets), [block.images[0]] * len(offsets))

    def render_device(self, renderer, cfg, classes, blocks):
        return [(list(range(len(blocks))), renderer.render_many_device(self._jobs(classes, [k for k, _ in blocks])))]

    def preview_images(self, cfg, classes, per_class, limit):
        # A class has one image: ``per_class`` cannot show more.
        renderer = self.create_renderer(cfg)
        ks = range(min(len(classes), limit))
        return [block.images[0].copy() for block in renderer.render_many(self._jobs(classes, ks))]
