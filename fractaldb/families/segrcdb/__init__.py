"""The SegRCDB family (Shinoda et al., ICCV 2023): RCDB contours of several classes per
image with a per-pixel class mask (label kind ``mask``); docs/segrcdb.md.

A **class** is ``(V, K, c, lambda, r0, ox, oy)`` (FDSL 4.1); an **image** draws
``polygons`` classes with replacement, each at a random centre, and its mask labels every
line pixel with the class id (1..254) of the polygon that drew it last, 0 elsewhere (M1).
Images are not made class by class: the plan has one row; a block is one image (modern)
or a whole worker's images (official: they can only be reached in order along its stream).

* **official**: the class table from one ``seed(0)`` stream, worker ``t`` of ``T`` making images
  ``[t N/T, (t+1) N/T)`` from a stream seeded ``t + 1``: the published scripts bit for bit.
* **modern** (default): class ``j`` keyed ``(seed, segrcdb-classes, j)``, image ``n`` keyed
  ``(seed, segrcdb-image, n)``; grays 1..255 so every labelled pixel is visible.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ...citations import Paper
from ...errors import ConfigError
from ..base import BoundFamily, Family, RenderedBlock, setting
from .model import PURPOSES, SegRCDBRenderer, class_table

__all__ = ["SegRCDBFamily", "SegRCDBSettings", "SEGRCDB_PAPER"]

COMPAT = ("modern", "official")
FIELDS = ("vertices", "orbits", "noise", "line_width", "radius", "oval_x", "oval_y")


def _pair(lo, hi):
    return lambda v: all(isinstance(x, int) for x in v) and lo <= v[0] <= v[1] <= hi


@dataclass(frozen=True, kw_only=True)
class SegRCDBSettings:
    """The ``segrcdb:`` section (the published scripts' values), plus the seed."""

    classes: int = setting(254, "Classes (mask values 1..classes).", "an integer in 1..254", lambda v: 1 <= v <= 254)
    images: int = setting(20000, "Images.", "an integer in 1..10000000", lambda v: 1 <= v <= 10_000_000)
    polygons: int = setting(32, "Polygons (class instances) per image.", "an integer in 1..1024",
                            lambda v: 1 <= v <= 1024)
    compat: str = setting("modern", "modern: keyed per (seed, image); official: the published scripts replayed "
                          "bit for bit (docs/segrcdb.md).", choices=COMPAT)
    workers: int = setting(40, "Official mode: the script's worker count T (make_SegRCDB.sh: 40); it must divide "
                           "images. Ignored in modern mode.", "an integer in 1..1000", lambda v: 1 <= v <= 1000)
    vertex_num: int = setting(500, "Most vertices (V ~ floor(Exp(mean vertex_num / 5)), 3..vertex_num).",
                              "an integer in 3..2000", lambda v: 3 <= v <= 2000)
    line_num: int = setting(1, "Fewest orbits per class.", "an integer in 1..1000", lambda v: 1 <= v <= 1000)
    line_num_max: int = setting(50, "Most orbits per class.", "an integer in 1..1000", lambda v: 1 <= v <= 1000)
    perlin_min: int = setting(0, "Noise coefficient c is uniform in [perlin_min, perlin_max].", "an integer in 0..100",
                              lambda v: 0 <= v <= 100)
    perlin_max: int = setting(4, "See perlin_min.", "an integer in 0..100", lambda v: 0 <= v <= 100)
    line_width: float = setting(0.1, "Radius step lambda uniform in [0, line_width] (make_SegRCDB.sh: 0.1).",
                                "a number in 0..10", lambda v: 0 <= v <= 10)
    radius_min: int = setting(0, "Start radius r0 uniform in radius_min..radius_max.", "an integer in 0..1000",
                              lambda v: 0 <= v <= 1000)
    radius_max: int = setting(50, "See radius_min.", "an integer in 0..1000", lambda v: 0 <= v <= 1000)
    oval_rate: int = setting(2, "Oval factors uniform in [1, oval_rate].", "an integer in 1..10",
                             lambda v: 1 <= v <= 10)
    start_pos: int = setting(512, "Centres: (image_size + randint(-start_pos, start_pos)) / 2.",
                             "an integer in 0..8192", lambda v: 0 <= v <= 8192)
    image_size: int = setting(512, "Image side in pixels.", "an integer in 16..4096", lambda v: 16 <= v <= 4096)
    image_format: str = setting("png", "Stored image format (lossless).", choices=("png",))
    seed: int

    def __post_init__(self):
        where = "segrcdb"
        if self.line_num > self.line_num_max or self.perlin_min > self.perlin_max \
                or self.radius_min > self.radius_max:
            raise ConfigError(f"{where}: each of line_num..line_num_max, perlin_min..perlin_max and "
                              "radius_min..radius_max must be a range (low <= high)")
        if self.compat == "official" and self.images % self.workers:
            raise ConfigError(f"{where}: official mode needs workers ({self.workers}) to divide images "
                              f"({self.images}): the script names files by (images / workers) * worker + k")

    def render_config(self):
        return self


SEGRCDB_PAPER = Paper("shinoda2023segrcdb", "inproceedings", (
    ("title", "SegRCDB: Semantic Segmentation via Formula-Driven Supervised Learning"),
    ("author", "Shinoda, Risa and Hayamizu, Ryo and Nakashima, Kodai and Inoue, Nakamasa and Yokota, Rio and "
               "Kataoka, Hirokatsu"),
    ("booktitle", "IEEE/CVF International Conference on Computer Vision (ICCV)"), ("year", "2023")))


def primary_of(mask) -> int:
    """The class index (id - 1) covering the most mask pixels (lowest on a tie; 0 if none)."""
    counts = np.bincount(mask.ravel(), minlength=256)[1:]
    return int(np.argmax(counts)) if counts.any() else 0


class SegRCDBBound(BoundFamily):
    settings: SegRCDBSettings

    def __init__(self, *args):
        super().__init__(*args)
        self._primary = {}
        self._lock = threading.Lock()

    @property
    def official(self) -> bool:
        return self.settings.compat == "official"

    @property
    def rows(self) -> int:
        return 1

    @property
    def blocks_per_class(self) -> int:
        return self.settings.workers if self.official else self.settings.images

    @property
    def images_per_block(self) -> int:
        return self.settings.images // self.settings.workers if self.official else 1

    @property
    def channels(self) -> int:
        return 1

    def class_docs(self) -> list:
        return [{"class": j, "id": j + 1, "params": dict(zip(FIELDS, map(float, row)))}
                for j, row in enumerate(self.classes)]

    def _number(self, block, offset) -> int:
        return block * self.images_per_block + offset

    def sample_key(self, klass, block, offset):
        return f"s{self._number(block, offset):07d}"

    def sample_meta(self, klass, block, offset):
        return {"image": self._number(block, offset), "seed": self.settings.seed, "compat": self.settings.compat}

    def primary(self, klass, block, offset):
        with self._lock:
            hit = self._primary.get((block, offset))
        if hit is None:
            rb = next(iter(self.render_blocks(self.renderer(), [(klass, block, [offset])])))
            list(rb.images)
            with self._lock:
                hit = self._primary[(block, offset)]
        return hit

    def _blocks(self, renderer, k, b, offsets):
        pairs = renderer.official(b, offsets) if self.official else [renderer.image(b)] * len(offsets)
        for offset, (img, mask) in zip(offsets, pairs):
            with self._lock:
                self._primary[(b, offset)] = primary_of(mask)
            yield img, mask

    def render_blocks(self, renderer, jobs):
        if not self.official and renderer.device == "cuda":  # modern on the GPU: max_batch images a launch
            jobs = list(jobs)
            for i in range(0, len(jobs), renderer.max_batch):
                chunk = jobs[i:i + renderer.max_batch]
                pairs = renderer.images([b for _, b, _ in chunk])
                for (k, b, offsets), (img, mask) in zip(chunk, pairs):
                    with self._lock:
                        self._primary.update({(b, o): primary_of(mask) for o in offsets})
                    yield RenderedBlock(k, b, list(offsets), [img] * len(offsets), masks=[mask] * len(offsets))
            return
        for k, b, offsets in jobs:
            offsets = list(offsets)
            pairs = self._blocks(renderer, k, b, offsets)
            masks = []

            def images(pairs=pairs, masks=masks):
                for img, mask in pairs:
                    masks.append(mask)
                    yield img

            yield RenderedBlock(k, b, offsets, images(), masks=_Latest(masks))

    def render_device(self, renderer, blocks):
        if not self.official:
            return [(list(range(len(blocks))), renderer.render_many_device([b for _, b in blocks]))]
        jobs = [(k, b, range(self.images_per_block)) for k, b in blocks]
        images = np.stack([img.copy() for rb in self.render_blocks(renderer, jobs) for img in rb.images])
        return [(list(range(len(blocks))), images if renderer.device == "cpu" else renderer._cuda.to_device(images))]

    def preview_images(self, per_class, limit):
        r = self.renderer()
        n = max(1, min(per_class * limit, self.settings.images // (self.settings.workers if self.official else 1)))
        if self.official:
            return [img.copy() for img, _ in r.official(0, range(n))]
        return [r.image(i)[0].copy() for i in range(min(n, self.settings.images))]


class _Latest:
    """``masks[i]`` of a lazily rendered block: the mask of the image the consumer holds
    (images and masks are taken in step, as every consumer does)."""

    def __init__(self, masks: list):
        self.masks = masks

    def __getitem__(self, i):
        return self.masks[-1]


class SegRCDBFamily(Family):
    name = "segrcdb"
    summary = "SegRCDB: radial contours of several classes per image with per-pixel class masks"
    description = ("SegRCDB segmentation data: each image shows RCDB contours of several classes at random places; "
                   "its mask labels every line pixel with the class that drew it")
    papers = (SEGRCDB_PAPER,)
    purposes = PURPOSES
    small = {"classes": 3, "images": 4, "polygons": 3, "image_size": 32, "start_pos": 20, "vertex_num": 40,
             "radius_max": 10, "line_num_max": 8}
    #: None: the transfer study pretrains classifiers; a segmentation study does not exist yet
    #: (docs/segrcdb.md describes segmentation pretraining instead).
    study_arms = {}
    label_kind = "mask"
    settings = SegRCDBSettings
    count_key = "classes"
    config_types = (SegRCDBSettings,)
    cpu_renderer = SegRCDBRenderer
    cuda_renderer = ".render_cuda.SegRCDBCUDARenderer"
    bound = SegRCDBBound

    def device_note(self, settings, device):
        if device == "cuda":
            return ("segrcdb: the GPU adds little: the host builds every image, as for RCDB, whose GPU ran at "
                    "about two CPU cores' worth on an H200; with more cores, --device cpu is likely faster "
                    "(docs/gpu.md section 9)")
        return None

    def find_classes(self, settings, workers, progress=None):
        return class_table(settings)

    def classes_from_docs(self, docs):
        return np.array([[d["params"][f] for f in FIELDS] for d in docs], dtype=np.float64).reshape(-1, 7)

    def export_path(self, meta, ext):
        return f"segrcdb/{meta['image']:06d}.{ext}"
