"""Colour fractals on textured backgrounds (Anderson & Farrell, WACV 2022).

* A **class** is a sigma-factor system (:func:`sigma_factor_rows`, drawn from
  ``generator(seed, "colorfractal-class", class)``), stored as an
  :class:`~fractaldb.ifs.system.IFS` (rows ``a b c d e f p``).
* A **single-label instance** (:class:`ColorFractalRenderer`) jitters one map,
  renders a random window of the attractor as a graded density (one random
  3x3 patch per image), flips it, colours it by density, pastes it on a
  diamond-square background and maybe blurs it.  Its scalars come from
  ``generator(seed, "colorfractal-instance", class, instance)``; its chaos
  game from key ``("colorfractal-points", class, instance)``; its background
  noise from key ``("colorfractal-background", class, instance)``.
* A **multi-instance image** (:class:`MultiFractalRenderer`) pastes 1..5
  objects, each a cached 112 px render of some class (``render r`` of class
  ``j``: ``("multifractal-cache", j, r)``), flipped, coloured, resized and
  placed at random, on a background.  One object is the sample's own
  (primary) class; the others are drawn uniformly from all classes.  Its
  layout is :func:`multi_layout`, from ``("multifractal-layout", class,
  instance)``: the labels of a sample are known without rendering it.

Numbers and order of the draws: docs/color-fractals.md.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ...seeds import declare_purposes, generator, stream_key
from ..base import HostRenderer
from ...ifs.system import IFS
from . import kernels as K

#: The two families' random streams.
COLOR_PURPOSES = declare_purposes("colorfractal", {
    "colorfractal-class": 22,       # sigma-factor system of a colour-fractal class (class)
    "colorfractal-instance": 23,    # per-image draws of a colour-fractal instance (class, instance)
    "colorfractal-points": 24,      # chaos-game uniforms of a colour-fractal instance (class, instance)
    "colorfractal-background": 25,  # diamond-square noise of a colour-fractal instance (class, instance)
})
MULTI_PURPOSES = declare_purposes("multifractal", {
    "multifractal-layout": 26,      # objects, colours, places, background, blur of a multi image (class, instance)
    "multifractal-cache": 27,       # patch of a cached class render (class, render)
    "multifractal-cache-points": 28,  # chaos-game uniforms of a cached class render (class, render)
    "multifractal-background": 29,  # diamond-square noise of a multi image (class, instance)
})

__all__ = ["sigma_factor_rows", "sample_svs", "find_systems", "ColorRenderConfig", "ColorFractalRenderer",
           "MultiRenderConfig", "MultiFractalRenderer", "multi_layout", "Layout", "jitter_system",
           "patch_cells", "blur_weights", "background_params"]


# --------------------------------------------------------------------------
# Classes: the sigma-factor sampler
# --------------------------------------------------------------------------

def sample_svs(n: int, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``(n, 2)`` singular values with ``sum(s1 + 2 s2) = sigma``, ``1 >= s1 >= s2 >= 0``.

    Sequential draws: ``p = sigma``, ``q = sigma - 3 n + 3``; each of the first
    ``n - 1`` maps draws ``s1 ~ U(max(0, q/3), min(1, p))``, then
    ``s2 ~ U(max(0, q/2), min(s1, p/2))`` (with ``q, p`` updated in between);
    the last map draws ``s2 ~ U(max(0, (p - 1)/2), p/3)`` and takes
    ``s1 = p - 2 s2``.
    """
    s = np.empty((n, 2))
    p = sigma
    q = sigma - 3 * n + 3
    for i in range(n - 1):
        s1 = rng.uniform(max(0.0, q / 3), min(1.0, p))
        q -= s1
        p -= s1
        s2 = rng.uniform(max(0.0, q / 2), min(s1, p / 2))
        q = q - 2 * s2 + 3
        p -= 2 * s2
        s[i] = s1, s2
    s2 = rng.uniform(max(0.0, (p - 1) / 2), p / 3)
    s[-1] = p - 2 * s2, s2
    return s


def sigma_factor_rows(rng: np.random.Generator, maps=(2, 4)) -> np.ndarray:
    """One sigma-factor system as ``(N, 7)`` rows ``a b c d e f p`` (p ~ |det A|).

    Draw order (the original's): ``N ~ U{maps}``; ``2N x 2`` signs (a uniform
    each, sign of ``u - 0.5``); ``2N`` angles ``U(-pi, pi)``; ``sigma ~
    U((5 + N)/2, (6 + N)/2)``; the singular values (:func:`sample_svs`); ``N x
    2`` translations ``U(-1, 1)``.  ``A_i = U_i diag(s) V_i`` with ``U_i =
    R(angle_i) D_i``, ``V_i = R(angle_{N+i}) D_{N+i}``.
    """
    n = int(rng.integers(maps[0], maps[1] + 1))
    signs = np.sign(rng.random((2 * n, 2)) - 0.5)
    angle = rng.uniform(-np.pi, np.pi, 2 * n)
    cs, sn = np.cos(angle), np.sin(angle)
    rot = np.empty((2 * n, 2, 2))
    rot[:, 0, 0] = cs
    rot[:, 0, 1] = -sn
    rot[:, 1, 0] = sn
    rot[:, 1, 1] = cs
    uv = rot * signs[:, None, :]  # R @ diag(signs): column k times sign k
    u, v = uv[:n], uv[n:]
    sigma = rng.uniform((5 + n) / 2, (6 + n) / 2)
    s = sample_svs(n, sigma, rng)
    a = (u * s[:, None, :]) @ v
    t = rng.uniform(-1.0, 1.0, (n, 2))
    rows = np.empty((n, 7))
    rows[:, 0:4] = a.reshape(n, 4)
    rows[:, 4:6] = t
    det = np.abs(rows[:, 0] * rows[:, 3] - rows[:, 1] * rows[:, 2])
    total = det.sum()
    rows[:, 6] = det / total if total > 0 else 1.0 / n
    return rows


def find_systems(seed: int, count: int, maps=(2, 4)) -> list:
    """Classes ``0..count-1``: class ``j`` from ``generator(seed, "colorfractal-class", j)``."""
    return [IFS.from_rows(sigma_factor_rows(generator(seed, "colorfractal-class", j), maps)) for j in range(count)]


# --------------------------------------------------------------------------
# Per-image pieces (host side)
# --------------------------------------------------------------------------

def _cumulative(maps6: np.ndarray) -> np.ndarray:
    """``cumsum(|det| / sum |det|)``: the original recomputes p from the (jittered) maps."""
    det = np.abs(maps6[:, 0] * maps6[:, 3] - maps6[:, 1] * maps6[:, 2])
    total = det.sum()
    p = det / total if total > 0 else np.full(len(det), 1.0 / len(det))
    return np.cumsum(p)


def jitter_system(maps6: np.ndarray, rng: np.random.Generator, scale=(0.8, 1.1), attempts: int = 4) -> np.ndarray:
    """One map (all six coefficients) times ``U(scale)``; kept only if every
    singular value stays <= 1, else retried, up to ``attempts`` times (then unjittered)."""
    n = maps6.shape[0]
    for _ in range(attempts):
        out = maps6.copy()
        out[int(rng.integers(0, n))] *= rng.uniform(*scale)
        lin = out[:, :4].reshape(n, 2, 2)
        if np.linalg.svd(lin, compute_uv=False).max() <= 1.0:
            return out
    return maps6


def patch_cells(mask: int) -> np.ndarray:
    """``(m, 2)`` (row, column) offsets 0..2 of the on cells of a 9-bit mask (bit k = cell (k // 3, k % 3))."""
    ks = [k for k in range(9) if mask >> k & 1]
    return np.array([divmod(k, 3) for k in ks], dtype=np.int64).reshape(-1, 2)


#: The patch of the point mode: the centre cell alone.
POINT_CELLS = np.array([[1, 1]], dtype=np.int64)


def blur_weights(sigma: float) -> np.ndarray:
    """The 3 taps of a Gaussian of ``sigma`` (``exp(-x^2 / 2 sigma^2)``, x = -1, 0, 1, summing to 1)."""
    w = np.exp(-np.array([1.0, 0.0, 1.0]) / (2.0 * sigma * sigma))
    return w / w.sum()


def background_params(rng: np.random.Generator) -> tuple:
    """``(decay, params)`` of a diamond-square background, in the original's draw order."""
    decay = rng.uniform(0.4, 0.8)
    hue_scale = rng.uniform(0.25, 1.0) * 255
    hue_shift = rng.random() * 255
    sat_scale = rng.uniform(0.1, 0.3) * 255
    sat_shift = rng.uniform(0.4, 0.6) * 255
    val_scale = rng.uniform(0.3, 0.6) * 255
    val_shift = rng.uniform(0.4, 0.6) * 255
    return decay, np.array([hue_scale, hue_shift, sat_scale, sat_shift, val_scale, val_shift])


def colour_params(rng: np.random.Generator, min_sat: float = 0.3, min_val: float = 0.5) -> tuple:
    """``(hue_shift, S byte, V byte)`` of one colourised fractal (the original's order)."""
    hue_shift = rng.random() * 255
    sat = int(rng.uniform(min_sat, 1.0) * 255)
    val = int(rng.uniform(min_val, 1.0) * 255)
    return hue_shift, np.uint8(sat), np.uint8(val)


def flips(rng: np.random.Generator) -> tuple:
    """(transpose, flip rows, flip columns), each with probability 0.5."""
    return rng.random() > 0.5, rng.random() > 0.5, rng.random() > 0.5


def apply_flips(img: np.ndarray, f: tuple) -> np.ndarray:
    t, v, h = f
    if t:
        img = img.transpose(1, 0, *range(2, img.ndim))
    if v:
        img = img[::-1]
    if h:
        img = img[:, ::-1]
    return np.ascontiguousarray(img)


def _grid_side(size: int) -> int:
    return 2 ** int(math.ceil(math.log2(size))) + 1


class _Scratch:
    """Buffers of one renderer (one per thread)."""

    def __init__(self, points: int, size: int, render_size: int):
        self.xs = np.empty(points)
        self.ys = np.empty(points)
        self.region = np.empty(4)
        self.hits = np.empty((render_size + 2) ** 2 + 1, dtype=np.int32)
        self.grid = np.empty((_grid_side(size),) * 2)
        self.tmp = np.empty((size, size, 3))
        self.lut = np.empty((256, 3), dtype=np.uint8)

    def points(self, maps, key):
        """The chaos game of ``maps`` (probabilities from their determinants) into
        ``xs, ys``, its bounds into ``region``."""
        K.chaos_game(maps, _cumulative(maps), key, self.xs, self.ys, self.region)

    def coloured(self, dens, colour, out, paste: bool = False):
        """``dens`` coloured by ``colour = (hue shift, S, V)`` into ``out`` (RGB, black where 0),
        or with ``paste`` its non-black pixels pasted on ``out``."""
        hue, sat, val = colour
        K.hue_lut(sat, val, self.lut)
        (K.paste_density if paste else K.colorize_rgb)(dens, hue, self.lut, out)

    def background(self, key, decay, params, out):
        K.diamond_square(decay, key, self.grid)
        h, w = out.shape[:2]
        K.background_rgb(self.grid[:h, :w], params, out)


# --------------------------------------------------------------------------
# Single-label renderer
# --------------------------------------------------------------------------

#: The patch raster's bounds rules (:func:`kernels.render_graded`): ``cells`` is the
#: original's, ``centre`` what fractaldb drew before 0.3 (``bounds`` absent in a manifest).
BOUNDS = {"cells": K.CELLS, "centre": K.CENTRE}


@dataclass(frozen=True)
class ColorRenderConfig:
    """How single-label colour-fractal instances are drawn (defaults: the original's)."""

    size: int = 224
    points: int = 100000
    jitter: bool = True
    translate: float = 0.2
    scale: tuple = (0.5, 2.0)
    patch: bool = True
    background: bool = True
    flips: bool = True
    blur_p: float = 0.5
    sigma: tuple = (0.5, 1.0)
    bounds: str = "cells"


class _ItemRenderer(HostRenderer):
    """The protocol methods of both colour renderers: an item is the arguments of
    ``render`` (``(what, class, instance)``); images are ``(size, size, 3)``."""

    def render_many(self, items):
        """Render the items one after another; yields each image (a new array)."""
        for item in items:
            yield self.render(*item)

    def render_many_device(self, items, out=None):
        """Every item's image in one ``(n, size, size, 3)`` host array."""
        items = list(items)
        n = self.cfg.size
        out = np.empty((len(items), n, n, 3), dtype=np.uint8) if out is None else out
        for j, item in enumerate(items):
            self.render(*item, out[j])
        return out


class ColorFractalRenderer(_ItemRenderer):
    """Renders single-label instances on the calling thread; one per thread."""

    def __init__(self, cfg: ColorRenderConfig, seed: int):
        self.cfg = cfg
        self.seed = seed
        self.s = _Scratch(cfg.points, cfg.size, cfg.size)
        self.dens = np.empty((cfg.size, cfg.size))
        self.rule = BOUNDS[cfg.bounds]

    def render(self, ifs: IFS, klass: int, instance: int, out: np.ndarray | None = None) -> np.ndarray:
        """Instance ``instance`` of class ``klass`` (system ``ifs``): ``(size, size, 3)`` uint8."""
        cfg, s = self.cfg, self.s
        n = cfg.size
        rng = generator(self.seed, "colorfractal-instance", klass, instance)
        maps = np.ascontiguousarray(ifs.maps)
        if cfg.jitter:
            maps = jitter_system(maps, rng)
        s.points(maps, stream_key(self.seed, "colorfractal-points", klass, instance))
        region = s.region
        lo, hi = region[:2].copy(), region[2:].copy()
        extent = hi - lo
        centre = (hi + lo) / 2
        if cfg.translate:
            centre += extent * rng.uniform(-cfg.translate, cfg.translate, 2)
        if cfg.scale:
            extent *= rng.uniform(cfg.scale[0], cfg.scale[1], 2) / 2
        region[:2] = centre - extent
        region[2:] = centre + extent
        cells = patch_cells(int(rng.integers(1, 512))) if cfg.patch else POINT_CELLS
        K.render_graded(s.xs, s.ys, region, cells, self.rule, s.hits, self.dens)
        dens = apply_flips(self.dens, flips(rng)) if cfg.flips else self.dens
        out = np.empty((n, n, 3), dtype=np.uint8) if out is None else out
        colour = colour_params(rng)
        if cfg.background:  # drawn after the colour (the original's order)
            decay, params = background_params(rng)
            s.background(stream_key(self.seed, "colorfractal-background", klass, instance), decay, params, out)
        else:
            out[:] = 0
        s.coloured(dens, colour, out, paste=True)  # non-black fractal pixels win
        if cfg.blur_p and rng.random() < cfg.blur_p:
            K.blur3(out, blur_weights(rng.uniform(*cfg.sigma)), s.tmp)
        return out


# --------------------------------------------------------------------------
# Multi-instance renderer
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class MultiRenderConfig:
    """How multi-instance images are drawn (defaults: the original's)."""

    size: int = 224
    render_size: int = 112
    points: int = 100000
    objects: tuple = (1, 5)
    size_range: tuple = (0.15, 0.6)
    renders_per_class: int = 8
    patch: bool = True
    flips: bool = True
    blur_p: float = 0.5
    sigma: tuple = (0.5, 1.0)


@dataclass(frozen=True)
class Layout:
    """Everything drawn for one multi-instance image, before any rendering.

    ``objects``: per object ``(class, render, flips, (hue, sat, val), side, row, column)``,
    painted in order (later ones on top).
    """

    objects: tuple
    decay: float
    background: np.ndarray
    blur_sigma: float  # 0: no blur

    @property
    def classes(self) -> list:
        """The classes in the image, sorted, each once."""
        return sorted({o[0] for o in self.objects})


def multi_layout(cfg: MultiRenderConfig, seed: int, n_classes: int, klass: int, instance: int) -> Layout:
    """The layout of sample ``(klass, instance)``: draws from
    ``generator(seed, "multifractal-layout", klass, instance)`` in this order:
    number of objects ``U{objects}``; the slot of the primary class
    ``U{0..n-1}``; per object its class (the primary's, or ``U{0..K-1}``), its
    cached render ``U{0..R-1}``, 3 flips, its colour (hue, S, V), its side
    ``int(U(size_range) * size)``, its column then row ``U{-s//2 .. size - s//2 - 1}``;
    then the background (decay, 6 colour numbers); then the blur (a coin, sigma)."""
    rng = generator(seed, "multifractal-layout", klass, instance)
    n = int(rng.integers(cfg.objects[0], cfg.objects[1] + 1))
    primary = int(rng.integers(0, n))
    objs = []
    for o in range(n):
        c = klass if o == primary else int(rng.integers(0, n_classes))
        r = int(rng.integers(0, cfg.renders_per_class))
        f = flips(rng) if cfg.flips else (False, False, False)
        col = colour_params(rng)
        side = max(1, int(rng.uniform(*cfg.size_range) * cfg.size))
        x, y = (int(v) for v in rng.integers(-(side // 2), cfg.size - side // 2, 2))
        objs.append((c, r, f, col, side, y, x))
    decay, params = background_params(rng)
    sigma = 0.0
    if cfg.blur_p and rng.random() < cfg.blur_p:
        sigma = float(rng.uniform(*cfg.sigma))
    return Layout(tuple(objs), float(decay), params, sigma)


class MultiFractalRenderer(_ItemRenderer):
    """Renders multi-instance images on the calling thread; one per thread.

    Keeps the most recent class renders (graded densities) in memory: a
    render is a pure function of (seed, class, render index), so the cache
    changes speed only, never bytes.
    """

    CACHE = 256

    def __init__(self, cfg: MultiRenderConfig, seed: int):
        self.cfg = cfg
        self.seed = seed
        self.s = _Scratch(cfg.points, cfg.size, cfg.render_size)
        self.cache: OrderedDict = OrderedDict()
        self.rgb = np.empty((cfg.render_size, cfg.render_size, 3), dtype=np.uint8)

    def class_render(self, ifs: IFS, klass: int, r: int) -> np.ndarray:
        """Render ``r`` of class ``klass``: its graded density at ``render_size`` (read-only, cached)."""
        key = (klass, r)
        hit = self.cache.get(key)
        if hit is not None:
            self.cache.move_to_end(key)
            return hit
        cfg, s = self.cfg, self.s
        rng = generator(self.seed, "multifractal-cache", klass, r)
        maps = np.ascontiguousarray(ifs.maps)
        s.points(maps, stream_key(self.seed, "multifractal-cache-points", klass, r))
        cells = patch_cells(int(rng.integers(1, 512))) if cfg.patch else POINT_CELLS
        dens = np.empty((cfg.render_size, cfg.render_size))
        # The window is the points' own bounds: every point's pixel is inside, so
        # both bounds rules draw the same (the cached renders have one rule).
        K.render_graded(s.xs, s.ys, s.region, cells, K.CELLS, s.hits, dens)
        dens.setflags(write=False)
        self.cache[key] = dens
        if len(self.cache) > self.CACHE:
            self.cache.popitem(last=False)
        return dens

    def render(self, classes, klass: int, instance: int, out: np.ndarray | None = None) -> np.ndarray:
        """Sample ``(klass, instance)`` over the class systems ``classes``: ``(size, size, 3)`` uint8."""
        cfg, s = self.cfg, self.s
        n = cfg.size
        lay = multi_layout(cfg, self.seed, len(classes), klass, instance)
        out = np.empty((n, n, 3), dtype=np.uint8) if out is None else out
        s.background(stream_key(self.seed, "multifractal-background", klass, instance), lay.decay, lay.background,
                     out)
        for c, r, f, colour, side, y, x in lay.objects:
            dens = apply_flips(self.class_render(classes[c], c, r), f)
            s.coloured(dens, colour, self.rgb)
            obj = np.empty((side, side, 3), dtype=np.uint8)
            K.resize_bilinear(self.rgb, obj)
            K.paste(obj, out, y, x)
        if lay.blur_sigma > 0.0:
            K.blur3(out, blur_weights(lay.blur_sigma), s.tmp)
        return out
