"""SegRCDB's numba kernels (FDSL.md §4): the class table and the images with their M1
masks, on the CPython ``random`` replay, noise law and Pillow lines of ``fractaldb.contours``.

Images and masks are 2-D uint8 (the original's RGB image has equal channels; its mask is
RGB converted to L, exact for gray triplets).  Vertices start at the centre and accumulate
(SR's order): ``X_v = cos(step v) r0 ox + cx``, then ``X_v -= cos(step v) (N - lambda)``.
Per orbit the mask edges (label = class id) are drawn first, then the image edges.
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
#: Counter offset of a polygon's per-orbit draws after its class and centre draws (modern).
POLYGON_DRAWS = 3
#: Counter offset of the polygon sub-keys inside an image's stream (modern).
POLYGON_KEYS = 1 << 20


@kernel
def official_table(st, vertex_num, line_num_min, line_num_max, perlin_min, perlin_max, line_width, radius_min,
                   radius_max, oval_rate, out):
    """FDSL 4.1: ``out[j] = V, K, c, lambda, r0, ox, oy`` of class id j + 1, one stream."""
    for j in range(out.shape[0]):
        while True:
            v = np.int64(py_expovariate(st, 1 / (vertex_num / 5)))
            if 2 < v <= vertex_num:
                break
        out[j, 0] = v
        out[j, 1] = py_randint(st, line_num_min, line_num_max)
        out[j, 2] = py_uniform(st, np.float64(perlin_min), np.float64(perlin_max))
        out[j, 3] = py_uniform(st, 0.0, line_width)
        out[j, 4] = py_randint(st, radius_min, radius_max)
        out[j, 5] = py_uniform(st, 1.0, np.float64(oval_rate))
        out[j, 6] = py_uniform(st, 1.0, np.float64(oval_rate))


@kernel
def _start(cosv, sinv, xs, ys, row, cx, cy):
    v = np.int64(row[0])
    step = (math.pi * 2) / v
    for j in range(v):
        cosv[j] = math.cos(step * j)
        sinv[j] = math.sin(step * j)
        xs[j] = cosv[j] * row[4] * row[5] + cx
        ys[j] = sinv[j] * row[4] * row[6] + cy


@kernel
def _orbit(img, mask, none, cosv, sinv, xs, ys, nx, ny, v, lam, g, cid):
    for j in range(v):
        xs[j] -= cosv[j] * (nx[j] - lam)
        ys[j] -= sinv[j] * (ny[j] - lam)
    for j in range(v):
        n = j + 1 if j + 1 < v else 0
        draw_line(mask, none, xs[j], ys[j], xs[n], ys[n], cid, 0)
    for j in range(v):
        n = j + 1 if j + 1 < v else 0
        draw_line(img, none, xs[j], ys[j], xs[n], ys[n], g, 0)


@kernel
def official_image(st, img, mask, draw, table, polygons, size, start_pos, cosv, sinv, xs, ys, nx, ny, none):
    """One image of a worker's stream (FDSL 4.2, M1); ``draw`` False only consumes the stream."""
    if draw:
        img[:, :] = 0
        mask[:, :] = 0
    for _ in range(polygons):
        cid = py_randint(st, 1, table.shape[0])
        row = table[cid - 1]
        cy = (size + py_randint(st, -start_pos, start_pos)) / 2
        cx = (size + py_randint(st, -start_pos, start_pos)) / 2
        v = np.int64(row[0])
        c = row[2]
        if draw:
            _start(cosv, sinv, xs, ys, row, cx, cy)
        for _ in range(np.int64(row[1])):
            g = py_randint(st, 0, 255)
            if not draw:
                skip(st, np.int64(4 * v))
                continue
            for j in range(v):
                nx[j] = pnoise1(py_uniform(st, 0.0, 10000.0), False) * c * 2 - c
            for j in range(v):
                ny[j] = pnoise1(py_uniform(st, 0.0, 10000.0), False) * c * 2 - c
            _orbit(img, mask, none, cosv, sinv, xs, ys, nx, ny, v, row[3], g, cid)


@kernel
def _u(key, i):
    return np.float64(splitmix64(key, i) >> np.uint64(11)) * _INV53


@kernel
def _below(key, i, n):
    return np.int64(((splitmix64(key, i) >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32))


@kernel
def modern_image(key, img, mask, table, polygons, size, start_pos, cosv, sinv, xs, ys, nx, ny, none):
    """One modern image (key: its stream key).  Polygon p draws from the sub-key
    ``splitmix64(key, 2^20 + p)``: class id at 0, centre cy, cx at 1, 2, orbit o's gray
    (1..255: every labelled line is visible) at 3 + o, its noise (axis a, vertex j) at
    3 + K + (2o + a) V + j."""
    img[:, :] = 0
    mask[:, :] = 0
    for p in range(polygons):
        pk = splitmix64(key, POLYGON_KEYS + p)
        cid = 1 + _below(pk, 0, table.shape[0])
        row = table[cid - 1]
        cy = (size + (_below(pk, 1, 2 * start_pos + 1) - start_pos)) / 2
        cx = (size + (_below(pk, 2, 2 * start_pos + 1) - start_pos)) / 2
        v = np.int64(row[0])
        k = np.int64(row[1])
        c = row[2]
        _start(cosv, sinv, xs, ys, row, cx, cy)
        base = POLYGON_DRAWS + k
        for o in range(k):
            g = 1 + _below(pk, POLYGON_DRAWS + o, 255)
            for j in range(v):
                nx[j] = pnoise1(_u(pk, base + 2 * o * v + j) * 10000.0, False) * c * 2 - c
            for j in range(v):
                ny[j] = pnoise1(_u(pk, base + (2 * o + 1) * v + j) * 10000.0, False) * c * 2 - c
            _orbit(img, mask, none, cosv, sinv, xs, ys, nx, ny, v, row[3], g, cid)
