"""Kernels of the official category search (SPEC 1.1).

The original loop draws, from one global legacy stream: ``randint(2, 8)``
maps, ``uniform(-1, 1, 6)`` per map, then ``random(n_points)`` for the chaos
game.  Whether a candidate is accepted never changes what it consumed, so the
stream can be walked ahead cheaply (:func:`walk`), and every candidate then
evaluated on its own from a snapshot of the generator (:func:`evaluate`), in
any order and on any number of threads, with the same result.
"""

from __future__ import annotations

import numpy as np

from ..._jit import kernel
from ...kernels import mt19937 as mt
from ...ifs.kernels import chaos_game, count_filled, fill_uniform, rescale, select_maps, trim_nan

MAX_MAPS = 7


@kernel
def walk(st, n_candidates, n_points, maps, nmaps, snapshots):
    """Draw the parameters of the next ``n_candidates`` candidates.

    Writes ``maps[c, :nmaps[c]]`` as rows ``a, b, c, d, e, f, p`` (p already
    normalised, as the original writes it) and ``snapshots[c]``, the stream
    state right before candidate ``c``'s ``random(n_points)`` draw, then skips
    over those draws.
    """
    for c in range(n_candidates):
        n = mt.randint_masked(st, 2, 8)
        nmaps[c] = n
        total = 0.0
        for i in range(n):
            for k in range(6):
                maps[c, i, k] = -1.0 + 2.0 * mt.next_double(st)
            a = maps[c, i, 0]
            b = maps[c, i, 1]
            cc = maps[c, i, 2]
            d = maps[c, i, 3]
            p = abs(a * d - b * cc)
            maps[c, i, 6] = p
            total += p
        for i in range(n):
            maps[c, i, 6] /= total
        snapshots[c, :] = st
        mt.skip(st, 2 * n_points)


@kernel
def select_from_words(cum, words, idx):
    """``select_maps(cum, words_to_doubles(words), idx)`` in one pass.

    Each uniform is made from its two words and compared at once, so the
    100 000 doubles never go through memory: 20 % off the whole search.
    """
    m = cum.shape[0]
    c0 = cum[0]
    c1 = cum[1] if m > 1 else 2.0
    c2 = cum[2] if m > 2 else 2.0
    c3 = cum[3] if m > 3 else 2.0
    c4 = cum[4] if m > 4 else 2.0
    c5 = cum[5] if m > 5 else 2.0
    c6 = cum[6] if m > 6 else 2.0
    for i in range(idx.shape[0]):
        a = words[2 * i] >> np.uint32(5)
        b = words[2 * i + 1] >> np.uint32(6)
        ui = (a * 67108864.0 + b) / 9007199254740992.0  # exactly RandomState.random_sample()
        j = 0
        j += ui > c0
        j += ui > c1
        j += ui > c2
        j += ui > c3
        j += ui > c4
        j += ui > c5
        j += ui > c6
        idx[i] = j


@kernel
def _cumulative(probs, cum):
    """``cum[:n]`` = running sum of ``probs`` (left to right, as the original)."""
    s = 0.0
    for i in range(probs.shape[0]):
        s += probs[i]
        cum[i] = s
    return cum[: probs.shape[0]]


@kernel
def _fill(maps, idx, xs, ys, keep, px, py, bits, size, pad, x86_cast):
    """Chaos game -> NaN trim -> rescale -> distinct pixels, for one candidate."""
    chaos_game(maps, idx, xs, ys)
    m = trim_nan(xs, ys, keep)
    rescale(xs, ys, m, size, size, pad, px, py, x86_cast)
    return count_filled(px, py, m, size, size, bits)


@kernel
def evaluate(maps, nmaps, snapshots, lo, hi, n_points, size, pad, fills,
             st, words, idx, xs, ys, keep, px, py, bits):
    """Fill count (distinct pixels at ``size``², point mode) of candidates lo..hi.

    The remaining arguments are per-thread scratch buffers.
    """
    cum = np.empty(MAX_MAPS, dtype=np.float64)
    for c in range(lo, hi):
        st[:] = snapshots[c]
        mt.fill_words(st, words)
        n = nmaps[c]
        select_from_words(_cumulative(maps[c, :n, 6], cum), words, idx)
        fills[c] = _fill(maps[c, :n, :6], idx, xs, ys, keep, px, py, bits, size, pad, True)


@kernel
def evaluate_keyed(maps, nmaps, keys, lo, hi, n_points, size, pad, fills,
                   u, idx, xs, ys, keep, px, py, bits):
    """Like :func:`evaluate`, with each candidate's uniforms drawn from its own
    counter-based stream ``keys[c]`` (the modern and svd samplers; modern pixel
    semantics)."""
    cum = np.empty(maps.shape[1], dtype=np.float64)
    for c in range(lo, hi):
        fill_uniform(keys[c], u)
        n = nmaps[c]
        select_maps(_cumulative(maps[c, :n, 6], cum), u, idx)
        fills[c] = _fill(maps[c, :n, :6], idx, xs, ys, keep, px, py, bits, size, pad, False)
