"""The 1p-frac family: one fractal (a sigma-factor system) and ``classes`` perturbed
copies of it, one image and one label each (Nakamura et al., ECCV'24).

Modules: :mod:`.model` (the base system, the perturbation search and the
render settings).  Rendering is the shared IFS renderers
(:mod:`fractaldb.ifs.render`, :mod:`~fractaldb.ifs.render_cuda`)
in official mode.  This module is the family's face to the rest of fractaldb
(:class:`OnePFracFamily`); docs/ofdb-1pfrac.md compares it with the original.

Training: the paper's LPCE ("locally perturbed cross-entropy") is, in the authors' code,
softmax cross-entropy over the ``classes`` perturbations, each its own label -- what the
``1p-frac`` recipe of :mod:`fractaldb.train.config` trains on these labels (``loss: ce``,
Mixup/CutMix soft targets, label smoothing 0.1).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...encode import FORMATS
from ...errors import ConfigError
from ...citations import FRACTALDB, Paper
from ..base import BoundFamily, Family, RenderedBlock, setting
from ...ifs.render import CPURenderer
from .model import PURPOSES, Perturbation, render_config, search_classes
from . import study

__all__ = ["OnePFracFamily", "OnePFracSettings", "OnePFracBound", "sample_key"]


def sample_key(klass: int) -> str:
    """``pf00042``: 1p-frac class (perturbation) 42."""
    return f"pf{klass:05d}"


@dataclass(frozen=True, kw_only=True)
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
    seed: int

    def __post_init__(self):
        lo, hi = self.sigma - self.sigma_margin, self.sigma + self.sigma_margin
        if not 0.0 < lo <= hi < 3 * self.maps:
            raise ConfigError(f"onepfrac sigma {self.sigma} +- {self.sigma_margin} must lie inside (0, "
                              f"{3 * self.maps}) for {self.maps} maps (each map's s1 + 2 s2 is at most 3); "
                              "choose a smaller sigma or margin, or more maps")
        self.render_config()  # size vs pad

    def render_config(self):
        return render_config(self.seed, self.image_size, self.points)


ONEPFRAC_PAPER = Paper("1p-frac", "inproceedings", (
    ("title", "Scaling Backwards: Minimal Synthetic Pre-training?"),
    ("author", "Nakamura, Ryo and Tadokoro, Ryu and Yamada, Ryosuke and Asano, Yuki M. and Laina, Iro and "
               "Rupprecht, Christian and Inoue, Nakamasa and Yokota, Rio and Kataoka, Hirokatsu"),
    ("booktitle", "European Conference on Computer Vision (ECCV)"), ("year", "2024")))


class OnePFracBound(BoundFamily):
    """1p-frac bound to a dataset: each class is one block of one image."""

    settings: OnePFracSettings

    @property
    def blocks_per_class(self) -> int:
        return 1

    @property
    def images_per_block(self) -> int:
        return 1

    @property
    def channels(self) -> int:
        return 1

    def class_docs(self) -> list:
        return [p.to_dict() for p in self.classes]

    def sample_key(self, klass, block, offset):
        return sample_key(klass)

    def sample_meta(self, klass, block, offset):
        return {"class": klass, "delta": self.settings.delta, "seed": self.settings.seed}

    def _jobs(self, ks):
        # Category id = class index: it names the class's patch-mask stream.
        return [(k, self.classes[k].ifs, 0) for k in ks]

    def render_blocks(self, renderer, jobs):
        jobs = list(jobs)
        blocks = renderer.render_many(self._jobs([k for k, _, _ in jobs])) if jobs else ()
        for (k, b, offsets), block in zip(jobs, blocks):
            yield RenderedBlock(k, b, list(offsets), [block.images[0]] * len(offsets))

    def render_device(self, renderer, blocks):
        return [(list(range(len(blocks))), renderer.render_many_device(self._jobs([k for k, _ in blocks])))]

    def preview_images(self, per_class, limit):
        # A class has one image: ``per_class`` cannot show more.
        renderer = self.renderer()
        ks = range(min(len(self.classes), limit))
        return [block.images[0].copy() for block in renderer.render_many(self._jobs(ks))]


class OnePFracFamily(Family):
    name = "onepfrac"
    summary = "1p-frac: one sigma-factor fractal x perturbed copies (one image and one label each)"
    description = "1p-frac: one fractal and perturbed copies of it, one image and one label each"
    papers = (ONEPFRAC_PAPER, FRACTALDB)
    purposes = PURPOSES
    small = {"classes": 3, "image_size": 32, "points": 2000}
    study_arms = study.ARMS
    settings = OnePFracSettings
    count_key = "classes"
    config_types = (OnePFracSettings,)
    cpu_renderer = CPURenderer  # the IFS renderers (fractaldb.ifs), in official mode
    cuda_renderer = "fractaldb.ifs.render_cuda.CUDARenderer"
    bound = OnePFracBound

    def find_classes(self, settings: OnePFracSettings, workers: int, progress=None) -> list:
        return search_classes(settings, workers, progress)

    def classes_from_docs(self, docs) -> list:
        return [Perturbation.from_dict(d) for d in docs]

    def export_path(self, meta, ext):
        k = meta["class"]
        # "perturb-" sorts after the digit-named fractal and the "perlin-" folders,
        # so ImageFolder's sorted order is the label order in mixed datasets too.
        return f"perturb-{k:05d}/perturb-{k:05d}.{ext}"
