"""Colour-fractal families: kernels against tests/colorfractal_reference.py (JIT on
and off), the sigma-factor sampler against its description, OpenCV parity
(skipped without opencv-python-headless), determinism of both renderers, and
the multi-label labels."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import colorfractal_reference as ref
import numpy as np
import pytest

from fractaldb.families.colorfractal import kernels as K
from fractaldb.families.colorfractal.model import (ColorFractalRenderer, ColorRenderConfig, MultiFractalRenderer,
                                                   MultiRenderConfig, blur_weights, find_systems, multi_layout,
                                                   patch_cells, sample_svs, sigma_factor_rows)
from fractaldb.seeds import stream_key

REPO_ROOT = Path(__file__).resolve().parent.parent
NO_JIT = os.environ.get("NUMBA_DISABLE_JIT", "0").strip() not in ("", "0")
if NO_JIT:
    pytestmark = [pytest.mark.filterwarnings("ignore:overflow encountered in scalar:RuntimeWarning")]

KEY = stream_key(7, "colorfractal-points", 1, 2)


def _system(j=0):
    return find_systems(3, j + 1)[j]


# --------------------------------------------------------------------------
# Kernels against the reference
# --------------------------------------------------------------------------

@pytest.mark.parametrize("j", [0, 1, 2])
def test_chaos_game_and_graded_render_match_reference(j):
    ifs = _system(j)
    maps = np.ascontiguousarray(ifs.maps)
    cum = np.cumsum(ifs.probs)
    n = 300 if NO_JIT else 3000
    xs, ys, region = np.empty(n), np.empty(n), np.empty(4)
    K.chaos_game(maps, cum, KEY, xs, ys, region)
    want = ref.chaos_game(maps, cum, KEY, n)
    np.testing.assert_allclose(np.stack([xs, ys], 1), want, rtol=0, atol=1e-9)
    assert np.array_equal(region, [xs.min(), ys.min(), xs.max(), ys.max()])
    # a shifted, scaled window (points fall outside) and patches, under both bounds rules
    region = region + np.array([0.1, -0.05, -0.2, 0.1])
    hits = np.empty(42 * 42 + 1, dtype=np.int32)
    for cells in (np.array([[1, 1]]), patch_cells(0b101100111), patch_cells(511), patch_cells(0b100000001)):
        for rule, name in ((K.CELLS, "cells"), (K.CENTRE, "centre")):
            img = np.empty((40, 40))
            K.render_graded(xs, ys, region, cells, rule, hits, img)
            assert np.array_equal(img, ref.render_graded(np.stack([xs, ys], 1), region, cells, 40, name))


def test_bounds_rules_at_the_border():
    """The original's rule (cells) paints the border cells that the patch of a point one
    pixel outside the window reaches; the old rule (centre) drops such points.  Window
    [0, 9] on a 10-pixel side: a coordinate is its pixel, truncated toward zero."""
    s = 10
    region = np.array([0.0, 0.0, 9.0, 9.0])
    pts = np.array([[-1.5, 4.2],   # pixel (-1, 4): cells paints row 0, columns 3..5
                    [4.2, -1.5],   # pixel (4, -1): rows 3..5, column 0
                    [10.5, 4.2],   # pixel (10, 4): row 9, columns 3..5
                    [4.2, 10.7],   # pixel (4, 10): rows 3..5, column 9
                    [4.2, 4.2],    # inside: rows 3..5, columns 3..5 under both rules
                    [-0.5, 5.0],   # truncates to pixel (0, 5): rows 0..1, columns 4..6 under both
                    [-2.5, 4.0],   # pixel (-2, 4): its patch reaches nothing
                    [np.nan, 3.0]])
    both = np.zeros((s, s))
    both[3:6, 3:6] += 1
    both[0:2, 4:7] += 1
    outside = np.zeros((s, s))
    outside[0, 3:6] += 1
    outside[3:6, 0] += 1
    outside[9, 3:6] += 1
    outside[3:6, 9] += 1
    hits = np.empty((s + 2) ** 2 + 1, dtype=np.int32)
    for rule, name, want in ((K.CELLS, "cells", both + outside), (K.CENTRE, "centre", both)):
        img = np.empty((s, s))
        K.render_graded(pts[:, 0].copy(), pts[:, 1].copy(), region, patch_cells(511), rule, hits, img)
        assert np.array_equal(img, want / want.max()), name
        assert np.array_equal(img, ref.render_graded(pts, region, patch_cells(511), s, name)), name


def test_colour_and_background_kernels_match_reference():
    rng = np.random.default_rng(0)
    d = rng.random((23, 19)) * (rng.random((23, 19)) > 0.4)
    hsv = np.empty((23, 19, 3), dtype=np.uint8)
    K.colorize_density(d, 200.7, np.uint8(150), np.uint8(222), hsv)
    assert np.array_equal(hsv, ref.colorize_density(d, 200.7, 150, 222))
    # the fused colouring (a hue table) and pasting give the same bytes as HSV then RGB
    lut = np.empty((256, 3), dtype=np.uint8)
    K.hue_lut(np.uint8(150), np.uint8(222), lut)
    rgb = np.empty_like(hsv)
    K.colorize_rgb(d, 200.7, lut, rgb)
    assert np.array_equal(rgb, ref.hsv_to_rgb(ref.colorize_density(d, 200.7, 150, 222)))
    under = rng.integers(0, 256, hsv.shape, dtype=np.uint8)
    pasted = under.copy()
    K.paste_density(d, 200.7, lut, pasted)
    assert np.array_equal(pasted, ref.paste(rgb, under, 0, 0))
    # every HSV byte triple in a sample, plus the corners of the cube
    trip = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    trip[0, :8] = [[h, s, v] for h in (0, 179, 180, 255) for s, v in ((0, 255), (255, 255))]
    rgb = np.empty_like(trip)
    K.hsv_to_rgb(trip, rgb)
    assert np.array_equal(rgb, ref.hsv_to_rgb(trip))
    side = 17 if NO_JIT else 33
    grid = np.empty((side, side))
    key = stream_key(7, "colorfractal-background", 0, 0)
    K.diamond_square(0.6, key, grid)
    want = ref.diamond_square(0.6, key, side)
    np.testing.assert_allclose(grid, want, rtol=0, atol=1e-12)
    params = np.array([200.0, 17.5, 40.0, 120.0, 110.0, 115.0])
    out = np.empty((side - 3, side - 5, 3), dtype=np.uint8)
    x = grid * 3 - 1  # reach both clamps and the hue wrap
    K.colorize_background(x[: side - 3, : side - 5], params, out)
    assert np.array_equal(out, ref.colorize_background(x[: side - 3, : side - 5], params))
    K.background_rgb(x[: side - 3, : side - 5], params, out)
    assert np.array_equal(out, ref.hsv_to_rgb(ref.colorize_background(x[: side - 3, : side - 5], params)))


def test_paste_blur_resize_match_reference():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (21, 26, 3), dtype=np.uint8)
    fg = rng.integers(0, 256, (9, 12, 3), dtype=np.uint8) * (rng.random((9, 12, 1)) > 0.5).astype(np.uint8)
    for y, x in ((0, 0), (-4, 20), (15, -6), (3, 5)):
        got = img.copy()
        K.paste(fg, got, y, x)
        assert np.array_equal(got, ref.paste(fg, img, y, x))
    for sigma in (0.5, 0.83, 1.0):
        w = blur_weights(sigma)
        got = img.copy()
        K.blur3(got, w, np.empty(img.shape))
        assert np.array_equal(got, ref.blur3(img, w))
    for oh, ow in ((33, 33), (7, 40), (60, 13), (21, 26)):
        got = np.empty((oh, ow, 3), dtype=np.uint8)
        K.resize_bilinear(img, got)
        assert np.array_equal(got, ref.resize_bilinear(img, oh, ow))


def test_sigma_factor_sampler_matches_its_description():
    for seed in range(20):
        rows = sigma_factor_rows(np.random.default_rng(seed))
        want, sigma, svs = ref.sigma_factor_rows(np.random.default_rng(seed))
        np.testing.assert_allclose(rows, want, rtol=0, atol=1e-12)
        n = rows.shape[0]
        assert 2 <= n <= 4
        assert (5 + n) / 2 <= sigma <= (6 + n) / 2
        assert math.isclose((svs[:, 0] + 2 * svs[:, 1]).sum(), sigma, rel_tol=1e-12)
        # the singular values of each map are the drawn ones: contractive
        got = np.sort(np.linalg.svd(rows[:, :4].reshape(n, 2, 2), compute_uv=False), axis=1)[:, ::-1]
        np.testing.assert_allclose(got, np.sort(svs, axis=1)[:, ::-1], atol=1e-12)
        assert np.all(svs <= 1 + 1e-12) and np.all(svs >= -1e-12) and np.all(svs[:, 0] >= svs[:, 1] - 1e-12)
    s = sample_svs(3, 4.7, np.random.default_rng(5))
    assert math.isclose((s[:, 0] + 2 * s[:, 1]).sum(), 4.7)


def test_kernels_without_jit() -> None:
    """Re-run the parity tests of this file with ``NUMBA_DISABLE_JIT=1``."""
    if NO_JIT:
        pytest.skip("already without the JIT")
    env = dict(os.environ)
    env["NUMBA_DISABLE_JIT"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(Path(__file__).resolve()), "-q", "-x", "-p", "no:cacheprovider",
         "-k", "match"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout, proc.stdout[-2000:]


# --------------------------------------------------------------------------
# OpenCV parity (the original converts and resizes with cv2)
# --------------------------------------------------------------------------

def test_hsv_to_rgb_equals_opencv_on_every_byte_triple():
    cv2 = pytest.importorskip("cv2")
    cube = np.stack(np.meshgrid(np.arange(256), np.arange(256), np.arange(256), indexing="ij"), -1)
    cube = np.ascontiguousarray(cube.reshape(4096, 4096, 3).astype(np.uint8))
    ours = np.empty_like(cube)
    K.hsv_to_rgb(cube, ours)
    assert np.array_equal(ours, cv2.cvtColor(cube, cv2.COLOR_HSV2RGB))


def test_blur_and_resize_within_one_of_opencv():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (50, 61, 3), dtype=np.uint8)
    for sigma in (0.5, 0.77, 1.0):
        ours = img.copy()
        K.blur3(ours, blur_weights(sigma), np.empty(img.shape))
        theirs = cv2.GaussianBlur(img, (3, 3), sigma)
        assert np.abs(ours.astype(int) - theirs).max() <= 1
    src = rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)
    for s in (33, 80, 112, 134):
        ours = np.empty((s, s, 3), dtype=np.uint8)
        K.resize_bilinear(src, ours)
        theirs = cv2.resize(src, (s, s), interpolation=cv2.INTER_LINEAR)
        assert np.abs(ours.astype(int) - theirs).max() <= 1


# --------------------------------------------------------------------------
# Renderers
# --------------------------------------------------------------------------

SMALL_COLOR = ColorRenderConfig(size=48, points=4000)
SMALL_MULTI = MultiRenderConfig(size=64, render_size=32, points=4000, renders_per_class=2)


def test_colour_instances_are_seeded_and_differ():
    classes = find_systems(4, 3)
    a = ColorFractalRenderer(SMALL_COLOR, 4)
    b = ColorFractalRenderer(SMALL_COLOR, 4)
    imgs = [a.render(classes[k], k, i) for k in range(3) for i in range(2)]
    again = [b.render(classes[k], k, i) for k in reversed(range(3)) for i in reversed(range(2))][::-1]
    assert all(np.array_equal(x, y) for x, y in zip(imgs, again))  # order does not matter
    assert len({x.tobytes() for x in imgs}) == len(imgs)
    assert all(x.shape == (48, 48, 3) and x.dtype == np.uint8 for x in imgs)
    other = ColorFractalRenderer(SMALL_COLOR, 5).render(classes[0], 0, 0)
    assert not np.array_equal(other, imgs[0])


def test_colour_instance_without_extras_is_the_coloured_density():
    """No background, jitter, flips or blur: every pixel is black or a colour of the fractal."""
    ifs = _system()
    cfg = ColorRenderConfig(size=40, points=3000, jitter=False, background=False, flips=False, blur_p=0.0,
                            translate=0.0, scale=(2.0, 2.0), patch=False)
    img = ColorFractalRenderer(cfg, 3).render(ifs, 0, 0)
    on = img.any(axis=2)
    assert 0 < on.sum() < 40 * 40
    # one saturation and value per image: the brightest channel is V on every lit pixel
    assert len(set(img[on].max(axis=1).tolist())) == 1
    assert len({tuple(p) for p in img[on]}) > 1  # hues follow the density


def test_multi_layout_and_labels():
    cfg = MultiRenderConfig()
    for k in range(20):
        lay = multi_layout(cfg, 1, 1000, k, 3)
        assert 1 <= len(lay.objects) <= 5
        assert k in lay.classes and lay.classes == sorted(set(lay.classes))
        for c, r, f, col, side, y, x in lay.objects:
            assert 0 <= c < 1000 and 0 <= r < cfg.renders_per_class
            assert int(0.15 * 224) <= side <= int(0.6 * 224)
            assert -(side // 2) <= x < 224 - side // 2 and -(side // 2) <= y < 224 - side // 2
    counts = [len(multi_layout(cfg, 1, 1000, k, 0).objects) for k in range(300)]
    assert set(counts) == {1, 2, 3, 4, 5}


def test_multi_images_are_seeded_and_cache_free():
    classes = find_systems(2, 4)
    a = MultiFractalRenderer(SMALL_MULTI, 2)
    imgs = [a.render(classes, k, i) for k in range(4) for i in range(2)]
    b = MultiFractalRenderer(SMALL_MULTI, 2)
    b.CACHE = 1  # evicts all the time: the same bytes
    again = [b.render(classes, k, i) for k in range(4) for i in range(2)]
    assert all(np.array_equal(x, y) for x, y in zip(imgs, again))
    assert len({x.tobytes() for x in imgs}) == len(imgs)
    assert imgs[0].shape == (64, 64, 3)
