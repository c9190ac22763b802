"""The orbit recurrence of the contour generators (FDSL.md §1.4), drawn with Pillow's lines.

One instance: V vertices at ``theta_v = angle * v`` with ``angle = 2*pi / V`` (float64,
computed as the originals do), K orbits.  Start ``X_v = cos(theta_v) * r0 * ox`` (plus the
centre when ``centre_first``); orbit ``k = 1..K``, in order::

    N_v = P[k-1, 0, v] * c * alpha - c  [- 0.5 sin(theta_v n1) - 0.5 sin(theta_v n2)  when wave]
    X_v <- X_v - cos(theta_v) * (N_v - lam)          (y: P[k-1, 1, v], sin(theta_v), oy, cy)

then edges ``v -> v + 1`` (vertex V is vertex 0) with gray ``min(grays[k-1], 255)``; when
not ``centre_first`` the centre is added to each endpoint when drawing (RCDB's order),
when ``centre_first`` it is part of the start vertex and accumulated (VisualAtom's,
SegRCDB's).  Each multiply and add rounds alone (:mod:`fractaldb.kernels.arith`), in the
originals' order, so the GPU twin (:mod:`.kernels_cuda`) gives the same bits.

The pixels of orbit k carry ``index_base + k`` in ``idx`` (when given): later orbits
overwrite, so the final pixel is the gray of the **highest** index covering it.

Noise values and grays come from one of two sources (both fill ``P`` ``(K, 2, V)``
float64 and ``grays`` ``(K,)`` int32):

* :func:`replay_draws` -- CPython's stream (:mod:`.pyrandom`), the originals' order:
  per orbit ``gray = randint(gray_lo, gray_hi)``, V ``uniform(0, 10000)`` for x, V for y,
  each through :func:`~fractaldb.contours.noise.pnoise1`; :func:`skip_draws` consumes the
  same words without computing noise (and counts them) (the grays' rejections need their words);
* :func:`keyed_draws` -- the counter-based stream of a 64-bit key
  (:func:`fractaldb.kernels.random.splitmix64`): ``u = 10000 * U(key, (2k + a) V + v)`` and
  gray ``lo + (hi32(key, 2KV + k) * n) >> 32`` with ``n = gray_hi - gray_lo + 1``.

Kernels: :func:`trig_table` (``(4, V)``: cos, sin, sin(theta n1), sin(theta n2)),
:func:`start_vertex`, :func:`noise_term`, :func:`step_vertex` (the scalar steps the GPU
twin compiles too), :func:`trace_orbits` (one instance into ``img``/``idx``),
:func:`replay_draws`, :func:`skip_draws`, :func:`keyed_draws`.
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import kernel
from ..kernels.arith import add, mul
from ..kernels.mt19937 import fill_words, skip
from ..kernels.random import splitmix64
from .lines import draw_line, line_steps, walk_inside
from .noise import pnoise1
from .pyrandom import py_randint, py_randint_counted

__all__ = ["trig_table", "start_vertex", "noise_term", "step_vertex", "trace_orbits", "replay_draws",
           "skip_draws", "keyed_draws", "words_per_orbit"]

_INV53 = 1.0 / 9007199254740992.0


@kernel
def trig_table(n1, n2, out):
    """``out[:, v]`` = cos, sin of ``theta_v = (2 pi / V) v`` and sin(theta_v n1), sin(theta_v n2); V = out.shape[1]."""
    V = out.shape[1]
    angle = (math.pi * 2.0) / V
    for v in range(V):
        th = angle * v
        out[0, v] = math.cos(th)
        out[1, v] = math.sin(th)
        out[2, v] = math.sin(th * n1)
        out[3, v] = math.sin(th * n2)


@kernel
def start_vertex(trig, r0, o, centre, centre_first):
    """``trig * r0 * o`` (+ ``centre`` when ``centre_first``)."""
    x = mul(mul(trig, r0), o)
    if centre_first:
        x = add(x, centre)
    return x


@kernel
def noise_term(p, c, alpha, s1, s2, wave):
    """``p * c * alpha - c`` (``- 0.5 s1 - 0.5 s2`` when ``wave``), left to right."""
    n = add(mul(mul(p, c), alpha), -c)
    if wave:
        n = add(n, -mul(0.5, s1))
        n = add(n, -mul(0.5, s2))
    return n


@kernel
def step_vertex(x, trig, n, lam):
    """``x - trig * (n - lam)``."""
    return add(x, -mul(trig, add(n, -lam)))


@kernel
def trace_orbits(P, grays, trig, cx, cy, r0, ox, oy, c, lam, alpha, wave, centre_first, img, idx, index_base,
                 xs, ys):
    """Draw one instance's K orbits into ``img`` (2-D uint8) and ``idx`` (int32, or ``(0, 0)``).

    ``P`` ``(K, 2, V)``, ``grays`` ``(K,)``, ``trig`` ``(4, V)`` (:func:`trig_table`);
    ``xs``, ``ys``: float64 scratch of length >= V.  ``img`` is not cleared.

    Each vertex ends two edges, so its drawn position, pixel and place relative to the frame are
    worked out once per orbit, and an edge tests two codes (1.2-1.3x on the trace,
    benchmarks/bench_trace.py A/B).
    """
    V = trig.shape[1]
    K = grays.shape[0]
    has_idx = idx.shape[0] > 0
    height = np.float64(img.shape[0])
    width = np.float64(img.shape[1])
    # Per vertex, once per orbit (each vertex ends two edges): the drawn position, its integer
    # pixel, and a code of where it lies (bits 0-3: at or beyond the left, right, top, bottom
    # edge of the frame so that no pixel of an edge wholly there is drawn; bit 4: inside).
    px = np.empty(V)
    py = np.empty(V)
    ix = np.empty(V, dtype=np.int64)
    iy = np.empty(V, dtype=np.int64)
    code = np.empty(V, dtype=np.int64)
    for v in range(V):
        xs[v] = start_vertex(trig[0, v], r0, ox, cx, centre_first)
        ys[v] = start_vertex(trig[1, v], r0, oy, cy, centre_first)
    for k in range(K):
        g = min(np.int64(grays[k]), 255)
        for v in range(V):
            xs[v] = step_vertex(xs[v], trig[0, v], noise_term(P[k, 0, v], c, alpha, trig[2, v], trig[3, v], wave), lam)
        for v in range(V):
            ys[v] = step_vertex(ys[v], trig[1, v], noise_term(P[k, 1, v], c, alpha, trig[2, v], trig[3, v], wave), lam)
        for v in range(V):
            x = xs[v] if centre_first else add(xs[v], cx)
            y = ys[v] if centre_first else add(ys[v], cy)
            px[v] = x
            py[v] = y
            # trunc(x) < 0 iff x <= -1: an edge wholly off one side of the frame draws nothing
            # (draw_line's own bounding-box test, done here without the call).
            inside = x >= 0.0 and x < width and y >= 0.0 and y < height
            code[v] = (np.int64(x <= -1.0) | (np.int64(x >= width) << 1) | (np.int64(y <= -1.0) << 2)
                       | (np.int64(y >= height) << 3) | (np.int64(inside) << 4))
            if inside:
                ix[v] = np.int64(x)
                iy[v] = np.int64(y)
        index = index_base + k + 1
        for v in range(V):
            w = v + 1 if v + 1 < V else 0
            both = code[v] & code[w]
            if both & 15:
                continue
            if not has_idx and both & 16:  # wholly inside: no per-pixel checks
                X0, Y0, X1, Y1 = ix[v], iy[v], ix[w], iy[w]
                dx, dy, sx, sy, n = line_steps(X0, Y0, X1, Y1)
                walk_inside(img, X0, Y0, X1, Y1, dx, dy, sx, sy, n, g)
            else:
                draw_line(img, idx, px[v], py[v], px[w], py[w], g, index)


@kernel
def replay_draws(st, gray_lo, gray_hi, fixed, P, grays):
    """Fill ``P`` ``(K, 2, V)`` and ``grays`` ``(K,)`` from CPython's stream ``st``, in the originals' order."""
    K = P.shape[0]
    V = P.shape[2]
    words = np.empty(4 * V, dtype=np.uint32)
    for k in range(K):
        grays[k] = py_randint(st, gray_lo, gray_hi)
        fill_words(st, words)  # the 2V uniforms' words, tempered block by block
        for a in range(2):
            for v in range(V):
                j = 2 * (a * V + v)
                u = ((words[j] >> np.uint32(5)) * 67108864.0 + (words[j + 1] >> np.uint32(6))) / 9007199254740992.0
                P[k, a, v] = pnoise1(10000.0 * u, fixed)


@kernel
def words_per_orbit(V):
    """32-bit words the noise of one orbit takes (the gray's are drawn): ``4 V``."""
    return 4 * V


@kernel
def skip_draws(st, V, K, gray_lo, gray_hi, used):
    """Consume the words of :func:`replay_draws` for ``(V, K)`` without computing the noise;
    adds the number of words to ``used[0]``."""
    for k in range(K):
        py_randint_counted(st, gray_lo, gray_hi, used)
        skip(st, np.int64(4 * V))
        used[0] += 4 * V


@kernel
def keyed_draws(key, gray_lo, gray_hi, fixed, P, grays):
    """Fill ``P`` and ``grays`` from the counter-based stream of ``key`` (a ``np.uint64``)."""
    K = P.shape[0]
    V = P.shape[2]
    n = np.uint64(gray_hi - gray_lo + 1)
    for k in range(K):
        for a in range(2):
            base = (2 * k + a) * V
            for v in range(V):
                u = np.float64(splitmix64(key, base + v) >> np.uint64(11)) * _INV53
                P[k, a, v] = pnoise1(10000.0 * u, fixed)
        hi = splitmix64(key, 2 * K * V + k) >> np.uint64(32)
        grays[k] = gray_lo + np.int64((hi * n) >> np.uint64(32))
