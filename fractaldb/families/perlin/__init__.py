"""The Perlin-noise family: classes of fractal Brownian motion noise (frequency,
octaves, persistence, lacunarity, palette) kept apart by a class search; each
instance is a new gradient lattice.

Modules: :mod:`.model` (classes, the class search, the CPU renderer),
:mod:`.render_cuda` (its GPU twin), :mod:`.kernels` and :mod:`.kernels_cuda`
(numba kernels).  This module is the family's face to the rest of fractaldb
(:class:`PerlinFamily`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...encode import FORMATS
from ...citations import FRACTALDB, Paper
from ..base import BoundFamily, Family, InstanceImages, one_image_blocks, setting
from .model import PALETTES, PURPOSES, PerlinClass, PerlinRenderConfig, PerlinRenderer, instance_key
from .search import PerlinSearchConfig, search_classes
from . import study

__all__ = ["PerlinFamily", "PerlinSettings", "PerlinBound", "sample_key"]


def sample_key(klass: int, instance: int) -> str:
    """``p00042-i000123``: Perlin class 42 (of the Perlin family), instance 123."""
    return f"p{klass:05d}-i{instance:06d}"


def _positive_range(v):
    return 0 < v[0] <= v[1]


@dataclass(frozen=True, kw_only=True)
class PerlinSettings:
    """The ``perlin:`` section of a preset, plus the dataset seed."""

    classes: int = setting(10, "Perlin classes to search.", "an integer > 0", lambda v: v > 0)
    instances: int = setting(100, "Instances (images) per class.", "an integer > 0", lambda v: v > 0)
    # Above Nyquist (image_size / 2 <= 4096) an octave is only aliasing; 65536 keeps a
    # tileable class's integer period far inside int64.
    frequency: list = setting([1.0, 16.0], "Base frequency range, cycles per image (log-uniform).",
                              "[low, high] with 0 < low <= high <= 65536 (cycles per image)",
                              lambda v: _positive_range(v) and v[1] <= 65536, kind="range")
    # 32 octaves pass Nyquist at any image_size even at the smallest lacunarity's growth.
    octaves: list = setting([1, 6], "Octave-count range.", "[low, high] integers with 1 <= low <= high <= 32",
                            lambda v: all(isinstance(x, int) for x in v) and 1 <= v[0] <= v[1] <= 32, kind="range")
    persistence: list = setting([0.3, 0.9], "Persistence range.", "[low, high] with 0 < low <= high <= 1",
                                lambda v: 0 < v[0] <= v[1] <= 1, kind="range")
    lacunarity: list = setting([1.5, 3.0], "Lacunarity range.", "[low, high] with 1 < low <= high <= 16",
                               lambda v: 1 < v[0] <= v[1] <= 16, kind="range")
    palettes: str = setting("all", "Palettes to draw from.", "'all' or a comma-separated list of palette names")
    min_distance: float = setting(-1.0, "Smallest distance between two classes (-1: the built-in default).",
                                  "a number >= 0, or -1 for the built-in default", lambda v: v >= 0 or v == -1)
    tileable: bool = setting(False, "Round octave frequencies to integers so images tile.", "true | false")
    image_size: int = setting(256, "Image side in pixels.", "an integer in 16..8192", lambda v: 16 <= v <= 8192)
    image_format: str = setting("jpg", "Stored image format.", " | ".join(FORMATS), lambda v: v in FORMATS)
    seed: int

    def __post_init__(self):
        self.search_config()  # palettes exist, ranges make sense
        self.render_config()

    def search_config(self) -> PerlinSearchConfig:
        names = tuple(PALETTES) if self.palettes.strip() == "all" else \
            tuple(p.strip() for p in self.palettes.split(",") if p.strip())
        extra = {} if self.min_distance < 0 else {"min_distance": self.min_distance}
        return PerlinSearchConfig(classes=self.classes, seed=self.seed, frequency=tuple(self.frequency),
                                  octaves=tuple(self.octaves), persistence=tuple(self.persistence),
                                  lacunarity=tuple(self.lacunarity), palettes=names, **extra)

    def render_config(self) -> PerlinRenderConfig:
        return PerlinRenderConfig(size=self.image_size, tileable=self.tileable)


#: Inoue, Yamagata, Kataoka: Perlin-noise pretraining (no public code; our definition is docs/perlin.md).
PERLIN_PAPER = Paper("perlin", "inproceedings", (
    ("title", "Initialization Using Perlin Noise for Training Networks with a Limited Amount of Data"),
    ("author", "Inoue, Nakamasa and Yamagata, Eisuke and Kataoka, Hirokatsu"),
    ("booktitle", "International Conference on Pattern Recognition (ICPR)"), ("year", "2020")))


class PerlinBound(InstanceImages, BoundFamily):
    """Perlin noise bound to a dataset: a block is one (class, instance), a single image."""

    settings: PerlinSettings

    @property
    def channels(self) -> int:
        return max((pc.channels for pc in self.classes), default=1)

    def class_docs(self) -> list:
        return [{"class": j, "params": pc.to_dict()} for j, pc in enumerate(self.classes)]

    def sample_key(self, klass, block, offset):
        return sample_key(klass, block)

    def sample_meta(self, klass, block, offset):
        return {"class": klass, "instance": block, "params": self.classes[klass].to_dict(), "seed": self.settings.seed}

    def _items(self, blocks):
        return [(self.classes[k], instance_key(self.settings.seed, k, i)) for k, i in blocks]

    def render_blocks(self, renderer, jobs):
        jobs = list(jobs)
        return one_image_blocks(jobs, renderer.render_many(self._items([(k, i) for k, i, _ in jobs])))

    def render_device(self, renderer, blocks):
        groups = {}  # one launch per channel count
        for pos, (k, _) in enumerate(blocks):
            groups.setdefault(self.classes[k].channels, []).append(pos)
        return [(pos, renderer.render_many_device(self._items([blocks[p] for p in pos])))
                for _, pos in sorted(groups.items())]

    def preview_images(self, per_class, limit):
        renderer = PerlinRenderer(self.settings.render_config())
        return [renderer.render(pc, instance_key(self.settings.seed, j, i)).copy()
                for j, pc in enumerate(self.classes[:limit]) for i in range(per_class)]


class PerlinFamily(Family):
    name = "perlin"
    summary = "Perlin noise: fBm classes (frequency, octaves, persistence, lacunarity, palette) x lattice instances"
    description = ("Perlin-noise classes: each class is a set of fractal-noise parameters (frequency, octaves, "
                   "persistence, lacunarity, palette); its images are noise on different random lattices")
    papers = (PERLIN_PAPER, FRACTALDB)
    purposes = PURPOSES
    small = {"classes": 2, "instances": 3, "image_size": 32, "min_distance": 0.0}
    study_arms = study.ARMS
    settings = PerlinSettings
    count_key = "classes"
    legacy_keys = {"image_size": "image_size", **{f"perlin_{k}": k for k in (
        "classes", "instances", "frequency", "octaves", "persistence", "lacunarity", "palettes", "min_distance",
        "tileable", "image_format")}}
    config_types = (PerlinSettings, PerlinRenderConfig)
    cpu_renderer = PerlinRenderer
    cuda_renderer = ".render_cuda.PerlinCUDARenderer"
    bound = PerlinBound

    def find_classes(self, settings: PerlinSettings, workers: int, progress=None) -> list:
        return search_classes(settings.search_config())

    def classes_from_docs(self, docs) -> list:
        return [PerlinClass.from_dict(d["params"]) for d in docs]

    def export_path(self, meta, ext):
        k = meta["class"]
        # After the digit-named fractal folders in sorted order, as the labels are.
        return f"perlin-{k:05d}/perlin-{k:05d}_{meta['instance']:06d}.{ext}"
