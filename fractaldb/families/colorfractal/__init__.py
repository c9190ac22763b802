"""Colour fractals of Anderson & Farrell ("Improving Fractal Pre-training", WACV 2022):
two families sharing one package.

* ``colorfractal`` -- single label: classes are sigma-factor systems; an
  instance is the class jittered, windowed, coloured by density and pasted on
  a diamond-square background (:class:`ColorFractalFamily`).
* ``multifractal`` -- multi-label: 1..5 objects (cached class renders) per
  image; the sample's ``.cls`` is its primary class (always one of the
  objects) and its ``.labels.json`` member lists every class in the image
  (:class:`MultiFractalFamily`, ``multi_label = True``).

Modules: :mod:`.model` (sampler, renderers), :mod:`.kernels` (numba).
docs/color-fractals.md compares them with the original point by point.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...encode import FORMATS
from ..base import Family, one_image_blocks, setting
from ..fractal.ifs import IFS
from .model import (ColorFractalRenderer, ColorRenderConfig, MultiFractalRenderer, MultiRenderConfig, find_systems,
                    multi_layout)
from . import study

__all__ = ["ColorFractalFamily", "ColorFractalSettings", "MultiFractalFamily", "MultiFractalSettings"]


def _range(lo, hi=None):
    return lambda v: lo <= v[0] <= v[1] and (hi is None or v[1] <= hi)


def _prob(v):
    return 0.0 <= v <= 1.0


_MAPS = setting([2, 4], "Range of the number of maps of a class (sigma-factor systems).",
                "[low, high] integers with 2 <= low <= high <= 8",
                lambda v: all(isinstance(x, int) for x in v) and 2 <= v[0] <= v[1] <= 8, kind="range")


@dataclass(frozen=True)
class ColorFractalSettings:
    """The ``colorfractal:`` section of a preset, plus the dataset seed."""

    classes: int = setting(1000, "Classes (sigma-factor systems).", "an integer > 0", lambda v: v > 0)
    instances: int = setting(1000, "Images per class.", "an integer > 0", lambda v: v > 0)
    maps: list = _MAPS
    image_size: int = setting(224, "Image side in pixels.", "an integer in 16..2048", lambda v: 16 <= v <= 2048)
    points: int = setting(100000, "Chaos-game points per image.", "an integer >= 100", lambda v: v >= 100)
    jitter: bool = setting(True, "Scale one map by U(0.8, 1.1) per image (kept if still contractive).",
                           "true | false")
    translate: float = setting(0.2, "Render window centre shift, times the extent.", "a number in 0..1",
                               lambda v: 0.0 <= v <= 1.0)
    scale: list = setting([0.5, 2.0], "Render window size factor range per axis.",
                          "[low, high] with 0 < low <= high <= 10", lambda v: 0 < v[0] <= v[1] <= 10, kind="range")
    patch: bool = setting(True, "Draw each point as one random 3x3 patch per image.", "true | false")
    background: bool = setting(True, "Paste on a diamond-square background (else black).", "true | false")
    flips: bool = setting(True, "Transpose, flip up-down, flip left-right, each p 0.5.", "true | false")
    blur_p: float = setting(0.5, "Probability of the 3x3 Gaussian blur.", "a number in 0..1", _prob)
    sigma: list = setting([0.5, 1.0], "Blur sigma range.", "[low, high] with 0 < low <= high <= 10",
                          lambda v: 0 < v[0] <= v[1] <= 10, kind="range")
    image_format: str = setting("jpg", "Stored image format.", " | ".join(FORMATS), lambda v: v in FORMATS)
    seed: int = 1

    def render_config(self) -> ColorRenderConfig:
        return ColorRenderConfig(size=self.image_size, points=self.points, jitter=self.jitter,
                                 translate=self.translate, scale=tuple(self.scale), patch=self.patch,
                                 background=self.background, flips=self.flips, blur_p=self.blur_p,
                                 sigma=tuple(self.sigma))


@dataclass(frozen=True)
class MultiFractalSettings:
    """The ``multifractal:`` section of a preset, plus the dataset seed."""

    classes: int = setting(1000, "Classes (sigma-factor systems).", "an integer > 0", lambda v: v > 0)
    instances: int = setting(1000, "Images per primary class.", "an integer > 0", lambda v: v > 0)
    maps: list = _MAPS
    image_size: int = setting(224, "Image side in pixels.", "an integer in 16..2048", lambda v: 16 <= v <= 2048)
    render_size: int = setting(112, "Side of the cached class renders.", "an integer in 8..2048",
                               lambda v: 8 <= v <= 2048)
    renders_per_class: int = setting(8, "Cached renders per class (each its own patch and chaos game).",
                                     "an integer in 1..1024", lambda v: 0 < v <= 1024)
    points: int = setting(100000, "Chaos-game points per class render.", "an integer >= 100", lambda v: v >= 100)
    objects: list = setting([1, 5], "Range of the number of objects per image.",
                            "[low, high] integers with 1 <= low <= high <= 64",
                            lambda v: all(isinstance(x, int) for x in v) and 1 <= v[0] <= v[1] <= 64, kind="range")
    size_range: list = setting([0.15, 0.6], "Object side range, times image_size.",
                               "[low, high] with 0 < low <= high <= 2", lambda v: 0 < v[0] <= v[1] <= 2, kind="range")
    patch: bool = setting(True, "Draw each point of a class render as one random 3x3 patch.", "true | false")
    flips: bool = setting(True, "Flip each object (transpose, up-down, left-right, each p 0.5).", "true | false")
    blur_p: float = setting(0.5, "Probability of the 3x3 Gaussian blur.", "a number in 0..1", _prob)
    sigma: list = setting([0.5, 1.0], "Blur sigma range.", "[low, high] with 0 < low <= high <= 10",
                          lambda v: 0 < v[0] <= v[1] <= 10, kind="range")
    image_format: str = setting("jpg", "Stored image format.", " | ".join(FORMATS), lambda v: v in FORMATS)
    seed: int = 1

    def render_config(self) -> MultiRenderConfig:
        return MultiRenderConfig(size=self.image_size, render_size=self.render_size, points=self.points,
                                 objects=tuple(self.objects), size_range=tuple(self.size_range),
                                 renders_per_class=self.renders_per_class, patch=self.patch, flips=self.flips,
                                 blur_p=self.blur_p, sigma=tuple(self.sigma))


class _SigmaFamily(Family):
    """What both families share: classes, layout (one image per block), rendering glue."""

    count_key = "classes"
    prefix = ""   # sample keys
    folder = ""   # ImageFolder names; after 'perlin-' in sorted order, as the labels are

    def find_classes(self, cfg, workers: int, progress=None) -> list:
        out = find_systems(cfg.seed, cfg.classes, tuple(cfg.maps))
        if progress is not None:
            progress(len(out), len(out))
        return out

    def class_docs(self, classes) -> list:
        return [{"class": j, "n_maps": ifs.n_maps, "rows": ifs.rows().tolist()} for j, ifs in enumerate(classes)]

    def classes_from_docs(self, docs) -> list:
        return [IFS.from_rows(d["rows"]) for d in docs]

    def blocks_per_class(self, cfg) -> int:
        return cfg.instances

    def images_per_block(self, cfg) -> int:
        return 1

    def channels(self, cfg, classes) -> int:
        return 3

    def sample_key(self, cfg, classes, klass, block, offset):
        return f"{self.prefix}{klass:05d}-i{block:06d}"

    def sample_meta(self, cfg, classes, klass, block, offset):
        return {"class": klass, "instance": block, "seed": cfg.seed}

    def export_path(self, meta, ext):
        k = meta["class"]
        return f"{self.folder}-{k:05d}/{self.folder}-{k:05d}_{meta['instance']:06d}.{ext}"

    def create_renderer(self, cfg, device="cpu", **options):
        if device != "cpu":
            from ...errors import ConfigError

            raise ConfigError(f"the {self.name} family renders on the CPU only; use --device cpu")
        return self.renderer_type(cfg.render_config(), cfg.seed)

    def render_blocks(self, renderer, cfg, classes, jobs):
        jobs = list(jobs)
        return one_image_blocks(jobs, renderer.render_many(self._items(cfg, classes, [(k, i) for k, i, _ in jobs])))

    def render_device(self, renderer, cfg, classes, blocks):
        return [(list(range(len(blocks))), renderer.render_many_device(self._items(cfg, classes, blocks)))]

    def preview_images(self, cfg, classes, per_class, limit):
        renderer = self.renderer_type(cfg.render_config(), cfg.seed)
        return list(renderer.render_many(self._items(cfg, classes, [(j, i) for j in range(min(limit, len(classes)))
                                                                    for i in range(per_class)])))


class ColorFractalFamily(_SigmaFamily):
    name = "colorfractal"
    summary = "colour sigma-factor fractals on diamond-square backgrounds (Anderson & Farrell), one label"
    study_arms = study.ARMS
    settings = ColorFractalSettings
    config_types = (ColorFractalSettings, ColorRenderConfig)
    renderer_type = ColorFractalRenderer
    prefix = "cf"
    folder = "sigmacolor"

    def _items(self, cfg, classes, blocks):
        return [(classes[k], k, i) for k, i in blocks]


class MultiFractalFamily(_SigmaFamily):
    name = "multifractal"
    summary = "1-5 colour sigma-factor fractals per image on a background, multi-hot labels (Anderson & Farrell)"
    settings = MultiFractalSettings
    config_types = (MultiFractalSettings, MultiRenderConfig)
    renderer_type = MultiFractalRenderer
    multi_label = True
    prefix = "mf"
    folder = "sigmamulti"

    def _items(self, cfg, classes, blocks):
        return [(classes, k, i) for k, i in blocks]

    def sample_labels(self, cfg, classes, klass, block, offset):
        """Every class in the image (the primary ``klass`` among them), sorted."""
        return multi_layout(cfg.render_config(), cfg.seed, len(classes), klass, block).classes
