"""SegRCDB's class table and CPU renderer (FDSL.md §4); :mod:`.render_cuda` is the GPU twin.

:class:`Specs` turns an image into its polygons in the form
:func:`fractaldb.contours.orbits.trace_orbits` and the GPU's ``pack`` take (class id, centre,
noise, grays); both renderers build on it, so they draw the same numbers.
"""

from __future__ import annotations

import numpy as np

from ...contours import orbits as O
from ...contours.pyrandom import seed_state
from ...seeds import declare_purposes, generator, stream_key
from ..base import HostRenderer
from . import kernels as K

__all__ = ["PURPOSES", "class_table", "Specs", "SegRCDBRenderer"]

PURPOSES = declare_purposes("segrcdb", {"segrcdb-classes": None, "segrcdb-image": None})


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
        self.used = np.zeros(1, dtype=np.int64)  # words skipped (skip_draws counts them)

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
                O.skip_draws(st, int(row[0]), int(row[1]), 0, 255, self.used)

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
