"""The VisualAtom family (Takashima et al., CVPR 2023): contour orbits carrying two sine
waves and i.i.d. "Perlin" noise, drawn with 1-px lines (FDSL.md §2; docs/visualatom.md).

Modules: :mod:`.model` (classes, official and modern class tables, the CPU renderer),
:mod:`.render_cuda` (its GPU twin), :mod:`.kernels` (the official stream walk), :mod:`.study`.
The machinery is :mod:`fractaldb.contours`.  This module is the family's face
(:class:`VisualAtomFamily`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from ...citations import FRACTALDB, Paper
from ...encode import FORMATS
from ...errors import ConfigError
from ..base import BoundFamily, Family, RenderedBlock, setting
from . import study
from .model import (PURPOSES, ClassRanges, Item, VisualAtomClass, VisualAtomRenderConfig, VisualAtomRenderer,
                    block_size, check_official, instance_key, modern_classes, official_classes)

__all__ = ["VisualAtomFamily", "VisualAtomSettings", "VisualAtomBound", "VISUALATOM_PAPER", "sample_key"]

VISUALATOM_PAPER = Paper("visualatom", "inproceedings", (
    ("title", "Visual Atoms: Pre-training Vision Transformers with Sinusoidal Waves"),
    ("author", "Takashima, Sora and Hayamizu, Ryo and Inoue, Nakamasa and Kataoka, Hirokatsu and Yokota, Rio"),
    ("booktitle", "IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)"), ("year", "2023")))


def sample_key(klass: int, instance: int) -> str:
    """``va00042-i000123``: VisualAtom class 42, instance 123."""
    return f"va{klass:05d}-i{instance:06d}"


def _int_range(lo, hi):
    return lambda v: all(isinstance(x, int) and not isinstance(x, bool) for x in v) and lo <= v[0] <= v[1] <= hi


@dataclass(frozen=True, kw_only=True)
class VisualAtomSettings:
    """The ``visualatom:`` section of a preset, plus the dataset seed.  Defaults are the published
    VisualAtom-1k values (make_VisualAtom.sh), not render_VisualAtom.py's argparse defaults."""

    classes: int = setting(1000, "Classes.", "an integer in 1..1000000", lambda v: 1 <= v <= 1_000_000)
    instances: int = setting(1000, "Images per class.", "an integer in 1..100000", lambda v: 1 <= v <= 100_000)
    compat: str = setting("modern", "modern (seeded per dataset seed, class and instance: the same bytes on any "
                          "worker count) or official (replays render_VisualAtom.py bit for bit, its thread split "
                          "included).", choices=("modern", "official"))
    threads: int = setting(20, "official: the original's --numof_thread (20 published; another value is another "
                           "dataset).", "an integer in 1..100000", lambda v: 1 <= v <= 100_000)
    script_classes: int = setting(0, "official: the original's --numof_classes, which splits classes over threads "
                                  "(0: classes; 1000 keeps a --classes cut of visualatom-1k identical).",
                                  "an integer in 0..1000000", lambda v: 0 <= v <= 1_000_000)
    start_class: int = setting(0, "official: the original's --start_class (shifts folder names only, not seeds).",
                               "an integer in 0..1000000", lambda v: 0 <= v <= 1_000_000)
    vertices: list = setting([200, 1000], "Vertex-count range of a class.",
                             "[low, high] integers with 3 <= low <= high <= 5000", _int_range(3, 5000), kind="range")
    orbits: list = setting([1, 200], "Orbit-count range of a class.", "[low, high] integers with 1 <= low <= high <= 1000",
                           _int_range(1, 1000), kind="range")
    perlin_min: float = setting(0.0, "Noise coefficient c is uniform in [perlin_min, perlin_min + 4].",
                                "a number in 0..100", lambda v: 0 <= v <= 100)
    line_width: float = setting(0.1, "Radius increment per orbit is uniform in [0, line_width] (not a stroke width).",
                                "a number in 0..100", lambda v: 0 <= v <= 100)
    radius_min: int = setting(10, "Start radius is an integer in radius_min..radius_min + 50.", "an integer in 0..10000",
                              lambda v: 0 <= v <= 10000)
    oval_rate: float = setting(2.0, "Oval factors are uniform in [1, oval_rate].", "a number in 1..100",
                               lambda v: 1 <= v <= 100)
    waves: list = setting([0, 20], "Range of the two wave frequencies n1, n2 (n2 != n1 unless n1 = 0).",
                          "[low, high] integers with 0 <= low < high <= 1000, or [0, 0]",
                          lambda v: _int_range(0, 1000)(v) and (v[0] < v[1] or v[1] == 0), kind="range")
    start_pos: int = setting(512, "Centre coordinates are (image_size + U{-start_pos..start_pos}) / 2.",
                             "an integer in 0..100000", lambda v: 0 <= v <= 100_000)
    perlin_grad: str = setting("library", "Noise gradient law: library (noise.pnoise1's, which defines the "
                               "published data) or fixed (-(h&7)-1: 1.56x the noise; modern mode only).",
                               choices=("library", "fixed"))
    image_size: int = setting(512, "Image side in pixels.", "an integer in 16..4096", lambda v: 16 <= v <= 4096)
    channels: int = setting(1, "Stored channels: 1 (gray) or 3 (the original's RGB files; the same pixels, "
                            "3.5x the PNG encoding time).", choices=(1, 3))
    image_format: str = setting("png", "Stored image format (png: lossless; 1-px lines do not survive jpg).",
                                " | ".join(FORMATS), lambda v: v in FORMATS)
    seed: int

    def __post_init__(self):
        if self.compat == "official":
            if self.perlin_grad != "library":
                raise ConfigError("visualatom: perlin_grad=fixed is not the original; use it with compat=modern")
            check_official(self.classes, self.script_classes or self.classes, self.threads)
            if self.threads != 20:
                warnings.warn(f"visualatom: official mode with threads={self.threads}, not the published 20: "
                              "the same script, but another dataset (every class after a thread's first differs)",
                              stacklevel=2)

    def ranges(self) -> ClassRanges:
        return ClassRanges(tuple(self.vertices), tuple(self.orbits), float(self.perlin_min), float(self.line_width),
                           int(self.radius_min), float(self.oval_rate), tuple(self.waves), int(self.start_pos),
                           int(self.image_size))

    def render_config(self) -> VisualAtomRenderConfig:
        return VisualAtomRenderConfig(size=self.image_size, compat=self.compat, perlin_grad=self.perlin_grad,
                                      start_pos=self.start_pos, channels=self.channels)


class VisualAtomBound(BoundFamily):
    """VisualAtom bound to a dataset.  Modern: a block is one instance.  Official: a block is
    :func:`~.model.block_size` consecutive instances, replayed in order from one stored position."""

    settings: VisualAtomSettings

    @property
    def _block(self) -> int:
        return block_size(self.settings.instances) if self.settings.compat == "official" else 1

    @property
    def blocks_per_class(self) -> int:
        return self.settings.instances // self._block

    @property
    def images_per_block(self) -> int:
        return self._block

    @property
    def channels(self) -> int:
        return self.settings.channels

    def class_docs(self) -> list:
        return [{"class": j, "params": c.to_dict()} for j, c in enumerate(self.classes)]

    def sample_key(self, klass, block, offset):
        return sample_key(klass, block * self._block + offset)

    def sample_meta(self, klass, block, offset):
        c = self.classes[klass]
        return {"class": klass, "instance": block * self._block + offset, "vertices": c.vertices,
                "folder": klass + self.settings.start_class, "seed": self.settings.seed}

    def _item(self, k, b):
        if self.settings.compat == "official":
            return Item(self.classes[k], block=b, count=self._block)
        return Item(self.classes[k], key=instance_key(self.settings.seed, k, b))

    def render_blocks(self, renderer, jobs):
        for k, b, offsets in jobs:
            images = list(renderer.render_many([self._item(k, b)]))
            yield RenderedBlock(k, b, list(offsets), [images[o] for o in offsets])

    def render_device(self, renderer, blocks):
        return [(list(range(len(blocks))), renderer.render_many_device([self._item(k, b) for k, b in blocks]))]

    def preview_images(self, per_class, limit):
        renderer = VisualAtomRenderer(self.settings.render_config())
        out = []
        for k in range(min(limit, len(self.classes))):
            images = []
            b = 0
            while len(images) < per_class and b < self.blocks_per_class:
                images += list(renderer.render_many([self._item(k, b)]))
                b += 1
            out += images[:per_class]
        return out


class VisualAtomFamily(Family):
    name = "visualatom"
    summary = "VisualAtom: contour orbits with sine waves and noise, 1-px gray lines (CVPR 2023)"
    description = ("VisualAtom contours: each class is a set of orbit parameters (vertices, orbits, two sine-wave "
                   "frequencies, noise, radius, oval factors); its images are noisy wavy orbits in random grays "
                   "around random centres")
    papers = (VISUALATOM_PAPER, FRACTALDB)
    purposes = PURPOSES
    small = {"classes": 2, "instances": 3, "image_size": 32, "vertices": [8, 24], "orbits": [1, 6], "start_pos": 16,
             "radius_min": 2}
    study_arms = study.ARMS
    settings = VisualAtomSettings
    count_key = "classes"
    config_types = (VisualAtomSettings, VisualAtomRenderConfig)
    cpu_renderer = VisualAtomRenderer
    cuda_renderer = ".render_cuda.VisualAtomCUDARenderer"
    bound = VisualAtomBound

    def device_note(self, settings, device):
        if device == "cuda" and settings.compat == "official":
            return ("visualatom: official mode is slow on the GPU: the host replays each image's noise from "
                    "CPython's sequential stream first (on an H200, 299 images/s, against about 600 per CPU core); "
                    "--device cpu is faster on any machine (docs/gpu.md section 9)")
        return None

    def find_classes(self, settings: VisualAtomSettings, workers: int, progress=None) -> list:
        if settings.compat == "official":
            return official_classes(settings.classes, settings.script_classes or settings.classes, settings.threads,
                                    settings.instances, settings.ranges(), workers)
        return modern_classes(settings.seed, settings.classes, settings.ranges())

    def classes_from_docs(self, docs) -> list:
        return [VisualAtomClass.from_dict(d["params"]) for d in docs]

    def bind(self, settings, classes):
        """Bound to a dataset; official classes must carry one stored position per block.

        Raises:
            ConfigError: a class without its stored positions (a manifest of another mode or edited).
        """
        bound = super().bind(settings, classes)
        if settings.compat == "official":
            want = bound.blocks_per_class
            for j, c in enumerate(classes):
                if not c.state or len(c.offsets) != want or len(c.centres) != want:
                    raise ConfigError(f"visualatom: official class {j} needs a stored state and {want} block "
                                      f"positions, got {len(c.offsets)}")
        return bound

    def export_path(self, meta, ext):
        # The original's names (vertex_<V>_instance_<i>) in a prefixed folder: after the
        # digit-named fractal folders in sorted order, as the labels are.
        return (f"visualatom-{meta.get('folder', meta['class']):05d}/"
                f"vertex_{meta['vertices']:04d}_instance_{meta['instance']:04d}.{ext}")
