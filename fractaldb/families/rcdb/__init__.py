"""The RCDB family (Radial Contour DataBase, Kataoka et al., CVPR 2022): noisy radial
contours, a class = (vertices, orbits, noise coefficient, radius increment); docs/rcdb.md.

Modules: :mod:`.model` (classes, the official stream walker, the CPU renderer),
:mod:`.kernels` (numba, on :mod:`fractaldb.contours`), :mod:`.study` (its transfer-study arm).
This module is the family's face (:class:`RCDBFamily`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...citations import Paper
from ...errors import ConfigError
from ..base import BoundFamily, Family, RenderedBlock, setting
from .model import PURPOSES, OfficialStreams, RCDBClass, RCDBRenderer, instance_key, modern_classes
from . import study

__all__ = ["RCDBFamily", "RCDBSettings", "RCDB_PAPER"]

COMPAT = ("modern", "official")


@dataclass(frozen=True, kw_only=True)
class RCDBSettings:
    """The ``rcdb:`` section (the published script's flags keep their names), plus the seed."""

    classes: int = setting(1000, "Classes.", "an integer in 1..100000", lambda v: 1 <= v <= 100000)
    instances: int = setting(1000, "Images per class.", "an integer in 1..100000", lambda v: 1 <= v <= 100000)
    compat: str = setting("modern", "modern: keyed per (seed, class, instance); official: the published script "
                          "replayed bit for bit (docs/rcdb.md).", choices=COMPAT)
    workers: int = setting(10, "Official mode: the script's worker count T (RCDB_render.sh: 10; exe_scripts: 40); "
                           "it must divide classes. Ignored in modern mode.", "an integer in 1..1000",
                           lambda v: 1 <= v <= 1000)
    vertex_num: int = setting(200, "Most vertices of a class (V ~ floor(Exp(mean 100)), 3..vertex_num).",
                              "an integer in 3..1000", lambda v: 3 <= v <= 1000)
    line_num_min: int = setting(1, "Fewest orbits; K is uniform in line_num_min..line_num_min + line_num_span.",
                                "an integer in 1..1000", lambda v: 1 <= v <= 1000)
    line_num_span: int = setting(199, "Modern mode: K is uniform in line_num_min..line_num_min + line_num_span "
                                 "(the script's 199 in official mode).", "an integer in 0..1000",
                                 lambda v: 0 <= v <= 1000)
    perlin_min: int = setting(0, "Noise coefficient c is uniform in [perlin_min, perlin_min + 4].",
                              "an integer in 0..100", lambda v: 0 <= v <= 100)
    line_width: float = setting(0.1, "Per-orbit radius increment lambda is uniform in [0, line_width] "
                                "(a radius step, not a stroke width).", "a number in 0..10", lambda v: 0 <= v <= 10)
    radius_min: int = setting(0, "Start radius r0 is uniform in radius_min..radius_min + radius_span (per instance).",
                              "an integer in 0..1000", lambda v: 0 <= v <= 1000)
    radius_span: int = setting(100, "Modern mode: r0 is uniform in radius_min..radius_min + radius_span "
                               "(the script's 100 in official mode).", "an integer in 0..1000", lambda v: 0 <= v <= 1000)
    oval_rate: int = setting(2, "Oval factors are uniform in [1, oval_rate] (per instance).", "an integer in 1..10",
                             lambda v: 1 <= v <= 10)
    start_pos: int = setting(400, "Centre offsets: (image_size + randint(-start_pos, start_pos)) / 2.",
                             "an integer in 0..8192", lambda v: 0 <= v <= 8192)
    image_size: int = setting(512, "Image side in pixels.", "an even integer in 16..4096",
                              lambda v: 16 <= v <= 4096 and v % 2 == 0)
    gray: str = setting("uniform", "Modern mode's orbit gray: uniform 0..255, or the original's 0..256 clipped "
                        "to 255 (official mode always the original).", choices=("uniform", "original"))
    image_format: str = setting("png", "Stored image format (lossless).", choices=("png",))
    seed: int

    def __post_init__(self):
        if self.compat == "official" and (self.radius_span, self.line_num_span) != (100, 199):
            raise ConfigError("rcdb: official mode replays the script, whose spans are fixed: radius_span 100 and "
                              "line_num_span 199")
        if self.compat == "official" and self.classes % self.workers:
            raise ConfigError(f"rcdb: official mode needs workers ({self.workers}) to divide classes "
                              f"({self.classes}): the script silently drops the last {self.classes % self.workers}")

    def render_config(self):
        return self


#: Kataoka et al., CVPR 2022: ExFractalDB and RCDB (one paper).
RCDB_PAPER = Paper("kataoka2022vit", "inproceedings", (
    ("title", "Replacing Labeled Real-Image Datasets with Auto-Generated Contours"),
    ("author", "Kataoka, Hirokatsu and Hayamizu, Ryo and Yamada, Ryosuke and Nakashima, Kodai and Takashima, Sora "
               "and Zhang, Xinyu and Martinez-Noriega, Edgar Josafat and Inoue, Nakamasa and Yokota, Rio"),
    ("booktitle", "IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)"), ("year", "2022")))


class RCDBBound(BoundFamily):
    """Modern: a block is one instance (one image); official: a block is a whole class
    (its images can only be reached in order along its worker's stream)."""

    settings: RCDBSettings

    @property
    def official(self) -> bool:
        return self.settings.compat == "official"

    @property
    def blocks_per_class(self) -> int:
        return 1 if self.official else self.settings.instances

    @property
    def images_per_block(self) -> int:
        return self.settings.instances if self.official else 1

    @property
    def channels(self) -> int:
        return 1

    def class_docs(self) -> list:
        return [{"class": j, "params": c.to_dict()} for j, c in enumerate(self.classes)]

    def _instance(self, block, offset):
        return offset if self.official else block

    def sample_key(self, klass, block, offset):
        return f"r{klass:05d}-i{self._instance(block, offset):06d}"

    def sample_meta(self, klass, block, offset):
        return {"class": klass, "instance": self._instance(block, offset), "seed": self.settings.seed,
                "compat": self.settings.compat}

    def _arrays(self):
        if not hasattr(self, "_cls"):
            self._cls = [c.array() for c in self.classes]
        return self._cls

    def render_blocks(self, renderer, jobs):
        if not self.official and renderer.device == "cuda":  # modern on the GPU: max_batch instances a launch
            jobs = list(jobs)
            for i in range(0, len(jobs), renderer.max_batch):
                chunk = jobs[i:i + renderer.max_batch]
                images = renderer.render_many_device([(self._arrays()[k], instance_key(self.settings.seed, k, b))
                                                      for k, b, _ in chunk]).copy_to_host()
                for (k, b, offsets), img in zip(chunk, images):
                    yield RenderedBlock(k, b, list(offsets), [img] * len(offsets))
            return
        for k, b, offsets in jobs:
            offsets = list(offsets)
            if self.official:
                yield RenderedBlock(k, b, offsets, renderer.official(k, offsets))
            else:
                img = renderer.modern(self._arrays()[k], instance_key(self.settings.seed, k, b))
                yield RenderedBlock(k, b, offsets, [img] * len(offsets))

    def render_device(self, renderer, blocks):
        if not self.official:
            return [(list(range(len(blocks))),
                     renderer.render_many_device([(self._arrays()[k], instance_key(self.settings.seed, k, b))
                                                  for k, b in blocks]))]
        import numpy as np

        jobs = [(k, b, range(self.images_per_block)) for k, b in blocks]
        images = np.stack([img.copy() for rb in self.render_blocks(renderer, jobs) for img in rb.images])
        return [(list(range(len(blocks))), images if renderer.device == "cpu" else renderer._cuda.to_device(images))]

    def preview_images(self, per_class, limit):
        r = self.renderer()
        n = min(per_class, self.settings.instances)
        if self.official:
            return [img.copy() for k in range(min(limit, len(self.classes))) for img in r.official(k, range(n))]
        return [r.modern(self._arrays()[k], instance_key(self.settings.seed, k, i)).copy()
                for k in range(min(limit, len(self.classes))) for i in range(n)]


class RCDBFamily(Family):
    name = "rcdb"
    summary = "RCDB radial contours: classes (vertices, orbits, noise, radius step) x instances (placement, noise)"
    description = ("Radial Contour DataBase: each class is a number of vertices and orbits, a noise coefficient and a "
                   "radius step; its images are noisy concentric contours in gray on white")
    papers = (RCDB_PAPER,)
    purposes = PURPOSES
    small = {"classes": 2, "instances": 2, "image_size": 32, "start_pos": 25, "radius_span": 6, "line_num_span": 12,
             "vertex_num": 20}
    study_arms = study.ARMS
    settings = RCDBSettings
    count_key = "classes"
    config_types = (RCDBSettings,)
    cpu_renderer = RCDBRenderer
    cuda_renderer = ".render_cuda.RCDBCUDARenderer"
    bound = RCDBBound

    def device_note(self, settings, device):
        if device == "cuda":
            return ("rcdb: the GPU adds little: the host builds every instance (on an H200, 4,300 images/s in "
                    "modern mode, about two CPU cores' worth); with more cores, --device cpu is faster "
                    "(docs/gpu.md section 9)")
        return None

    def find_classes(self, settings: RCDBSettings, workers: int, progress=None) -> list:
        if settings.compat == "official":
            return OfficialStreams.of(settings).classes()
        return modern_classes(settings)

    def classes_from_docs(self, docs) -> list:
        return [RCDBClass(**d["params"]) for d in docs]

    def export_path(self, meta, ext):
        k = meta["class"]
        return f"rcdb-{k:05d}/{k:05d}_{meta['instance']:04d}.{ext}"
