"""SegRCDB's numba kernels (FDSL.md §4): the class table of ``SegRCDB_params.py`` on a CPython
``random`` state, and each polygon's class and centre (official: the worker's stream; modern:
keyed).  The orbits -- noise (``replay_draws`` / ``skip_draws`` / ``keyed_draws``) and drawing
(``trace_orbits`` in SegRCDB's order: the centre inside the start vertex, alpha = 2, no wave) --
are :mod:`fractaldb.contours.orbits`'; the mask is the label of the highest orbit covering a
pixel, which is what drawing the mask lines in order gives (M1).
"""

from __future__ import annotations

import numpy as np

from ..._jit import kernel
from ...contours.pyrandom import py_expovariate, py_randint, py_uniform
from ...kernels.random import splitmix64

#: Counter of polygon p's sub-key in an image's stream: ``splitmix64(image key, 2^20 + p)``.
POLYGON_KEYS = 1 << 20
#: Counter of a polygon's orbit key in its sub-key's stream (``keyed_draws`` runs from 0 on it).
ORBIT_KEY = 1 << 40


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
def official_polygon(st, classes, size, start_pos, out):
    """A polygon's class id, then its centre cy, cx (SR's order): ``out[:] = id, cy, cx``."""
    out[0] = py_randint(st, 1, classes)
    out[1] = (size + py_randint(st, -start_pos, start_pos)) / 2
    out[2] = (size + py_randint(st, -start_pos, start_pos)) / 2


@kernel
def _below(key, i, n):
    return np.int64(((splitmix64(key, i) >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32))


@kernel
def modern_polygon(key, p, classes, size, start_pos, out):
    """Polygon ``p`` of a modern image (``key``: the image's): ``out[:] = id, cy, cx`` from draws
    0-2 of its sub-key; returns the key of its orbit draws."""
    pk = splitmix64(key, POLYGON_KEYS + p)
    out[0] = 1 + _below(pk, 0, classes)
    out[1] = (size + (_below(pk, 1, 2 * start_pos + 1) - start_pos)) / 2
    out[2] = (size + (_below(pk, 2, 2 * start_pos + 1) - start_pos)) / 2
    return splitmix64(pk, ORBIT_KEY)
