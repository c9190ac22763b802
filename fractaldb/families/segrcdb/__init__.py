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
from ...contours import orbits as O
from ...contours.pyrandom import seed_state
from ...errors import ConfigError
from ...seeds import declare_purposes, generator, stream_key
from ..base import BoundFamily, Family, HostRenderer, RenderedBlock, StudyArm, setting
from . import kernels as K

__all__ = ["SegRCDBFamily", "SegRCDBSettings", "SEGRCDB_PAPER"]

PURPOSES = declare_purposes("segrcdb", {"segrcdb-classes": None, "segrcdb-image": None})
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


def class_table(s) -> np.ndarray:
    """``(classes, 7)`` float64: V, K, c, lambda, r0, ox, oy of class id j + 1."""
    out = np.empty((s.classes, 7))
    if s.compat == "official":
        K.official_table(seed_state(0), s.vertex_num, s.line_num, s.line_num_max, s.perlin_min, s.perlin_max,
                         s.line_width, s.radius_min, s.radius_max, s.oval_rate, out)
        return out
    for j in range(s.classes):
        rng = generator(s.seed, "segrcdb-classes", j)
        while True:
            v = int(rng.exponential(s.vertex_num / 5))
            if 2 < v <= s.vertex_num:
                break
        out[j] = (v, rng.integers(s.line_num, s.line_num_max + 1), rng.uniform(s.perlin_min, s.perlin_max),
                  rng.uniform(0.0, s.line_width), rng.integers(s.radius_min, s.radius_max + 1),
                  rng.uniform(1, s.oval_rate), rng.uniform(1, s.oval_rate))
    return out


class Specs:
    """What the CPU and GPU renderers share: each image as a list of polygons in
    ``trace_orbits`` / ``pack`` form (``copy``: buffers of their own, for a GPU batch)."""

    def _setup(self, cfg):
        self.cfg = cfg
        kmax = cfg.line_num_max
        self.pbuf = np.empty(kmax * 2 * cfg.vertex_num)
        self.gbuf = np.empty(kmax, dtype=np.int32)
        self._table = None
        self._trig = {}

    def table(self):
        if self._table is None:
            self._table = class_table(self.cfg)
        return self._table

    def trig(self, cid: int):
        t = self._trig.get(cid)
        if t is None:
            t = self._trig[cid] = np.empty((4, int(self.table()[cid - 1, 0])))
            O.trig_table(0, 0, t)
        return t

    def _spec(self, cid, cy, cx, draws, copy):
        row = self.table()[cid - 1]
        v, k = int(row[0]), int(row[1])
        P, grays = self.pbuf[:k * 2 * v].reshape(k, 2, v), self.gbuf[:k]
        draws(P, grays)
        return {"P": P.copy() if copy else P, "grays": grays.copy() if copy else grays, "trig": self.trig(cid),
                "cx": cx, "cy": cy, "r0": row[4], "ox": row[5], "oy": row[6], "c": row[2], "lam": row[3],
                "alpha": 2.0, "wave": False, "centre_first": True, "target": 0, "label": cid}

    def modern_polygons(self, n: int, copy: bool = False):
        """Image ``n``'s polygons (modern): grays 1..255."""
        s, out = self.cfg, np.empty(3)
        key = np.uint64(stream_key(s.seed, "segrcdb-image", n))
        for p in range(s.polygons):
            ok = np.uint64(K.modern_polygon(key, p, s.classes, s.image_size, s.start_pos, out))
            yield self._spec(int(out[0]), out[1], out[2], lambda P, g: O.keyed_draws(ok, 1, 255, False, P, g), copy)

    def official_polygons(self, st, draw: bool, copy: bool = False):
        """The next image of a worker's stream ``st``: its polygons, or (``draw`` False) only
        the stream consumed."""
        s, out = self.cfg, np.empty(3)
        for _ in range(s.polygons):
            K.official_polygon(st, s.classes, s.image_size, s.start_pos, out)
            cid = int(out[0])
            if draw:
                yield self._spec(cid, out[1], out[2], lambda P, g: O.replay_draws(st, 0, 255, False, P, g), copy)
            else:
                row = self.table()[cid - 1]
                O.skip_draws(st, int(row[0]), int(row[1]), 0, 255)

    def official_images(self, worker: int, offsets, copy: bool = False):
        """Per wanted offset of worker ``worker``'s images (sorted), an iterator of its polygons."""
        st = seed_state(worker + 1)
        wanted = set(offsets)
        for i in range(max(offsets) + 1):
            polygons = self.official_polygons(st, i in wanted, copy)
            if i in wanted:
                yield polygons
            for _ in polygons:  # what the consumer did not take
                pass


class SegRCDBRenderer(Specs, HostRenderer):
    """CPU renderer: :meth:`image` (modern, by image number) and :meth:`official` (a worker's
    images at some offsets).  Yields ``(image (S, S, 1), mask (S, S))``, valid until the next."""

    def __init__(self, cfg):
        self._setup(cfg)
        s = cfg.image_size
        self.img = np.empty((s, s), dtype=np.uint8)
        self.idx = np.empty((s, s), dtype=np.int32)
        self.lut = np.zeros(cfg.polygons * cfg.line_num_max + 1, dtype=np.uint8)
        self.xs = np.empty(cfg.vertex_num)
        self.ys = np.empty(cfg.vertex_num)

    def draw(self, polygons):
        """Trace the polygons in order on black; the mask is the label of the highest orbit."""
        self.img[:, :] = 0
        self.idx[:, :] = 0
        base = 0
        for d in polygons:
            k = len(d["grays"])
            O.trace_orbits(d["P"], d["grays"], d["trig"], d["cx"], d["cy"], d["r0"], d["ox"], d["oy"], d["c"],
                           d["lam"], 2.0, False, True, self.img, self.idx, base, self.xs, self.ys)
            self.lut[base + 1:base + k + 1] = d["label"]
            base += k
        return self.img[:, :, None], self.lut[self.idx]

    def image(self, n: int):
        return self.draw(self.modern_polygons(n))

    def official(self, worker: int, offsets):
        for polygons in self.official_images(worker, offsets):
            yield self.draw(polygons)

    def render_many(self, jobs):
        for n in jobs:
            yield self.image(n)[0]

    def render_many_device(self, jobs, out=None):
        jobs = list(jobs)
        return np.stack([img.copy() for img in self.render_many(jobs)]) if jobs else \
            np.empty((0, self.cfg.image_size, self.cfg.image_size, 1), np.uint8)


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
        jobs = [(k, b, range(self.images_per_block)) for k, b in blocks]
        images = [img.copy() for rb in self.render_blocks(renderer, jobs) for img in rb.images]
        return [(list(range(len(blocks))), np.stack(images))]

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
    study_arms = {"segrcdb": StudyArm("segrcdb-tiny", ("shard_size=1000",), "SegRCDB masks (segmentation; "
                                      "the classification study skips mask data)")}
    label_kind = "mask"
    settings = SegRCDBSettings
    count_key = "classes"
    config_types = (SegRCDBSettings,)
    cpu_renderer = SegRCDBRenderer
    bound = SegRCDBBound

    def find_classes(self, settings, workers, progress=None):
        return class_table(settings)

    def classes_from_docs(self, docs):
        return np.array([[d["params"][f] for f in FIELDS] for d in docs], dtype=np.float64).reshape(-1, 7)

    def export_path(self, meta, ext):
        return f"segrcdb/{meta['image']:06d}.{ext}"
