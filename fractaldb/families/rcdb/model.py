"""RCDB classes, the official stream walker and the CPU renderer (FDSL.md §3).

A **class** is ``(V, K, c, lambda)``: vertices, orbits, noise coefficient and the per-orbit
radius increment the script calls "line width".  Start radius, oval factors and centre are
drawn per instance (§3.2), as the published script does.

* **official** (``compat: official``): the published script replayed.  Worker ``t`` of ``T``
  (``workers``) owns classes ``[t C/T, (t+1) C/T)`` and one CPython ``random`` stream seeded
  ``t + 1``; a class's images can only be reached by walking its worker's stream, so the walker
  (:class:`OfficialStreams`) keeps the state at each class start it has reached and skips the
  noise words of instances it does not draw.
* **modern** (default): class ``j`` from the keyed generator ``(seed, rcdb-classes, j)``, instance
  ``i`` of class ``j`` from the counter stream ``(seed, rcdb-instance, j, i)``: the same bytes for
  any worker count, any class reachable directly.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ...contours import orbits as O
from ...contours.pyrandom import seed_state
from ...seeds import declare_purposes, generator, stream_key
from ..base import HostRenderer
from . import kernels as K

PURPOSES = declare_purposes("rcdb", {"rcdb-classes": None, "rcdb-instance": None})

__all__ = ["PURPOSES", "RCDBClass", "OfficialStreams", "RCDBRenderer", "Scratch", "modern_classes", "instance_key"]


@dataclass(frozen=True)
class RCDBClass:
    vertices: int
    orbits: int
    noise: float
    line_width: float

    def array(self) -> np.ndarray:
        return np.array([self.vertices, self.orbits, self.noise, self.line_width], dtype=np.float64)

    def to_dict(self) -> dict:
        return {"vertices": self.vertices, "orbits": self.orbits, "noise": self.noise, "line_width": self.line_width}

    @classmethod
    def from_array(cls, a) -> "RCDBClass":
        return cls(int(a[0]), int(a[1]), float(a[2]), float(a[3]))


def modern_classes(s) -> list:
    """Modern mode's classes: the script's distributions, class ``j`` from its own keyed generator."""
    out = []
    for j in range(s.classes):
        rng = generator(s.seed, "rcdb-classes", j)
        while True:
            v = int(rng.exponential(100.0))
            if 2 < v <= s.vertex_num:
                break
        k = int(rng.integers(s.line_num_min, s.line_num_min + s.line_num_span + 1))
        c = float(rng.uniform(s.perlin_min, s.perlin_min + 4))
        out.append(RCDBClass(v, k, c, float(rng.uniform(0.0, s.line_width))))
    return out


def instance_key(seed: int, klass: int, instance: int):
    """The counter-stream key of modern instance ``instance`` of class ``klass``."""
    return stream_key(seed, "rcdb-instance", klass, instance)


class Scratch:
    """One thread's buffers: the image, the noise ``P`` ``(K, 2, V)`` and grays of one instance,
    the trig table and vertex arrays (V <= vertex_num, K <= line_num_min + 199)."""

    def __init__(self, s):
        self.s = s
        kmax = s.line_num_min + s.line_num_span
        self.img = np.empty((s.image_size, s.image_size), dtype=np.uint8)
        self.pbuf = np.empty(kmax * 2 * s.vertex_num)
        self.gbuf = np.empty(kmax, dtype=np.int32)
        self.tbuf = np.empty(4 * s.vertex_num)
        self.words = np.empty(4 * s.vertex_num, dtype=np.uint32)
        self.used = np.zeros(1, dtype=np.int64)  # words skipped (skip_draws counts them)
        self.xs = np.empty(s.vertex_num)
        self.ys = np.empty(s.vertex_num)
        self.none = np.empty((0, 0), dtype=np.int32)

    def views(self, v: int, k: int):
        """``(P, grays)`` of a ``(V, K)`` instance (C-contiguous views of the buffers)."""
        return self.pbuf[:k * 2 * v].reshape(k, 2, v), self.gbuf[:k]

    def trig(self, v: int):
        t = self.tbuf[:4 * v].reshape(4, v)
        O.trig_table(0, 0, t)
        return t

    def spec(self, cls, place, P, grays, copy: bool) -> dict:
        """One instance for :func:`fractaldb.contours.orbits.trace_orbits` / the GPU's ``pack``."""
        v = int(cls[0])
        return {"P": P.copy() if copy else P, "grays": grays.copy() if copy else grays, "trig": self.trig(v).copy(),
                "cx": place[4], "cy": place[3], "r0": place[0], "ox": place[1], "oy": place[2], "c": cls[2],
                "lam": cls[3], "alpha": 2.0, "wave": False, "centre_first": False, "target": 0}

    def draw(self, d: dict) -> np.ndarray:
        """Trace one instance on white (RCDB's background) into :attr:`img`."""
        self.img[:, :] = 255
        O.trace_orbits(d["P"], d["grays"], d["trig"], d["cx"], d["cy"], d["r0"], d["ox"], d["oy"], d["c"], d["lam"],
                       2.0, False, False, self.img, self.none, 0, self.xs, self.ys)
        return self.img


class OfficialStreams:
    """The published script's worker streams for one settings object: class parameters and
    the stream state at each class start (thread-safe; starts cached once reached)."""

    _cache: dict = {}
    _lock = threading.Lock()

    def __init__(self, s):
        self.s = s
        self.per = s.classes // s.workers
        self.starts: dict = {}  # class -> (state at instance 0's orbits, class array, placement)
        self.lock = threading.Lock()

    @classmethod
    def of(cls, s) -> "OfficialStreams":
        with cls._lock:
            return cls._cache.setdefault(s, cls(s))

    def _first(self, st, klass):
        s = self.s
        c = np.empty(4)
        p = np.empty(5)
        K.official_class(st, s.vertex_num, s.line_num_min, s.perlin_min, s.line_width, c)
        K.official_placement(st, True, s.radius_min, s.oval_rate, s.image_size, s.start_pos, p)
        with self.lock:
            self.starts.setdefault(klass, (st.copy(), c, p.copy()))
        return c, p

    def walk_instances(self, st, c, p, scratch, upto: int, wanted=(), copy=False):
        """Advance ``st`` over instances ``0 .. upto - 1`` of a class; yields ``(instance, spec)``
        for those in ``wanted`` (their noise drawn, the rest skipped), and leaves ``st`` after
        the last one's next placement."""
        s = self.s
        v, k, top = int(c[0]), int(c[1]), s.image_size // 2
        for i in range(upto):
            if i in wanted:
                P, grays = scratch.views(v, k)
                K.replay_orbits(st, top, P, grays, scratch.words)
                yield i, scratch.spec(c, p, P, grays, copy)
            else:
                O.skip_draws(st, v, k, 0, top, scratch.used)
            K.official_placement(st, False, s.radius_min, s.oval_rate, s.image_size, s.start_pos, p)

    def class_start(self, klass: int, scratch):
        """``(state copy, class array, placement copy)`` at the start of class ``klass``."""
        with self.lock:
            hit = self.starts.get(klass)
        if hit is not None:
            return hit[0].copy(), hit[1], hit[2].copy()
        worker = klass // self.per
        first = worker * self.per
        known = [k for k in range(first, klass) if k in self.starts]
        if known:
            k0 = max(known)
            st, c, p = self.class_start(k0, scratch)
        else:
            k0, st = first, seed_state(worker + 1)
            c, p = self._first(st, k0)
        for k in range(k0, klass):
            for _ in self.walk_instances(st, c, p, scratch, self.s.instances):
                pass
            c, p = self._first(st, k + 1)
        return self.class_start(klass, scratch)

    def classes(self) -> list:
        """Every class's parameters (walks each worker's whole stream, workers in threads)."""
        from concurrent.futures import ThreadPoolExecutor

        def last_of(worker):
            if self.per:
                self.class_start((worker + 1) * self.per - 1, Scratch(self.s))

        with ThreadPoolExecutor(max_workers=min(self.s.workers, 16)) as pool:
            list(pool.map(last_of, range(self.s.workers)))
        return [RCDBClass.from_array(self.starts[k][1]) for k in range(self.per * self.s.workers)]


class Specs:
    """What the CPU and GPU renderers share: the instances of modern jobs and official blocks
    as ``trace_orbits`` arguments (``copy``: buffers of their own, for a GPU batch)."""

    def modern_spec(self, cls: np.ndarray, key, copy: bool = False) -> dict:
        s, sc = self.cfg, self.scratch
        place = np.empty(5)
        K.modern_placement(np.uint64(key), s.radius_min, s.radius_span, float(s.oval_rate), s.image_size, s.start_pos,
                           place)
        P, grays = sc.views(int(cls[0]), int(cls[1]))
        O.keyed_draws(np.uint64(key), 0, 255 if s.gray == "uniform" else 256, False, P, grays)
        return sc.spec(cls, place, P, grays, copy)

    def official_specs(self, klass: int, offsets, copy: bool = False):
        streams = OfficialStreams.of(self.cfg)
        st, c, p = streams.class_start(klass, self.scratch)
        for _, d in streams.walk_instances(st, c, p, self.scratch, max(offsets) + 1, set(offsets), copy):
            yield d


class RCDBRenderer(Specs, HostRenderer):
    """CPU renderer.  Jobs ``(class array, instance key)`` (modern); official blocks go through
    :meth:`official` (the stream walker).  Images are ``(S, S, 1)`` uint8."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.scratch = Scratch(cfg)

    def modern(self, cls: np.ndarray, key) -> np.ndarray:
        return self.scratch.draw(self.modern_spec(cls, key))[:, :, None]

    def official(self, klass: int, offsets):
        """The images of class ``klass`` at ``offsets`` (sorted), replayed from its worker's stream."""
        for d in self.official_specs(klass, offsets):
            yield self.scratch.draw(d)[:, :, None]

    def render_many(self, jobs):
        for cls, key in jobs:
            yield self.modern(cls, key)

    def render_many_device(self, jobs, out=None):
        jobs = list(jobs)
        s = self.cfg.image_size
        out = np.empty((len(jobs), s, s, 1), dtype=np.uint8) if out is None else out
        for i, img in enumerate(self.render_many(jobs)):
            out[i] = img
        return out
