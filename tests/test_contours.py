"""The contour machinery (fractaldb.contours) against Python's ``random``, the noise law
written out step by step (and the ``noise`` package when installed), and Pillow itself."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from PIL import Image, ImageDraw

from fractaldb.contours import lines as L
from fractaldb.contours import noise as NZ
from fractaldb.contours import orbits as O
from fractaldb.contours import pyrandom as R
from fractaldb.kernels.mt19937 import next_u32

from contour_reference import orbits_slow, pnoise1_slow

# ---------------------------------------------------------------- CPython's random


@pytest.mark.parametrize("n", [0, 1, 2, 20, 41, 2**32 - 1, 2**32, 2**40 + 7, 12345678901234567890, -5])
def test_seed_state_is_cpythons(n):
    assert R.state_tuple(R.seed_state(n)) == random.Random(n).getstate()


def test_draws_match_python():
    for seed in (1, 2, 7):
        st, py = R.seed_state(seed), random.Random(seed)
        for _ in range(300):
            assert R.py_random(st) == py.random()
            assert R.py_uniform(st, 0.0, 10000.0) == py.uniform(0, 10000)
            assert R.py_uniform(st, 1.0, 2.0) == py.uniform(1, 2)
            for a, b in ((0, 255), (0, 256), (-512, 512), (200, 1000), (1, 1), (0, 20), (-400, 400), (3, 2**32 + 1)):
                assert R.py_randint(st, a, b) == py.randint(a, b)
            assert R.py_expovariate(st, 1 / 100) == py.expovariate(1 / 100)
            used, before = np.zeros(1, dtype=np.int64), st.copy()
            assert R.py_randint_counted(st, -512, 512, used) == py.randint(-512, 512)
            assert np.array_equal(R.fast_forward(before, used[0]), st)
        assert R.state_tuple(st) == py.getstate()


def test_bit_length():
    for n in (0, 1, 2, 3, 255, 256, 257, 1025, 2**32 - 1, 2**32):
        assert R.bit_length(n) == n.bit_length()


@pytest.mark.parametrize("words", [0, 1, 5, 623, 624, 625, 1000, 5000])
def test_fast_forward_equals_drawing(words):
    st = R.seed_state(3)
    for _ in range(10):
        next_u32(st)  # start mid-block
    ahead = R.fast_forward(st, words)
    for _ in range(words):
        next_u32(st)
    assert np.array_equal(ahead, st)
    py = random.Random(3)
    py.getrandbits(32 * 10 + 32 * words)
    assert R.state_tuple(ahead) == py.getstate()


# ---------------------------------------------------------------- the noise law

VECTORS = [(0.5, 0.699999988079071), (1234.567, 0.27858659625053406), (3.25, -0.05859375),
           (511.75, -0.5619140863418579), (42.0, 0.0), (9999.999, 0.0003906250058207661)]


@pytest.mark.parametrize("u,p", VECTORS)
def test_pnoise1_vectors(u, p):
    assert NZ.pnoise1(u, False) == p
    assert pnoise1_slow(u) == p


def test_pnoise1_equals_slow_transcription():
    rng = np.random.default_rng(5)
    us = np.concatenate([rng.uniform(0, 10000, 3000), rng.uniform(-3000, 3000, 500), [0.0, 1023.5, 1024.25, -0.5]])
    out = np.empty_like(us)
    for fixed in (False, True):
        NZ.fill_pnoise1(us, fixed, out)
        assert [float(v) for v in out] == [pnoise1_slow(float(u), fixed) for u in us]


def test_pnoise1_law():
    us = np.random.default_rng(1).uniform(0, 10000, 40000)
    out, fixed = np.empty_like(us), np.empty_like(us)
    NZ.fill_pnoise1(us, False, out)
    NZ.fill_pnoise1(us, True, fixed)
    assert abs(out.std() - 0.3285) < 0.005 and np.abs(out).max() <= 0.953
    assert abs(fixed.std() - 0.511) < 0.01 and np.abs(fixed).max() > 1.2  # the "fixed" gradient: more noise


def test_pnoise1_equals_noise_package():
    noise = pytest.importorskip("noise")
    us = np.random.default_rng(2).uniform(0, 10000, 2000)
    assert all(NZ.pnoise1(u, False) == noise.pnoise1(float(u)) for u in us)


# ---------------------------------------------------------------- Pillow's lines


def _edges(rng, n, size):
    pts = []
    for _ in range(n):
        kind = rng.integers(5)
        if kind == 0:  # inside
            p = rng.uniform(-0.99, size, 4)
        elif kind == 1:  # anywhere around, often both ends out
            p = rng.uniform(-3 * size, 4 * size, 4)
        elif kind == 2:  # short, as the orbit edges
            a = rng.uniform(-5, size + 5, 2)
            p = np.concatenate([a, a + rng.normal(0, 6, 2)])
        elif kind == 3:  # degenerate: one pixel, axis-aligned, diagonal, integer ends
            a = rng.integers(-3, size + 3, 2).astype(float)
            d = rng.integers(-9, 10)
            p = np.concatenate([a, a + [[0, 0], [d, 0], [0, d], [d, d], [d, -d]][rng.integers(5)]])
        else:  # around -1..1 (truncation toward zero)
            p = rng.uniform(-1.5, 1.5, 4) + rng.integers(0, 2, 4) * (size - 1)
        pts.append(tuple(float(v) for v in p))
    return pts


@pytest.mark.parametrize("with_idx", [True, False], ids=["idx", "no-idx"])
@pytest.mark.parametrize("size", [(17, 23), (40, 40)])
def test_draw_line_equals_pillow(size, with_idx):
    """Both walks: the bounds-checked one (with an index array, or an edge leaving the frame) and
    ``walk_inside`` (no index array, the edge inside the frame)."""
    h, w = size
    rng = np.random.default_rng(h)
    idx = np.zeros((h, w) if with_idx else (0, 0), dtype=np.int32)
    for n, (x0, y0, x1, y1) in enumerate(_edges(rng, 1500, max(size))):
        for a, b in (((x0, y0), (x1, y1)), ((x1, y1), (x0, y0))):  # both directions
            im = Image.new("L", (w, h), 0)
            ImageDraw.Draw(im).line(a + b, fill=200, width=1)
            want = np.asarray(im)
            got = np.zeros((h, w), dtype=np.uint8)
            idx[:] = 0
            L.draw_line(got, idx, a[0], a[1], b[0], b[1], 200, n + 1)
            assert np.array_equal(got, want), (a, b)
            if with_idx:
                assert np.array_equal(idx != 0, want != 0) and set(np.unique(idx)) <= {0, n + 1}


def test_draw_line_overwrites_and_skips_huge():
    img = np.full((8, 8), 9, dtype=np.uint8)
    none = np.zeros((0, 0), dtype=np.int32)
    L.draw_line(img, none, 0.0, 0.0, 7.9, 0.0, 3, 0)
    assert list(img[0]) == [3] * 8 and (img[1:] == 9).all()
    L.draw_line(img, none, -1e12, 2.0, 1e12, 2.0, 4, 0)  # beyond a C int: skipped
    assert (img[2] == 9).all()


def test_line_pixel_closed_form_is_the_loop():
    """The closed form against Pillow's error-term loop, every (dx, dy) below 40."""
    for dx in range(40):
        for dy in range(40):
            n = max(dx, dy)
            x = y = 0
            loop = []
            if dx > dy:
                e, ddx, ddy = 2 * dy - dx, 2 * dx, 2 * dy
                for _ in range(n):
                    loop.append((x, y))
                    if e >= 0:
                        y += 1
                        e -= ddx
                    e += ddy
                    x += 1
            elif dy > 0 and dx > 0:
                e, ddx, ddy = 2 * dx - dy, 2 * dx, 2 * dy
                for _ in range(n):
                    loop.append((x, y))
                    if e >= 0:
                        x += 1
                        e -= ddy
                    e += ddx
                    y += 1
            else:
                loop = [(i if dy == 0 else 0, i if dx == 0 else 0) for i in range(n)]
            assert [L.line_pixel(0, 0, dx, dy, 1, 1, i) for i in range(n)] == loop, (dx, dy)


# ---------------------------------------------------------------- orbits


def _params(rng, V, K):
    P = rng.uniform(-0.95, 0.95, (K, 2, V))
    grays = rng.integers(0, 257, K).astype(np.int32)
    return P, grays


@pytest.mark.parametrize("centre_first,alpha,wave,background", [(True, 1.0, True, 0), (False, 2.0, False, 255),
                                                                 (True, 2.0, False, 0)])
def test_trace_orbits_equals_slow_reference(centre_first, alpha, wave, background):
    rng = np.random.default_rng(11)
    size = 48
    for V, K in ((3, 4), (17, 9), (40, 12)):
        P, grays = _params(rng, V, K)
        cx, cy = float(rng.integers(0, 97)) / 2, float(rng.integers(0, 97)) / 2
        r0, ox, oy, c, lam = float(rng.integers(0, 20)), *rng.uniform(1, 2, 2), rng.uniform(0, 4), rng.uniform(0, .1)
        n1, n2 = 3, 7
        want = orbits_slow(P, grays, cx, cy, r0, ox, oy, c, lam, alpha, n1, n2, wave, centre_first, size, background)
        trig = np.empty((4, V))
        O.trig_table(n1, n2, trig)
        img = np.full((size, size), background, dtype=np.uint8)
        idx = np.zeros((size, size), dtype=np.int32)
        xs, ys = np.empty(V), np.empty(V)
        O.trace_orbits(P, grays, trig, cx, cy, r0, ox, oy, c, lam, alpha, wave, centre_first, img, idx, 100, xs, ys)
        assert np.array_equal(img, want) and (img != background).any()
        # without orbit numbers, edges wholly inside the frame take the unchecked walk: the same pixels
        plain = np.full((size, size), background, dtype=np.uint8)
        O.trace_orbits(P, grays, trig, cx, cy, r0, ox, oy, c, lam, alpha, wave, centre_first, plain,
                       np.zeros((0, 0), dtype=np.int32), 100, xs, ys)
        assert np.array_equal(plain, want)
        drawn = idx > 0  # the highest orbit covering a pixel gives its gray
        assert np.array_equal(img[drawn], np.minimum(grays[idx[drawn] - 101], 255).astype(np.uint8))


def test_replay_draws_are_pythons_and_skip_matches():
    V, K = 7, 5
    st, py = R.seed_state(4), random.Random(4)
    P, grays = np.empty((K, 2, V)), np.empty(K, dtype=np.int32)
    O.replay_draws(st, 0, 255, False, P, grays)
    for k in range(K):
        assert grays[k] == py.randint(0, 255)
        for a in range(2):
            assert [pnoise1_slow(py.uniform(0, 10000)) for _ in range(V)] == list(P[k, a])
    skipped, used = R.seed_state(4), np.zeros(1, dtype=np.int64)
    O.skip_draws(skipped, V, K, 0, 255, used)
    assert np.array_equal(skipped, st)
    assert np.array_equal(R.fast_forward(R.seed_state(4), used[0]), st)  # the count is the words consumed


def test_keyed_draws_depend_on_key_only():
    V, K = 9, 6
    a = [np.empty((K, 2, V)), np.empty(K, dtype=np.int32)]
    b = [np.empty((K, 2, V)), np.empty(K, dtype=np.int32)]
    O.keyed_draws(np.uint64(77), 0, 255, False, *a)
    O.keyed_draws(np.uint64(77), 0, 255, False, *b)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    O.keyed_draws(np.uint64(78), 0, 255, False, *b)
    assert not np.array_equal(a[0], b[0])
    assert a[1].min() >= 0 and a[1].max() <= 255 and np.abs(a[0]).max() < 0.953
