"""RCDB's numba kernels (FDSL.md §3): the class and placement draws of the published
script replayed on a CPython ``random`` state (``fractaldb.contours.pyrandom``), and one
instance's orbits drawn with the noise law and Pillow's lines of ``fractaldb.contours``.

Images are 2-D uint8 gray (the original's RGB has three equal channels).  The geometry
keeps the script's float64 operation order: vertices accumulate around the origin,
``X_v -= cos(step * v) * (N - lambda)`` with ``N = P * c * 2 - c``, and the centre is added
only when an edge is drawn.
"""

from __future__ import annotations

import math

import numpy as np

from ..._jit import kernel
from ...contours.lines import draw_line
from ...contours.noise import pnoise1
from ...contours.pyrandom import py_expovariate, py_randint, py_uniform, skip
from ...kernels.random import splitmix64

_INV53 = 1.0 / 9007199254740992.0
#: Counter offset of an instance's per-orbit draws after its placement draws (modern mode).
PLACEMENT_DRAWS = 5


@kernel
def official_class(st, vertex_num, line_num_min, perlin_min, line_width, out):
    """FDSL 3.1 items 1-4 from the state ``st``: ``out[:] = V, K, c, lambda``."""
    while True:
        v = np.int64(py_expovariate(st, 1 / 100))
        if 2 < v <= vertex_num:
            break
    out[0] = v
    out[1] = py_randint(st, line_num_min, line_num_min + 199)
    out[2] = py_uniform(st, np.float64(perlin_min), np.float64(perlin_min + 4))
    out[3] = py_uniform(st, 0.0, line_width)


@kernel
def official_placement(st, first, radius_min, oval_rate, size, start_pos, out):
    """``out[:] = r0, ox, oy, cy, cx``: FDSL 3.1 items 5-9 (``first``, r0 before the oval
    factors) or 3.2 step 5 (the next instance's: the oval factors before r0)."""
    if first:
        out[0] = py_randint(st, radius_min, radius_min + 100)
    out[1] = py_uniform(st, 1.0, np.float64(oval_rate))
    out[2] = py_uniform(st, 1.0, np.float64(oval_rate))
    if not first:
        out[0] = py_randint(st, radius_min, radius_min + 100)
    out[3] = (size + py_randint(st, -start_pos, start_pos)) / 2
    out[4] = (size + py_randint(st, -start_pos, start_pos)) / 2


@kernel
def _start(cosv, sinv, xs, ys, v, r0, ox, oy):
    step = (math.pi * 2) / v
    for j in range(v):
        cosv[j] = math.cos(step * j)
        sinv[j] = math.sin(step * j)
        xs[j] = cosv[j] * r0 * ox
        ys[j] = sinv[j] * r0 * oy


@kernel
def _advance_draw(img, none, cosv, sinv, xs, ys, nx, ny, v, lam, cx, cy, g):
    for j in range(v):
        xs[j] -= cosv[j] * (nx[j] - lam)
        ys[j] -= sinv[j] * (ny[j] - lam)
    for j in range(v):
        n = j + 1 if j + 1 < v else 0
        draw_line(img, none, xs[j] + cx, ys[j] + cy, xs[n] + cx, ys[n] + cy, g, 0)


@kernel
def official_instance(st, img, draw, cls, place, gray_top, cosv, sinv, xs, ys, nx, ny, none):
    """One instance's orbits from ``st`` (FDSL 3.2 step 3); ``draw`` False only consumes
    the stream (the grays are drawn, the 4 V noise words per orbit skipped).  ``gray_top``
    is the script's ``image_size / 2`` (grays above 255 clip to 255)."""
    v = np.int64(cls[0])
    k = np.int64(cls[1])
    c = cls[2]
    lam = cls[3]
    if draw:
        img[:, :] = 255
        _start(cosv, sinv, xs, ys, v, place[0], place[1], place[2])
    for _ in range(k):
        g = py_randint(st, 0, gray_top)
        if not draw:
            skip(st, np.int64(4 * v))
            continue
        for j in range(v):
            nx[j] = pnoise1(py_uniform(st, 0.0, 10000.0), False) * c * 2 - c
        for j in range(v):
            ny[j] = pnoise1(py_uniform(st, 0.0, 10000.0), False) * c * 2 - c
        _advance_draw(img, none, cosv, sinv, xs, ys, nx, ny, v, lam, place[4], place[3], min(g, 255))


@kernel
def _u(key, i):
    return np.float64(splitmix64(key, i) >> np.uint64(11)) * _INV53


@kernel
def _below(key, i, n):
    """An integer in 0..n-1 (multiply-shift on the top 32 bits)."""
    return np.int64(((splitmix64(key, i) >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32))


@kernel
def modern_placement(key, radius_min, oval_rate, size, start_pos, out):
    """The placement of a modern instance (key = its stream key): draws 0-4."""
    out[0] = radius_min + _below(key, 2, 101)
    out[1] = 1.0 + (oval_rate - 1.0) * _u(key, 0)
    out[2] = 1.0 + (oval_rate - 1.0) * _u(key, 1)
    out[3] = (size + (_below(key, 3, 2 * start_pos + 1) - start_pos)) / 2
    out[4] = (size + (_below(key, 4, 2 * start_pos + 1) - start_pos)) / 2


@kernel
def modern_instance(key, img, cls, gray_law, radius_min, oval_rate, size, start_pos, place, cosv, sinv, xs, ys,
                    nx, ny, none):
    """One modern instance: every draw keyed by (instance key, counter): placement 0-4,
    orbit k's gray at 5 + k, its noise (axis a, vertex j) at 5 + K + (2k + a) V + j.
    ``gray_law`` 0: uniform 0..255; 1: the original's 0..256 clipped to 255."""
    v = np.int64(cls[0])
    k = np.int64(cls[1])
    c = cls[2]
    lam = cls[3]
    modern_placement(key, radius_min, oval_rate, size, start_pos, place)
    img[:, :] = 255
    _start(cosv, sinv, xs, ys, v, place[0], place[1], place[2])
    base = PLACEMENT_DRAWS + k
    for o in range(k):
        g = _below(key, PLACEMENT_DRAWS + o, 256) if gray_law == 0 else min(_below(key, PLACEMENT_DRAWS + o, 257), 255)
        for j in range(v):
            nx[j] = pnoise1(_u(key, base + 2 * o * v + j) * 10000.0, False) * c * 2 - c
        for j in range(v):
            ny[j] = pnoise1(_u(key, base + (2 * o + 1) * v + j) * 10000.0, False) * c * 2 - c
        _advance_draw(img, none, cosv, sinv, xs, ys, nx, ny, v, lam, place[4], place[3], g)
