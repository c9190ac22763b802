"""Every numba kernel against its slow reference in ``tests/reference.py``.

The kernels must be bit-exact: the official sampler has to reproduce the
published FractalDB categories, and ``--compat official`` the original pixels.
So every comparison here is exact (``np.array_equal``, floats compared by bit
pattern), never ``allclose``.

A table maps each kernel to (fast runner, reference runner); the tests run
the table over a set of small IFS chosen to reach every branch: contractive,
diverging to inf and NaN, NaN too early to keep any point, all points equal,
8 and 10 maps, cumulative probabilities ending below 1, uniforms exactly on
the boundaries.

The same file runs once more with ``NUMBA_DISABLE_JIT=1``
(:func:`test_kernels_without_jit`): the kernels are then plain Python on NumPy
scalars, which catches typing differences between numba and NumPy.  Sizes
shrink in that run because pure Python is about 100 times slower.
"""

from __future__ import annotations

import os
import platform
import warnings
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import reference as ref

from fractaldb.ifs import kernels as K
from fractaldb.kernels import mt19937 as mt
from fractaldb.families.fractal import kernels_search as ks

REPO_ROOT = Path(__file__).resolve().parent.parent
NO_JIT = os.environ.get("NUMBA_DISABLE_JIT", "0").strip() not in ("", "0")

# Point counts: the diverging case needs ~500 steps to overflow to inf and then
# NaN, so even the no-JIT run keeps enough points to get there.
N_POINTS = 2000 if NO_JIT else 4000
SEARCH_CANDIDATES = 12 if NO_JIT else 30
SEARCH_POINTS = 1500 if NO_JIT else 3000

if NO_JIT:
    # As plain Python the kernels compute on NumPy scalars, which warn on the
    # intended uint32/uint64 wrap-around and on the inf/NaN the degenerate
    # cases exist to produce.
    pytestmark = [
        pytest.mark.filterwarnings("ignore:overflow encountered in scalar:RuntimeWarning"),
        pytest.mark.filterwarnings("ignore:invalid value encountered in scalar:RuntimeWarning"),
    ]

# Raster geometry of the table: not square, so a swapped x/y shows.
WIDTH, HEIGHT, PAD = 96, 80, 3
PALETTE = np.random.RandomState(12).randint(1, 256, size=(128, 3)).astype(np.uint8)
# A non-black background makes "zero cells overwrite" visible everywhere.
BACKGROUND = np.random.RandomState(13).randint(0, 256, size=(HEIGHT, WIDTH, 3)).astype(np.uint8)


def assert_same(got, want, what: str = "") -> None:
    """Exact equality; floats by bit pattern (so -0.0 != 0.0), NaN equal to NaN.

    Args:
        got: Kernel output.
        want: Reference output.
        what: Label for the failure message.
    """
    got = np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if got.dtype.kind == "f" or want.dtype.kind == "f":
        g = got.astype(np.float64)
        w = want.astype(np.float64)
        g_nan, w_nan = np.isnan(g), np.isnan(w)
        bits_g = np.where(g_nan, 0, g).view(np.uint64)
        bits_w = np.where(w_nan, 0, w).view(np.uint64)
        ok = np.array_equal(g_nan, w_nan) and np.array_equal(bits_g, bits_w)
        bad = np.flatnonzero((g_nan != w_nan) | (bits_g != bits_w))
    else:
        ok = np.array_equal(got, want)
        bad = np.flatnonzero(got != want) if got.ndim else np.array([0])
    if not ok:
        i = int(bad[0])
        raise AssertionError(f"{what}: {bad.size} differences, first at flat index {i}: "
                             f"got {got.ravel()[i]!r}, want {want.ravel()[i]!r}")


# --------------------------------------------------------------------------
# The IFS cases
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One chaos-game input: maps, per-map probabilities and the uniforms."""

    name: str
    maps: np.ndarray  # (N, 6) rows a, b, c, d, e, f
    p: np.ndarray  # (N,)
    u: np.ndarray  # (n,), one per point (the last is unused, as in the original)

    @property
    def n(self) -> int:
        return len(self.u)

    @property
    def cum(self) -> np.ndarray:
        return ref.cumulative(self.p)


def _det_p(maps: np.ndarray) -> np.ndarray:
    # The original's rule: p_i = |ad - bc|, normalised.
    p = np.abs(maps[:, 0] * maps[:, 3] - maps[:, 1] * maps[:, 2])
    return p / p.sum()


def _boundary_uniforms(cum: np.ndarray, n: int) -> np.ndarray:
    # Uniforms exactly on, just below and just above every cumulative value,
    # plus the extremes, scattered among ordinary ones.
    special = [0.0, np.nextafter(1.0, 0.0)]
    for c in cum:
        special += [c, np.nextafter(c, 0.0), np.nextafter(c, 2.0)]
    u = np.random.RandomState(21).random_sample(n)
    pos = np.random.RandomState(22).choice(n - 1, size=len(special) * 8, replace=False)
    u[pos] = np.tile(special, 8)
    return u


def _make_cases(n: int) -> dict[str, Case]:
    rs = np.random.RandomState(2024)
    cases = []

    sierpinski = np.array([[0.5, 0.0, 0.0, 0.5, 0.0, 0.0],
                           [0.5, 0.0, 0.0, 0.5, 0.5, 0.0],
                           [0.5, 0.0, 0.0, 0.5, 0.25, 0.5]])
    m = sierpinski + rs.uniform(-0.05, 0.05, sierpinski.shape)
    cases.append(Case("contractive", m, _det_p(m), rs.random_sample(n)))

    m = rs.uniform(-1.0, 1.0, (5, 6))
    cases.append(Case("search_like", m, _det_p(m), rs.random_sample(n)))

    # Coefficients ~4: overflows to inf after a few hundred steps, then
    # inf - inf gives NaN; trimming keeps the points before that.
    m = rs.uniform(3.0, 5.0, (3, 6)) * rs.choice([-1.0, 1.0], (3, 6))
    cases.append(Case("diverging", m, _det_p(m), rs.random_sample(n)))

    # Coefficients ~1e80: NaN within the first 100 points, so trimming
    # (with np.delete's negative-index wrap) deletes every point.
    m = rs.uniform(1.0, 2.0, (2, 6)) * 1e80 * np.array([[1, -1, 1, 1, 1, 1], [-1, 1, 1, -1, 1, 1]])
    cases.append(Case("nan_within_100", m, np.array([0.5, 0.5]), rs.random_sample(n)))

    # Every point is (0, 0): zero span on both axes.
    cases.append(Case("all_zero", np.zeros((2, 6)), np.array([0.5, 0.5]), rs.random_sample(n)))

    # y stays 0 (c = d = f = 0): zero span on one axis only.
    m = rs.uniform(-1.0, 1.0, (3, 6))
    m[:, [2, 3, 5]] = 0.0
    cases.append(Case("flat_y", m, np.array([0.2, 0.3, 0.5]), rs.random_sample(n)))

    # Non-negative maps: min is the start point 0, the "min < 0" shift is skipped.
    m = rs.uniform(0.0, 0.5, (3, 6))
    cases.append(Case("positive_only", m, _det_p(m), rs.random_sample(n)))

    # Exactly 8 maps fills the kernel's fixed 8-slot table; 10 takes the other path.
    m = rs.uniform(-1.0, 1.0, (8, 6))
    cases.append(Case("eight_maps", m, _det_p(m), rs.random_sample(n)))
    m = rs.uniform(-1.0, 1.0, (10, 6))
    cases.append(Case("ten_maps", m, _det_p(m), rs.random_sample(n)))

    # Last cumulative value 1 - 1/64: about 1.5 % of the uniforms match no
    # map and the point repeats.
    m = rs.uniform(-1.0, 1.0, (4, 6))
    cases.append(Case("cum_below_one", m, _det_p(m) * (1.0 - 1.0 / 64.0), rs.random_sample(n)))

    # A map with p = 0 (a repeated cumulative value) must never be picked.
    m = rs.uniform(-1.0, 1.0, (3, 6))
    cases.append(Case("zero_probability_map", m, np.array([0.4, 0.0, 0.6]), rs.random_sample(n)))

    m = rs.uniform(-1.0, 1.0, (3, 6))
    p = np.array([0.1, 0.7, 0.2])
    cases.append(Case("u_on_boundaries", m, p, _boundary_uniforms(ref.cumulative(p), n)))
    return {c.name: c for c in cases}


CASES = _make_cases(N_POINTS)


@dataclass(frozen=True)
class Stages:
    """The reference pipeline's intermediate results for one case (read-only)."""

    idx: np.ndarray
    xs: np.ndarray
    ys: np.ndarray
    txs: np.ndarray
    tys: np.ndarray
    px: np.ndarray
    py: np.ndarray


@lru_cache(maxsize=None)
def stages(name: str) -> Stages:
    """Reference stages of case ``name``, each kernel is fed its stage's input.

    Feeding every kernel the *reference* output of the stage before it keeps
    the failures apart: a wrong chaos game cannot make the rescale test fail.
    """
    c = CASES[name]
    idx = ref.select_maps(c.cum, c.u)
    xs, ys = ref.chaos_game(c.maps, c.cum, c.u, c.n)
    txs, tys = ref.trim_nan(xs, ys)
    px, py = ref.rescale(txs, tys, WIDTH, HEIGHT, PAD)
    out = Stages(idx, xs, ys, txs, tys, px, py)
    for a in vars(out).values():
        a.flags.writeable = False
    return out


def _patch_key(name: str) -> np.uint64:
    return np.uint64(0x5EED_0000_0000_0000 + sorted(CASES).index(name))


# --------------------------------------------------------------------------
# The table: kernel -> (fast runner, reference runner), both case -> outputs
# --------------------------------------------------------------------------


def fast_select_maps(c: Case):
    idx = np.full(c.n, -7, dtype=np.int8)  # int8, as the search scratch uses
    K.select_maps(c.cum, c.u, idx)
    return (idx.astype(np.int64),)


def ref_select_maps(c: Case):
    return (stages(c.name).idx,)


def fast_chaos_game(c: Case):
    idx = stages(c.name).idx.astype(np.int8)
    xs = np.full(c.n, -7.0)
    ys = np.full(c.n, -7.0)
    K.chaos_game(np.ascontiguousarray(c.maps), idx, xs, ys)
    return xs, ys


def ref_chaos_game(c: Case):
    s = stages(c.name)
    return s.xs, s.ys


def fast_trim_nan(c: Case):
    s = stages(c.name)
    xs, ys = s.xs.copy(), s.ys.copy()
    keep = np.empty(c.n, dtype=np.bool_)
    m = K.trim_nan(xs, ys, keep)
    return xs[:m], ys[:m]


def ref_trim_nan(c: Case):
    s = stages(c.name)
    return s.txs, s.tys


def _with_garbage(a: np.ndarray) -> np.ndarray:
    # Buffers are longer than the trimmed length in the search; the tail must
    # be ignored, so put values there that would change min and max.
    return np.concatenate([a, [np.nan, -1e300, 1e300]])


def fast_rescale(c: Case):
    s = stages(c.name)
    m = len(s.txs)
    px = np.full(m + 3, -7, dtype=np.int32)
    py = np.full(m + 3, -7, dtype=np.int32)
    K.rescale(_with_garbage(s.txs), _with_garbage(s.tys), m, WIDTH, HEIGHT, PAD, px, py)
    return px[:m].astype(np.int64), py[:m].astype(np.int64)


def ref_rescale(c: Case):
    s = stages(c.name)
    return s.px, s.py


def _bits(width: int, height: int) -> np.ndarray:
    return np.zeros((width * height + 63) // 64, dtype=np.uint64)


def fast_count_filled(c: Case):
    s = stages(c.name)
    bits = _bits(WIDTH, HEIGHT)
    count = K.count_filled(s.px.astype(np.int32), s.py.astype(np.int32), len(s.px), WIDTH, HEIGHT, bits)
    return np.int64(count), bits


def ref_count_filled(c: Case):
    s = stages(c.name)
    # The bitmap must come back zeroed: the search reuses it per candidate.
    return np.int64(ref.count_filled(s.px, s.py, WIDTH, HEIGHT)), _bits(WIDTH, HEIGHT)


def fast_draw_points(c: Case):
    s = stages(c.name)
    img = BACKGROUND.copy()
    K.draw_points(s.px.astype(np.int32), s.py.astype(np.int32), len(s.px), PALETTE, img)
    return (img,)


def ref_draw_points(c: Case):
    s = stages(c.name)
    return (ref.draw_points(s.px, s.py, PALETTE, BACKGROUND),)


def fast_draw_patches(c: Case):
    s = stages(c.name)
    img = BACKGROUND.copy()
    K.draw_patches(s.px.astype(np.int32), s.py.astype(np.int32), len(s.px), PALETTE,
                   _patch_key(c.name), img)
    return (img,)


def ref_draw_patches(c: Case):
    s = stages(c.name)
    return (ref.draw_patches(s.px, s.py, PALETTE, _patch_key(c.name), BACKGROUND),)


def _owned(px, py, width, height, colors, key, img, draws=(None,)):
    """The last-writer raster (patch_owners once, draw_owned per key) on copies of ``img``."""
    n = len(px)
    px, py = np.ascontiguousarray(px, dtype=np.int32), np.ascontiguousarray(py, dtype=np.int32)
    cells = width * height
    grids = np.zeros((3, height, width), np.int32)
    pix, shift, slot = np.empty(cells, np.int32), np.empty(cells, np.uint8), np.empty(cells, np.int32)
    uniq, pos_slot = np.empty(min(n, cells) + 1, np.int32), np.full(cells + 1, -1, np.int32)
    m, u = K.patch_owners(px, py, n, grids, pix, shift, slot, uniq, pos_slot)
    assert (pos_slot == -1).all()  # scratch handed back clean
    assert len(set(uniq[:u].tolist())) == u and set(slot[:m].tolist()) == set(range(u))
    assert np.all(np.diff(pix[:m]) > 0)  # raster order, each pixel once
    out = []
    for k in (key if isinstance(key, list) else [key]):
        drawn = img.copy()
        K.draw_owned(pix, shift, slot, m, uniq, u, colors, k, np.empty(max(u, 1), np.uint16), drawn)
        out.append(drawn)
    return out if isinstance(key, list) else out[0]


def fast_draw_owned(c: Case):
    s = stages(c.name)
    return (_owned(s.px, s.py, WIDTH, HEIGHT, PALETTE, _patch_key(c.name), BACKGROUND),)


PIPE_SIZE, PIPE_PAD = 128, 4


def fast_pipeline(c: Case):
    # The kernels chained as ks.evaluate chains them, on shared scratch.
    n = c.n
    idx = np.empty(n, dtype=np.int8)
    xs, ys = np.empty(n), np.empty(n)
    keep = np.empty(n, dtype=np.bool_)
    px, py = np.empty(n, dtype=np.int32), np.empty(n, dtype=np.int32)
    K.select_maps(c.cum, c.u, idx)
    K.chaos_game(np.ascontiguousarray(c.maps), idx, xs, ys)
    m = K.trim_nan(xs, ys, keep)
    K.rescale(xs, ys, m, PIPE_SIZE, PIPE_SIZE, PIPE_PAD, px, py)
    count = K.count_filled(px, py, m, PIPE_SIZE, PIPE_SIZE, _bits(PIPE_SIZE, PIPE_SIZE))
    return np.int64(count), px[:m].astype(np.int64), py[:m].astype(np.int64)


def ref_pipeline(c: Case):
    xs, ys = ref.trim_nan(*ref.chaos_game(c.maps, c.cum, c.u, c.n))
    px, py = ref.rescale(xs, ys, PIPE_SIZE, PIPE_SIZE, PIPE_PAD)
    count = ref.render_fill(c.maps, c.p, c.u, c.n, PIPE_SIZE, PIPE_PAD)
    return np.int64(count), px, py


KERNELS = {
    "select_maps": (fast_select_maps, ref_select_maps),
    "chaos_game": (fast_chaos_game, ref_chaos_game),
    "trim_nan": (fast_trim_nan, ref_trim_nan),
    "rescale": (fast_rescale, ref_rescale),
    "count_filled": (fast_count_filled, ref_count_filled),
    "draw_points": (fast_draw_points, ref_draw_points),
    "draw_patches": (fast_draw_patches, ref_draw_patches),
    "draw_owned": (fast_draw_owned, ref_draw_patches),  # the last-writer raster: the same pixels
    "pipeline": (fast_pipeline, ref_pipeline),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("kernel", list(KERNELS))
def test_kernel_matches_reference(kernel: str, case: str) -> None:
    """Each kernel of the table equals its reference exactly on each case."""
    fast, slow = KERNELS[kernel]
    got = fast(CASES[case])
    want = slow(CASES[case])
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        assert_same(g, w, f"{kernel}[{case}] output {k}")


def test_cases_reach_their_branches() -> None:
    """Each case exercises what its name says (guards the table against
    silently degenerating, e.g. when sizes shrink in the no-JIT run)."""
    s = {name: stages(name) for name in CASES}
    c = CASES

    d = s["diverging"]
    assert np.isinf(d.xs).any() or np.isinf(d.ys).any()
    first_nan = int(np.flatnonzero(np.isnan(d.xs) | np.isnan(d.ys))[0])
    assert 100 < first_nan < c["diverging"].n - 1
    assert 0 < len(d.txs) < c["diverging"].n and np.isfinite(d.txs).all()

    e = s["nan_within_100"]
    assert 0 < int(np.flatnonzero(np.isnan(e.xs))[0]) < 100
    assert len(e.txs) == 0

    z = s["all_zero"]
    assert not z.xs.any() and not z.ys.any()
    assert (z.px == PAD).all() and (z.py == PAD).all()
    assert (s["flat_y"].py == PAD).all() and len(np.unique(s["flat_y"].px)) > 10

    assert s["positive_only"].txs.min() == 0.0 and s["positive_only"].tys.min() == 0.0
    assert np.array_equal(np.unique(s["eight_maps"].idx), np.arange(8))
    assert np.array_equal(np.unique(s["ten_maps"].idx), np.arange(10))

    below = c["cum_below_one"]
    assert (below.u > below.cum[-1]).any()
    assert (s["cum_below_one"].idx == 4).any()
    repeats = np.flatnonzero(s["cum_below_one"].idx[:-1] == 4) + 1
    assert np.array_equal(s["cum_below_one"].xs[repeats], s["cum_below_one"].xs[repeats - 1])

    assert 1 not in s["zero_probability_map"].idx

    b = c["u_on_boundaries"]
    assert np.isin(b.cum, b.u).all()
    assert (b.u == 0.0).any()

    for name in CASES:
        # Every healthy case leaves points and lands them inside the image.
        if name not in ("nan_within_100",):
            assert (s[name].px >= 0).all() and (s[name].px < WIDTH).all(), name


# --------------------------------------------------------------------------
# Special values the chaos-game cases do not reach
# --------------------------------------------------------------------------

INF = np.inf
RESCALE_INPUTS = {
    "inf_high": [0.0, 1.0, 2.0, INF, 0.5],
    "neg_inf": [0.0, -INF, 3.0, 1.0],
    "both_inf": [INF, -INF, 0.0, 2.0],
    "all_inf": [INF, INF, INF],
    "all_neg_inf": [-INF, -INF],
    "span_overflows": [-1e308, 1e308, 0.0, 5e307, -7e307],
    "subnormal": [0.0, 5e-324, 1e-323, 2e-323],
    "negative_only": [-3.0, -1.0, -2.0, -2.5],
    "constant_negative": [-2.0, -2.0, -2.0],
    "single_point": [7.0],
    "negative_zero": [-0.0, 0.0, 1.0, 0.25],
    "no_points": [],
}
GEOMETRIES = [(96, 80, 3), (512, 512, 6), (362, 362, 6), (4, 4, 3), (70000, 3, 0)]


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: "x".join(map(str, g)))
@pytest.mark.parametrize("values", list(RESCALE_INPUTS))
def test_rescale_special_values(values: str, geometry) -> None:
    """inf, -inf, overflowing spans, subnormals, widths past 65536, no points."""
    width, height, pad = geometry
    xs = np.array(RESCALE_INPUTS[values], dtype=np.float64)
    ys = xs[::-1].copy()
    n = len(xs)
    px = np.full(n + 3, -7, dtype=np.int32)
    py = np.full(n + 3, -7, dtype=np.int32)
    K.rescale(_with_garbage(xs), _with_garbage(ys), n, width, height, pad, px, py)
    want_x, want_y = ref.rescale(xs, ys, width, height, pad)
    assert_same(px[:n].astype(np.int64), want_x, "px")
    assert_same(py[:n].astype(np.int64), want_y, "py")


def test_rescale_width_past_uint16_is_undefined() -> None:
    """Pixel values >= 65536 become -1 (the reference's documented definition)."""
    xs = np.linspace(0.0, 1.0, 11)
    px, _ = ref.rescale(xs, xs, 70000, 10, 0)
    assert px[0] == 0 and px[-1] == -1
    got = np.empty(11, dtype=np.int32)
    K.rescale(xs, xs, 11, 70000, 10, 0, got, np.empty(11, dtype=np.int32))
    assert_same(got.astype(np.int64), px)


def _nan_pattern(n, x_from, y_from, x_isolated=(), y_isolated=(), seed=0):
    # Finite values (with an inf: not NaN, so never trimmed) and NaN from
    # x_from / y_from to the end, as a chaos game leaves them, plus isolated
    # NaNs before that.
    rs = np.random.RandomState(seed)
    xs, ys = rs.normal(size=n), rs.normal(size=n)
    xs[n // 7] = INF
    xs[x_from:] = np.nan
    ys[y_from:] = np.nan
    xs[list(x_isolated)] = np.nan
    ys[list(y_isolated)] = np.nan
    return xs, ys


TRIM_PATTERNS = {
    "no_nan": (500, 500, 500, (), ()),
    "same_step": (500, 300, 300, (), ()),
    "y_first": (500, 251, 250, (), ()),
    "y_much_earlier": (500, 300, 120, (), ()),
    "x_isolated_early": (500, 400, 401, (50,), ()),
    "y_isolated": (500, 400, 400, (), (120, 121)),
    # An isolated NaN within the first 100 and a short NaN tail: the wrapped
    # indices delete finite points at the end.
    "wrap_hits_finite_tail": (500, 490, 490, (50,), ()),
    "wrap_past_start": (60, 30, 31, (), ()),
    "nan_at_start": (300, 0, 0, (), ()),
}


@pytest.mark.parametrize("pattern", list(TRIM_PATTERNS))
def test_trim_nan_patterns(pattern: str) -> None:
    """Which axis turns NaN first, isolated NaNs, wrap-around past the start.

    All patterns end in NaN on both axes, as every chaos game with a NaN does
    (the kernel relies on that to test for NaN in O(1)).
    """
    n, x_from, y_from, x_iso, y_iso = TRIM_PATTERNS[pattern]
    xs, ys = _nan_pattern(n, x_from, y_from, x_iso, y_iso)
    want_x, want_y = ref.trim_nan(xs, ys)
    keep = np.empty(n, dtype=np.bool_)
    m = K.trim_nan(xs, ys, keep)
    assert_same(xs[:m], want_x, "xs")
    assert_same(ys[:m], want_y, "ys")
    if pattern != "no_nan":
        assert m < n


# --------------------------------------------------------------------------
# Rasters at the edges of the image
# --------------------------------------------------------------------------

EDGE_W, EDGE_H = 12, 10
RASTER_STYLES = {
    "gray_rgb": (np.array([[127, 127, 127]], dtype=np.uint8), 3),
    "palette_rgb": (PALETTE[:5], 3),
    "gray_single_channel": (np.array([[127]], dtype=np.uint8), 1),
}


def _edge_points(n: int = 400):
    # Indices from -2 to past the far edge: clipping, skipping, many overwrites.
    rs = np.random.RandomState(31)
    px = rs.randint(-2, EDGE_W + 3, size=n).astype(np.int32)
    py = rs.randint(-2, EDGE_H + 3, size=n).astype(np.int32)
    return px, py


@pytest.mark.parametrize("style", list(RASTER_STYLES))
def test_draw_points_at_edges(style: str) -> None:
    """Point raster skips out-of-image indices and cycles colours by index."""
    colors, ch = RASTER_STYLES[style]
    px, py = _edge_points()
    bg = np.random.RandomState(32).randint(0, 256, size=(EDGE_H, EDGE_W, ch)).astype(np.uint8)
    img = bg.copy()
    K.draw_points(px, py, len(px), colors, img)
    assert_same(img, ref.draw_points(px, py, colors, bg))


@pytest.mark.parametrize("style", list(RASTER_STYLES))
def test_draw_patches_at_edges(style: str) -> None:
    """Patch raster clips at the far edges and overwrites with zero cells."""
    colors, ch = RASTER_STYLES[style]
    px, py = _edge_points()
    bg = np.random.RandomState(33).randint(0, 256, size=(EDGE_H, EDGE_W, ch)).astype(np.uint8)
    key = np.uint64(0xFEEDFACECAFEBEEF)
    img = bg.copy()
    K.draw_patches(px, py, len(px), colors, key, img)
    want = ref.draw_patches(px, py, colors, key, bg)
    assert_same(img, want)
    assert (want == 0).any() and (want != bg).any()


@pytest.mark.parametrize("style", list(RASTER_STYLES))
def test_last_writer_raster_at_edges(style: str) -> None:
    """patch_owners + draw_owned: the sequential overwrite's pixels, clipping and
    zero cells included, for several draws (masks) of the same points."""
    colors, ch = RASTER_STYLES[style]
    px, py = _edge_points()
    bg = np.random.RandomState(34).randint(0, 256, size=(EDGE_H, EDGE_W, ch)).astype(np.uint8)
    keys = [np.uint64(k) for k in (0xFEEDFACECAFEBEEF, 1, 2**63 + 5)]
    for key, got in zip(keys, _owned(px, py, EDGE_W, EDGE_H, colors, keys, bg)):
        assert_same(got, ref.draw_patches(px, py, colors, key, bg))


@pytest.mark.parametrize("seed", range(6))
def test_last_writer_raster_dense_and_sparse(seed: int) -> None:
    """Random point clouds from a handful of points (no overlap) to many per pixel, on odd sizes."""
    rs = np.random.RandomState(40 + seed)
    w, h = int(rs.randint(4, 40)), int(rs.randint(4, 40))
    n = int(rs.choice([1, 3, 50, 2000, 20000]))
    px = rs.randint(-3, w + 3, size=n).astype(np.int32)
    py = rs.randint(-3, h + 3, size=n).astype(np.int32)
    for colors, ch in ((np.array([[127]], np.uint8), 1), (PALETTE, 3)):
        bg = rs.randint(0, 256, size=(h, w, ch)).astype(np.uint8)
        key = np.uint64(rs.randint(0, 2**62))
        assert_same(_owned(px, py, w, h, colors, key, bg), ref.draw_patches(px, py, colors, key, bg))


def test_draw_patches_with_reference_masks() -> None:
    """The patch raster with masks from the pure-Python splitmix64 reference,
    so the whole patch path is tied to code that shares nothing with the kernel."""
    px, py = _edge_points()
    key = 0x0123456789ABCDEF
    bg = np.zeros((EDGE_H, EDGE_W, 3), dtype=np.uint8)
    img = bg.copy()
    K.draw_patches(px, py, len(px), PALETTE, np.uint64(key), img)
    assert_same(img, ref.draw_patches(px, py, PALETTE, key, bg, mask_fn=ref.patch_mask))


def test_count_filled_at_edges() -> None:
    """Distinct in-image pixels, bitmap zeroed again on return."""
    px, py = _edge_points()
    bits = _bits(EDGE_W, EDGE_H)
    got = K.count_filled(px, py, len(px), EDGE_W, EDGE_H, bits)
    assert got == ref.count_filled(px, py, EDGE_W, EDGE_H)
    assert not bits.any()


# --------------------------------------------------------------------------
# splitmix64 against the pure-Python reference
# --------------------------------------------------------------------------

KEYS = [0, 1, 0x0123456789ABCDEF, 2**63, 2**64 - 1]
COUNTERS = list(range(40)) + [2**31, 2**32 + 5, 2**40, 2**62]


@pytest.mark.parametrize("key", KEYS, ids=hex)
def test_splitmix64_matches_reference(key: int) -> None:
    """Bit-exact 64-bit draws, including wrap-around of key + counter * golden."""
    got = [int(K.splitmix64(np.uint64(key), c)) for c in COUNTERS]
    want = [ref.splitmix64(key, c) for c in COUNTERS]
    assert got == want


@pytest.mark.parametrize("key", KEYS, ids=hex)
def test_patch_mask_matches_reference(key: int) -> None:
    """Masks equal the reference and stay in 1..511."""
    counters = range(300 if NO_JIT else 3000)
    got = np.array([K.patch_mask(np.uint64(key), c) for c in counters])
    want = np.array([ref.patch_mask(key, c) for c in counters])
    assert_same(got, want)
    assert got.min() >= 1 and got.max() <= 511


@pytest.mark.parametrize("key", KEYS, ids=hex)
def test_fill_uniform_matches_reference(key: int) -> None:
    """Uniforms equal the reference bit for bit and lie in [0, 1)."""
    got = np.full(1000, -1.0)
    K.fill_uniform(np.uint64(key), got)
    assert_same(got, ref.fill_uniform(key, 1000))
    assert got.min() >= 0.0 and got.max() < 1.0


# --------------------------------------------------------------------------
# Legacy MT19937 against np.random.RandomState
# --------------------------------------------------------------------------


def _mt_fill_doubles(st, rs, n):
    out = np.full(n, -1.0)
    mt.fill_doubles(st, out)
    return out, rs.random_sample(n)


def _mt_words_to_doubles(st, rs, n):
    words = np.zeros(2 * n, dtype=np.uint32)
    mt.fill_words(st, words)
    out = np.full(n, -1.0)
    mt.words_to_doubles(words, out)
    return out, rs.random_sample(n)


def _mt_fill_words(st, rs, n):
    words = np.zeros(n, dtype=np.uint32)
    mt.fill_words(st, words)
    return words, ref.draw_words(rs, n)


def _mt_skip(st, rs, n):
    mt.skip(st, n)
    ref.draw_words(rs, n)
    # Only the state tells; checked by the caller.
    return np.zeros(0), np.zeros(0)


MT_KERNELS = {
    "fill_doubles": _mt_fill_doubles,
    "fill_words+words_to_doubles": _mt_words_to_doubles,
    "fill_words": _mt_fill_words,
    "skip": _mt_skip,
}
# (words drawn before, count): start mid-block, end exactly on and just past
# a twist, span several twists.
MT_SPANS = [(0, 1), (0, 312), (1, 312), (0, 313), (623, 3), (624, 624), (7, 1500)]


@pytest.mark.parametrize("span", MT_SPANS, ids=lambda s: f"pre{s[0]}-n{s[1]}")
@pytest.mark.parametrize("seed", [0, 1, 100, 2**32 - 1])
@pytest.mark.parametrize("kernel", list(MT_KERNELS))
def test_mt19937_matches_randomstate(kernel: str, seed: int, span) -> None:
    """Values and the generator state afterwards equal RandomState's."""
    pre, n = span
    rs = np.random.RandomState(seed)
    ref.draw_words(rs, pre)
    st = ref.state_array(rs)
    got, want = MT_KERNELS[kernel](st, rs, n)
    assert_same(got, want, "values")
    assert_same(st, ref.state_array(rs), "state")


@pytest.mark.parametrize("seed", [0, 1, 100, 2**32 - 1])
def test_state_from_seed(seed: int) -> None:
    """The snapshot of a freshly seeded generator."""
    assert_same(mt.state_from_seed(seed), ref.state_array(np.random.RandomState(seed)))


RANDINT_RANGES = [(2, 8), (0, 2), (-3, 4), (0, 1000), (10**6, 10**6 + 12345),
                  (0, 2**31), (0, 2**32 - 1), (0, 2**32)]


@pytest.mark.parametrize("bounds", RANDINT_RANGES, ids=str)
def test_randint_masked_matches_randomstate(bounds) -> None:
    """Scalar ``randint(low, high)`` values and words consumed, with rejections."""
    low, high = bounds
    rs = np.random.RandomState(1)
    ref.draw_words(rs, 5)
    st = ref.state_array(rs)
    got = [int(mt.randint_masked(st, low, high)) for _ in range(200)]
    want = [int(rs.randint(low, high)) for _ in range(200)]
    assert got == want
    assert_same(st, ref.state_array(rs), "state")


def test_randint_masked_single_value_range() -> None:
    """A one-value range returns low and, like NumPy, draws nothing."""
    rs = np.random.RandomState(3)
    st = ref.state_array(rs)
    assert mt.randint_masked(st, 5, 6) == rs.randint(5, 6) == 5
    assert_same(st, ref.state_array(rs), "state")


# --------------------------------------------------------------------------
# The official search kernels against a replay of the original loop
# --------------------------------------------------------------------------


def _search_scratch(n: int, size: int):
    return (np.empty(mt.STATE_SIZE, dtype=np.uint32), np.empty(2 * n, dtype=np.uint32),
            np.empty(n, dtype=np.int8), np.empty(n), np.empty(n),
            np.empty(n, dtype=np.bool_), np.empty(n, dtype=np.int32), np.empty(n, dtype=np.int32),
            np.zeros((size * size + 63) // 64, dtype=np.uint64))


@lru_cache(maxsize=None)
def _walked(n_candidates: int, n_points: int):
    st = mt.state_from_seed(1)
    maps = np.zeros((n_candidates, ks.MAX_MAPS, 7))
    nmaps = np.zeros(n_candidates, dtype=np.int64)
    snaps = np.zeros((n_candidates, mt.STATE_SIZE), dtype=np.uint32)
    ks.walk(st, n_candidates, n_points, maps, nmaps, snaps)
    return st, maps, nmaps, snaps


# 512 / 6 is the original; at 64 / 2 a 3000-point candidate can reach the 0.2
# fill rate, so acceptance itself is exercised too.
@pytest.mark.parametrize("size,pad", [(512, 6), (64, 2)])
def test_official_search_matches_original_loop(size: int, pad: int) -> None:
    """walk + evaluate from seed 1 equal the original loop, candidate by candidate."""
    n_cand, n = SEARCH_CANDIDATES, SEARCH_POINTS
    want = ref.official_search(1, n_cand, n, size, pad)
    st, maps, nmaps, snaps = _walked(n_cand, n)

    assert_same(nmaps, [len(w["params"]) for w in want], "number of maps")
    for c, w in enumerate(want):
        assert_same(maps[c, :nmaps[c]], w["params"], f"candidate {c} params")
        assert_same(snaps[c], w["state"], f"candidate {c} snapshot")
    assert_same(st, want[-1]["final_state"], "stream after the walk")

    # Evaluate in two ranges, second half first: the result must not depend
    # on the order or the split (workers evaluate ranges independently).
    fills = np.full(n_cand, -1, dtype=np.int64)
    half = n_cand // 2
    scratch = _search_scratch(n, size)
    ks.evaluate(maps, nmaps, snaps, half, n_cand, n, size, pad, fills, *scratch)
    ks.evaluate(maps, nmaps, snaps, 0, half, n, size, pad, fills, *scratch)
    assert_same(fills, [w["fill"] for w in want], "fills")
    accepted = fills / float(size * size) >= 0.2
    assert_same(accepted, [w["accepted"] for w in want], "accepted")
    if size == 64 and not NO_JIT:
        assert accepted.any() and not accepted.all()


def test_keyed_evaluate_matches_reference() -> None:
    """evaluate_keyed (modern/svd samplers) with per-candidate splitmix64 uniforms."""
    n_cand, n, size, pad = min(SEARCH_CANDIDATES, 10), SEARCH_POINTS, 128, 4
    _, maps, nmaps, _ = _walked(SEARCH_CANDIDATES, SEARCH_POINTS)
    keys = np.array([0x9E37 * (c + 1) for c in range(n_cand)], dtype=np.uint64)
    fills = np.full(n_cand, -1, dtype=np.int64)
    s = _search_scratch(n, size)
    ks.evaluate_keyed(maps, nmaps, keys, 0, n_cand, n, size, pad, fills, np.empty(n), *s[2:])
    want = [ref.render_fill(maps[c, :nmaps[c]], maps[c, :nmaps[c], 6],
                            ref.fill_uniform(int(keys[c]), n), n, size, pad)
            for c in range(n_cand)]
    assert_same(fills, want, "fills")


# --------------------------------------------------------------------------
# The whole file again, JIT off
# --------------------------------------------------------------------------


@pytest.mark.slow
def test_kernels_without_jit() -> None:
    """Re-run this file with ``NUMBA_DISABLE_JIT=1``: the kernels as plain
    Python must give the same results (typing differences between numba and
    NumPy scalars show up here)."""
    env = dict(os.environ)
    env["NUMBA_DISABLE_JIT"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(Path(__file__).resolve()), "-q", "-x",
         "-p", "no:cacheprovider", "-k", "not without_jit"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout[-2000:]


# --------------------------------------------------------------------------
# Official mode: NumPy's own uint16 cast on x86-64 for undefined values
# --------------------------------------------------------------------------

@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="the original's uint16 cast of NaN/inf is x86-64 behaviour")
@pytest.mark.parametrize("xs", [
    # span overflows to inf: the maximum maps to inf / inf = NaN (FractalDB-1k 00000, a x 1.8)
    np.array([0.0, -1.7e308, 1.7e308, 3.0, 5e307]),
    # all points equal (0 / 0) and a positive constant (c / 0 = inf)
    np.zeros(5), np.full(5, 2.5),
    # ordinary values, negative and positive
    np.array([-3.0, 0.0, 1.0, 2.5, 7.0]),
])
def test_rescale_x86_cast_matches_numpy(xs):
    """``rescale(..., x86_cast=True)`` equals the original formula with NumPy's uint16 cast."""
    w, pad = 64, 6
    v = xs.copy()
    if v.min() < 0.0:
        v -= v.min()
    with np.errstate(all="ignore"):
        want = np.uint16(v / (v.max() - v.min()) * float(w - 2 * pad) + float(pad)).astype(np.int32)
    px = np.empty(len(xs), dtype=np.int32)
    py = np.empty(len(xs), dtype=np.int32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        K.rescale(xs.copy(), xs.copy(), len(xs), w, w, pad, px, py, True)
    assert_same(px, want, "px")


@pytest.mark.parametrize("n_maps", [2, 5, 7])
def test_select_from_words_equals_doubles_then_select(n_maps: int) -> None:
    """The fused official-search selection equals words -> doubles -> select_maps."""
    rs = np.random.RandomState(11)
    st = ref.state_array(rs)
    words = np.empty(2 * 5000, dtype=np.uint32)
    mt.fill_words(st, words)
    u = np.empty(5000)
    mt.words_to_doubles(words, u)
    cum = np.cumsum(rs.random_sample(n_maps))
    cum /= cum[-1]
    cum[-1] = np.nextafter(1.0, 0.0)  # some uniforms above the last entry: no map
    cum[1] = u[17]                    # one uniform exactly on an entry
    want = np.empty(5000, dtype=np.int8)
    K.select_maps(cum, u, want)
    got = np.empty(5000, dtype=np.int8)
    ks.select_from_words(cum, words, got)
    assert_same(got, want, "idx")


@pytest.mark.parametrize("n", [2, 50, 99, 100, 101, 230, 500])
def test_nan_prefix_is_trim_nan_on_nan_suffixes(n: int) -> None:
    """A chaos game's NaNs are a suffix per axis; trim_nan then keeps the prefix ``nan_prefix`` says."""
    rs = np.random.RandomState(n)
    firsts = sorted({0, 1, 99, 100, 101, 199, 200, n - 1, n} | set(rs.randint(0, n + 1, size=12).tolist()))
    firsts = [f for f in firsts if 0 <= f <= n]
    for fx in firsts:
        for fy in firsts:
            if fx == n and fy == n:
                continue
            xs, ys = rs.normal(size=n), rs.normal(size=n)
            xs[fx:], ys[fy:] = np.nan, np.nan
            tx, ty = xs.copy(), ys.copy()
            m = K.trim_nan(tx, ty, np.empty(n, dtype=np.bool_))
            assert K.nan_prefix(fx, fy, n) == m, (n, fx, fy)
            assert_same(tx[:m], xs[:m], "xs")  # a prefix: nothing moved
            assert_same(ty[:m], ys[:m], "ys")
    assert K.nan_prefix(n, n, n) == n
