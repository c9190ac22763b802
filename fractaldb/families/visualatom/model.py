"""VisualAtom classes and rendering (FDSL.md §2; docs/visualatom.md).

A **class** (:class:`VisualAtomClass`) is the tuple of §2.1: vertices V, orbits K, noise
coefficient c, "line width" lam (a radius increment per orbit), start radius r0, waves n1 and
n2, oval factors ox and oy.  An **instance** is K orbits of the recurrence of
:mod:`fractaldb.contours.orbits` (alpha 1, the wave on, the centre in the start vertex) around
its own centre, one gray per orbit, drawn with Pillow's 1-px lines on black.

Two modes:

* ``official`` replays ``render_VisualAtom.py`` bit for bit: worker ``t`` of ``threads``
  (the published 20) draws classes ``[t*P, (t+1)*P)``, ``P = script_classes // threads``,
  from CPython's ``random.seed(t + 1)``, class after class, instance after instance.
  :func:`official_classes` walks each worker's stream once (noise words skipped, not
  drawn) and stores, per class, the generator state where its instance 0 begins and, for
  every block of instances, the words to skip and the block's first centre: any block
  renders alone, in any process.
* ``modern`` (default) draws class ``j`` from ``generator(seed, "visualatom-class", j)`` and
  instance ``i`` (noise, grays, centre) from ``stream_key(seed, "visualatom-instance", j, i)``:
  the same bytes for any worker count, any number of classes.
"""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np

from ...contours import orbits as O
from ...contours.pyrandom import py_randint, py_uniform, seed_state, skip
from ...errors import ConfigError
from ...seeds import declare_purposes, generator, stream_key
from ..base import HostRenderer
from . import kernels as K

__all__ = ["PURPOSES", "VisualAtomClass", "ClassRanges", "VisualAtomRenderConfig", "VisualAtomRenderer",
           "official_classes", "modern_classes", "instance_key", "block_size", "Item"]

#: The family's random streams (derived codes).
PURPOSES = declare_purposes("visualatom", {"visualatom-class": None, "visualatom-instance": None})


def block_size(instances: int) -> int:
    """Instances per block in official mode: the largest divisor of ``instances`` up to 10
    (a block replays its instances in order from one stored position)."""
    return max(d for d in range(1, 11) if instances % d == 0)


@dataclass(frozen=True)
class ClassRanges:
    """The class-parameter ranges of §2.1 (make_VisualAtom.sh's values by default)."""

    vertices: tuple = (200, 1000)
    orbits: tuple = (1, 200)
    perlin_min: float = 0.0
    line_width: float = 0.1
    radius_min: int = 10
    oval_rate: float = 2.0
    waves: tuple = (0, 20)
    start_pos: int = 512
    image_size: int = 512


@dataclass(frozen=True)
class VisualAtomClass:
    """One class.  ``state``/``offsets``/``centres`` only in official mode: the CPython state
    (base64 of 625 little-endian uint32) where instance 0 begins, and per block the words to
    skip from there and its first instance's centre ``(cy, cx)``.  ``centres`` of a modern
    class is empty (centres are per instance)."""

    vertices: int
    orbits: int
    noise: float
    line_width: float
    radius: int
    wave1: int
    wave2: int
    oval_x: float
    oval_y: float
    state: str = ""
    offsets: tuple = ()
    centres: tuple = ()

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        if not self.state:
            for k in ("state", "offsets", "centres"):
                del d[k]
        else:
            d["offsets"], d["centres"] = list(self.offsets), [list(c) for c in self.centres]
        return d

    @classmethod
    def from_dict(cls, d) -> "VisualAtomClass":
        """Inverse of :meth:`to_dict`.

        Raises:
            ConfigError: a key is missing, unknown or of the wrong type.
        """
        names = [f.name for f in fields(cls)]
        if not isinstance(d, dict) or set(d) - set(names) or set(names[:9]) - set(d):
            raise ConfigError(f"a VisualAtom class needs the keys {', '.join(names[:9])} "
                              f"(and state, offsets, centres in official mode), got {sorted(d) if isinstance(d, dict) else d!r}")
        try:
            out = cls(int(d["vertices"]), int(d["orbits"]), float(d["noise"]), float(d["line_width"]), int(d["radius"]),
                      int(d["wave1"]), int(d["wave2"]), float(d["oval_x"]), float(d["oval_y"]), str(d.get("state", "")),
                      tuple(int(o) for o in d.get("offsets", ())),
                      tuple((float(c[0]), float(c[1])) for c in d.get("centres", ())))
        except (TypeError, ValueError, IndexError, KeyError) as exc:
            raise ConfigError(f"a VisualAtom class has a bad value: {exc}") from None
        if not 3 <= out.vertices <= 100000 or not 1 <= out.orbits <= 100000:
            raise ConfigError(f"a VisualAtom class needs 3..100000 vertices and 1..100000 orbits, got "
                              f"{out.vertices} and {out.orbits}")
        if out.state:
            state_array(out.state)
        return out


def state_array(text: str) -> np.ndarray:
    """A stored CPython state back as ``uint32[625]`` (a copy).

    Raises:
        ConfigError: not 625 words of base64, or a position past 624.
    """
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raw = b""
    if len(raw) != 625 * 4:
        raise ConfigError("a VisualAtom class's state must be 625 base64-encoded 32-bit words")
    st = np.frombuffer(raw, dtype="<u4").astype(np.uint32)
    if st[624] > 624:
        raise ConfigError(f"a VisualAtom class's state position must be at most 624, got {st[624]}")
    return st


def _state_text(st: np.ndarray) -> str:
    return base64.b64encode(np.asarray(st, dtype="<u4").tobytes()).decode("ascii")


def _draw_class(st, r: ClassRanges):
    """The original's class draws (§2.1, in its order) from CPython state ``st``."""
    V = py_randint(st, r.vertices[0], r.vertices[1])
    K_ = py_randint(st, r.orbits[0], r.orbits[1])
    c = py_uniform(st, float(r.perlin_min), float(r.perlin_min + 4))
    lam = py_uniform(st, 0.0, float(r.line_width))
    r0 = py_randint(st, r.radius_min, r.radius_min + 50)
    n1 = py_randint(st, r.waves[0], r.waves[1])
    while True:
        n2 = py_randint(st, r.waves[0], r.waves[1])
        if n1 != n2 or n1 == 0:
            break
    ox = py_uniform(st, 1.0, float(r.oval_rate))
    oy = py_uniform(st, 1.0, float(r.oval_rate))
    cy = (r.image_size + py_randint(st, -r.start_pos, r.start_pos)) / 2
    cx = (r.image_size + py_randint(st, -r.start_pos, r.start_pos)) / 2
    return (int(V), int(K_), float(c), float(lam), int(r0), int(n1), int(n2), float(ox), float(oy)), (cy, cx)


def _walk_worker(t: int, first: int, count: int, instances: int, r: ClassRanges) -> list:
    """Worker ``t``'s first ``count`` classes (class ids from ``first``), as official classes."""
    st = seed_state(t + 1)
    block = block_size(instances)
    out = []
    for _ in range(count):
        params, (cy, cx) = _draw_class(st, r)
        state = _state_text(st)
        nb = instances // block
        offsets = np.zeros(nb, dtype=np.int64)
        centres = np.zeros((nb, 2), dtype=np.float64)
        K.walk_class(st, params[0], params[1], instances, block, r.image_size, r.start_pos, cy, cx, offsets, centres)
        out.append(VisualAtomClass(*params, state=state, offsets=tuple(int(o) for o in offsets),
                                   centres=tuple((float(a), float(b)) for a, b in centres)))
    return out


def official_classes(classes: int, script_classes: int, threads: int, instances: int, r: ClassRanges,
                     workers: int = 1) -> list:
    """Classes ``0..classes-1`` of ``render_VisualAtom.py`` run with ``--numof_classes
    script_classes --numof_thread threads --numof_instances instances`` (one stream walk per
    worker, ``workers`` threads at once)."""
    per = script_classes // threads
    jobs = [(t, t * per, min(per, classes - t * per)) for t in range(threads) if t * per < classes]
    with ThreadPoolExecutor(max(1, min(workers, len(jobs)))) as pool:
        parts = list(pool.map(lambda j: _walk_worker(j[0], j[1], j[2], instances, r), jobs))
    return [c for part in parts for c in part]


def modern_classes(seed: int, classes: int, r: ClassRanges) -> list:
    """Classes ``0..classes-1``: class ``j`` from ``generator(seed, "visualatom-class", j)``
    with the distributions of §2.1."""
    out = []
    for j in range(classes):
        g = generator(seed, "visualatom-class", j)
        V = int(g.integers(r.vertices[0], r.vertices[1] + 1))
        K_ = int(g.integers(r.orbits[0], r.orbits[1] + 1))
        c = float(g.uniform(r.perlin_min, r.perlin_min + 4))
        lam = float(g.uniform(0.0, r.line_width))
        r0 = int(g.integers(r.radius_min, r.radius_min + 51))
        n1 = int(g.integers(r.waves[0], r.waves[1] + 1))
        while True:
            n2 = int(g.integers(r.waves[0], r.waves[1] + 1))
            if n1 != n2 or n1 == 0:
                break
        ox, oy = (float(v) for v in g.uniform(1.0, r.oval_rate, 2))
        out.append(VisualAtomClass(V, K_, c, lam, r0, n1, n2, ox, oy))
    return out


def instance_key(seed: int, klass: int, instance: int) -> np.uint64:
    """The key of a modern instance: ``stream_key(seed, "visualatom-instance", klass, instance)``."""
    return stream_key(seed, "visualatom-instance", klass, instance)


@dataclass(frozen=True)
class VisualAtomRenderConfig:
    """How instances are drawn: side, mode, gradient law, centre spread, stored channels."""

    size: int = 512
    compat: str = "modern"
    perlin_grad: str = "library"
    start_pos: int = 512
    channels: int = 1


@dataclass(frozen=True)
class Item:
    """A render job: modern ``(cls, key)`` -> one image; official ``(cls, block=b, count=n)``
    -> the ``n`` images from block ``b``'s first instance on."""

    cls: VisualAtomClass
    key: object = None
    block: int = -1
    count: int = 1


@lru_cache(maxsize=256)
def trig(V: int, n1: int, n2: int) -> np.ndarray:
    """The read-only ``(4, V)`` trig table of (V, n1, n2) (:func:`fractaldb.contours.orbits.trig_table`)."""
    out = np.empty((4, V), dtype=np.float64)
    O.trig_table(n1, n2, out)
    out.setflags(write=False)
    return out


#: Classes whose stream position a renderer keeps (2.5 kB each).
RESUME_CLASSES = 4096


class VisualAtomRenderer(HostRenderer):
    """Renders VisualAtom instances on the calling thread; one renderer per thread
    (the shard executors run one per core)."""

    def __init__(self, cfg: VisualAtomRenderConfig):
        self.cfg = cfg
        self.gray = np.zeros((cfg.size, cfg.size), dtype=np.uint8)
        self._noidx = np.zeros((0, 0), dtype=np.int32)
        #: id(class) -> (class, block, stream state): where its last official block left off (:meth:`grays`)
        self._resume = {}

    def _scratch(self, cls: VisualAtomClass):
        V, K_ = cls.vertices, cls.orbits
        return np.empty((K_, 2, V)), np.empty(K_, dtype=np.int32), np.empty(V), np.empty(V)

    def _draw(self, cls, P, grays, cy, cx, xs, ys):
        self.gray[:] = 0
        O.trace_orbits(P, grays, trig(cls.vertices, cls.wave1, cls.wave2), cx, cy, float(cls.radius), cls.oval_x,
                       cls.oval_y, cls.noise, cls.line_width, 1.0, True, True, self.gray, self._noidx, 0, xs, ys)
        return self.gray

    def grays(self, item: Item):
        """The item's images as 2-D gray arrays (the renderer's own buffer, overwritten by the next)."""
        cfg, cls = self.cfg, item.cls
        P, grays, xs, ys = self._scratch(cls)
        if item.block < 0:  # modern
            key = np.uint64(item.key)
            O.keyed_draws(key, 0, 255, cfg.perlin_grad == "fixed", P, grays)
            base = 2 * cls.orbits * cls.vertices + cls.orbits
            cy = K.keyed_centre(key, base, cfg.size, cfg.start_pos)
            cx = K.keyed_centre(key, base + 1, cfg.size, cfg.start_pos)
            yield self._draw(cls, P, grays, cy, cx, xs, ys)
            return
        # Skipping ahead costs a twist per 624 words, so reaching block b from the class's
        # start costs b blocks of words: start from where an earlier block of the class ended.
        resume = self._resume.pop(id(cls), None)
        if resume is not None and resume[0] is cls and resume[1] <= item.block:
            st = resume[2]
            skip(st, np.int64(cls.offsets[item.block] - cls.offsets[resume[1]]))
        else:
            st = state_array(cls.state)
            skip(st, np.int64(cls.offsets[item.block]))
        cy, cx = cls.centres[item.block]
        for i in range(item.count):
            O.replay_draws(st, 0, 255, False, P, grays)
            yield self._draw(cls, P, grays, cy, cx, xs, ys)
            cy = (cfg.size + py_randint(st, -cfg.start_pos, cfg.start_pos)) / 2
            cx = (cfg.size + py_randint(st, -cfg.start_pos, cfg.start_pos)) / 2
        # the next instance's centre is drawn: the stream stands at the next block's offset
        if item.block + 1 < len(cls.offsets):
            if len(self._resume) >= RESUME_CLASSES:
                self._resume.pop(next(iter(self._resume)))
            self._resume[id(cls)] = (cls, item.block + 1, st)

    def render_many(self, items):
        """Every item's images, in order, as ``(size, size, channels)`` arrays (new arrays)."""
        for item in items:
            for g in self.grays(item):
                yield self._shape(g.copy())

    def _shape(self, g):
        return np.repeat(g[:, :, None], self.cfg.channels, axis=2) if self.cfg.channels > 1 else g[:, :, None]

    def render_many_device(self, items, out=None):
        """All items' images in one ``(n, size, size, channels)`` array (host memory)."""
        images = list(self.render_many(items))
        s, c = self.cfg.size, self.cfg.channels
        if out is None:
            out = np.empty((len(images), s, s, c), dtype=np.uint8)
        for i, img in enumerate(images):
            out[i] = img
        return out


def check_official(classes: int, script_classes: int, threads: int) -> None:
    """Official mode makes only the classes the original makes.

    Raises:
        ConfigError: ``classes`` past ``threads * (script_classes // threads)``.
    """
    made = threads * (script_classes // threads)
    if classes > made:
        raise ConfigError(f"visualatom: the original script with {script_classes} classes on {threads} threads "
                          f"makes only classes 0..{made - 1} ({script_classes // threads} per thread); "
                          f"asked for {classes}: lower classes or raise script_classes")
