"""RCDB's numba kernels (FDSL.md §3): the class and placement draws of the published script
replayed on a CPython ``random`` state (:mod:`fractaldb.contours.pyrandom`), and modern mode's
keyed placement.  The orbits themselves -- noise draws (``replay_draws`` / ``skip_draws`` /
``keyed_draws``) and drawing (``trace_orbits``, RCDB's order: around the origin, the centre
added when an edge is drawn, alpha = 2, no wave) -- are :mod:`fractaldb.contours.orbits`'.
"""

from __future__ import annotations

import numpy as np

from ..._jit import kernel
from ...contours.noise import pnoise1
from ...contours.pyrandom import py_expovariate, py_randint, py_uniform
from ...kernels.mt19937 import fill_words
from ...kernels.random import splitmix64

_INV53 = 1.0 / 9007199254740992.0
#: The counter of modern mode's placement sub-key inside an instance's stream (its orbit
#: draws, ``keyed_draws``, use counters 0 .. 2KV + K - 1 of the instance key itself).
PLACEMENT_KEY = 1 << 40


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
def _u(key, i):
    return np.float64(splitmix64(key, i) >> np.uint64(11)) * _INV53


@kernel
def _below(key, i, n):
    """An integer in 0..n-1 (multiply-shift on the top 32 bits)."""
    return np.int64(((splitmix64(key, i) >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32))


@kernel
def modern_placement(key, radius_min, radius_span, oval_rate, size, start_pos, out):
    """``out[:] = r0, ox, oy, cy, cx`` of a modern instance: draws 0-4 of the sub-key
    ``splitmix64(key, 2^40)`` (ox, oy, r0, cy, cx)."""
    q = splitmix64(key, PLACEMENT_KEY)
    out[0] = radius_min + _below(q, 2, radius_span + 1)
    out[1] = 1.0 + (oval_rate - 1.0) * _u(q, 0)
    out[2] = 1.0 + (oval_rate - 1.0) * _u(q, 1)
    out[3] = (size + (_below(q, 3, 2 * start_pos + 1) - start_pos)) / 2
    out[4] = (size + (_below(q, 4, 2 * start_pos + 1) - start_pos)) / 2


@kernel
def replay_orbits(st, gray_hi, P, grays, words):
    """``fractaldb.contours.orbits.replay_draws(st, 0, gray_hi, False, P, grays)``, faster: each
    orbit's 4V noise words are tempered in one block (``fill_words``, ``words`` >= 4V long) and
    paired into ``random()`` doubles as CPython does, so the same words give the same values."""
    K = P.shape[0]
    V = P.shape[2]
    for k in range(K):
        grays[k] = py_randint(st, 0, gray_hi)
        w = words[:4 * V]
        fill_words(st, w)
        for a in range(2):
            for v in range(V):
                i = 2 * (a * V + v)
                r = ((w[i] >> np.uint32(5)) * 67108864.0 + (w[i + 1] >> np.uint32(6))) / 9007199254740992.0
                P[k, a, v] = pnoise1(10000.0 * r, False)
