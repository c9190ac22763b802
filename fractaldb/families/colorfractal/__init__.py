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
from ...citations import FRACTALDB, Paper
from ..base import BoundFamily, Family, InstanceImages, cpu_only, one_image_blocks, setting
from ...ifs.system import IFS
from .model import (BOUNDS, COLOR_PURPOSES, MULTI_PURPOSES, ColorFractalRenderer, ColorRenderConfig, MultiFractalRenderer, MultiRenderConfig, find_systems,
                    multi_layout)
from . import study

__all__ = ["ColorFractalFamily", "ColorFractalSettings", "MultiFractalFamily", "MultiFractalSettings", "SigmaBound"]


def _range(lo, hi=None):
    return lambda v: lo <= v[0] <= v[1] and (hi is None or v[1] <= hi)


def _prob(v):
    return 0.0 <= v <= 1.0


#: PNG by default: the original trains on the rendered pixels, and JPEG's 4:2:0 chroma
#: blurs the fine colour structure (at q90, on color-fractal-1k: mean error 5.7/255, 99th percentile 58/255).
_FORMAT_HELP = ("Stored image format: png (lossless, the default: the original trains on the rendered pixels; "
                "about 5x the bytes of jpg) or jpg / webp (quality 90, lossy).")

_MAPS = setting([2, 4], "Range of the number of maps of a class (sigma-factor systems).",
                "[low, high] integers with 2 <= low <= high <= 8",
                lambda v: all(isinstance(x, int) for x in v) and 2 <= v[0] <= v[1] <= 8, kind="range")


@dataclass(frozen=True, kw_only=True)
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
    bounds: str = setting("cells", "Window bounds of the patch raster: cells (the original's: each patch cell "
                          "is checked alone, so points just outside the window paint its border) or centre "
                          "(fractaldb before 0.3: a point counts only when its own pixel is inside).",
                          choices=tuple(BOUNDS))
    image_format: str = setting("png", _FORMAT_HELP, " | ".join(FORMATS), lambda v: v in FORMATS)
    seed: int

    def render_config(self) -> ColorRenderConfig:
        return ColorRenderConfig(size=self.image_size, points=self.points, jitter=self.jitter,
                                 translate=self.translate, scale=tuple(self.scale), patch=self.patch,
                                 background=self.background, flips=self.flips, blur_p=self.blur_p,
                                 sigma=tuple(self.sigma), bounds=self.bounds)


@dataclass(frozen=True, kw_only=True)
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
    image_format: str = setting("png", _FORMAT_HELP, " | ".join(FORMATS), lambda v: v in FORMATS)
    seed: int

    def render_config(self) -> MultiRenderConfig:
        return MultiRenderConfig(size=self.image_size, render_size=self.render_size, points=self.points,
                                 objects=tuple(self.objects), size_range=tuple(self.size_range),
                                 renders_per_class=self.renders_per_class, patch=self.patch, flips=self.flips,
                                 blur_p=self.blur_p, sigma=tuple(self.sigma))


ANDERSON_FARRELL = Paper("anderson-farrell", "inproceedings", (
    ("title", "Improving Fractal Pre-training"), ("author", "Anderson, Connor and Farrell, Ryan"),
    ("booktitle", "IEEE/CVF Winter Conference on Applications of Computer Vision (WACV)"), ("year", "2022")))


class SigmaBound(InstanceImages, BoundFamily):
    """Either colour family bound to a dataset: a block is one (class, instance), one RGB image."""

    @property
    def channels(self) -> int:
        return 3

    def class_docs(self) -> list:
        return [{"class": j, "n_maps": ifs.n_maps, "rows": ifs.rows().tolist()} for j, ifs in enumerate(self.classes)]

    def sample_key(self, klass, block, offset):
        return f"{self.family.prefix}{klass:05d}-i{block:06d}"

    def sample_meta(self, klass, block, offset):
        return {"class": klass, "instance": block, "seed": self.settings.seed}

    def _items(self, blocks):
        return self.family.items(self.classes, blocks)

    def render_blocks(self, renderer, jobs):
        jobs = list(jobs)
        return one_image_blocks(jobs, renderer.render_many(self._items([(k, i) for k, i, _ in jobs])))

    def render_device(self, renderer, blocks):
        return [(list(range(len(blocks))), renderer.render_many_device(self._items(blocks)))]

    def preview_images(self, per_class, limit):
        renderer = self.renderer()
        blocks = [(j, i) for j in range(min(limit, len(self.classes))) for i in range(per_class)]
        return list(renderer.render_many(self._items(blocks)))


class MultiBound(SigmaBound):
    def sample_labels(self, klass, block, offset):
        """Every class in the image (the primary ``klass`` among them), sorted."""
        return multi_layout(self.settings.render_config(), self.settings.seed, len(self.classes), klass, block).classes


class _SigmaFamily(Family):
    """What both families share: classes, layout (one image per block), rendering glue."""

    count_key = "classes"
    papers = (ANDERSON_FARRELL, FRACTALDB)
    bound = SigmaBound
    prefix = ""   # sample keys
    folder = ""   # ImageFolder names; after 'perlin-' in sorted order, as the labels are

    def find_classes(self, settings, workers: int, progress=None) -> list:
        out = find_systems(settings.seed, settings.classes, tuple(settings.maps))
        if progress is not None:
            progress(len(out), len(out))
        return out

    def classes_from_docs(self, docs) -> list:
        return [IFS.from_rows(d["rows"]) for d in docs]

    def export_path(self, meta, ext):
        k = meta["class"]
        return f"{self.folder}-{k:05d}/{self.folder}-{k:05d}_{meta['instance']:06d}.{ext}"

    def create_renderer(self, settings, device="cpu", **options):
        if device != "cpu":
            raise cpu_only(self.name)
        return self.renderer_type(settings.render_config(), settings.seed)


class ColorFractalFamily(_SigmaFamily):
    name = "colorfractal"
    summary = "colour sigma-factor fractals on diamond-square backgrounds (Anderson & Farrell), one label"
    description = ("colour fractals (Anderson & Farrell): each class is a sigma-factor IFS, drawn in colour "
                   "on a random background")
    purposes = COLOR_PURPOSES
    small = {"classes": 2, "instances": 3, "image_size": 32, "points": 2000}
    study_arms = study.ARMS
    settings = ColorFractalSettings
    # fractaldb before 0.3 drew a point only when its own pixel was inside the window
    absent_means = {"bounds": "centre"}
    config_types = (ColorFractalSettings, ColorRenderConfig)
    renderer_type = ColorFractalRenderer
    prefix = "cf"
    folder = "sigmacolor"

    @staticmethod
    def items(classes, blocks):
        return [(classes[k], k, i) for k, i in blocks]


class MultiFractalFamily(_SigmaFamily):
    name = "multifractal"
    summary = "1-5 colour sigma-factor fractals per image on a background, multi-hot labels (Anderson & Farrell)"
    description = ("multi-fractal images (Anderson & Farrell): one to five colour fractals per image, "
                   "multi-hot labels")
    purposes = MULTI_PURPOSES
    small = {"classes": 3, "instances": 2, "image_size": 32, "render_size": 16, "points": 2000,
             "renders_per_class": 2}
    label_kind = "multi-hot"
    settings = MultiFractalSettings
    config_types = (MultiFractalSettings, MultiRenderConfig)
    renderer_type = MultiFractalRenderer
    bound = MultiBound
    prefix = "mf"
    folder = "sigmamulti"

    @staticmethod
    def items(classes, blocks):
        return [(classes, k, i) for k, i in blocks]
