"""Kernels of the colour-fractal families (CPU, numba): chaos game, graded
density, colour by density, OpenCV-style 8-bit HSV->RGB, diamond-square
backgrounds, paste, 3x3 Gaussian blur and bilinear resize.

The algorithms are those of Anderson & Farrell, "Improving Fractal
Pre-training" (WACV 2022; catalys1/fractal-pretraining, MIT), re-written from
their description (docs/color-fractals.md lists what is exact, faithful or
fixed).  Randomness comes in as arguments: per-image scalars from the caller's
``Generator``, long streams (chaos-game uniforms, diamond-square noise) from a
64-bit key through :func:`fractaldb.kernels.random.splitmix64`.

Kernels are dumb: preallocated arrays in, nothing allocated, nothing checked.
Every kernel has a slow NumPy twin in ``tests/colorfractal_reference.py``,
compared in ``tests/test_colorfractal.py`` with the JIT on and off.
"""

from __future__ import annotations

import math

import numpy as np

from ..._jit import kernel
from ...kernels.random import splitmix64

_INV53 = 1.0 / 9007199254740992.0

# OpenCV's 8-bit HSV->RGB works in float32: H in 2-degree units (hscale =
# 6 / 180), S and V scaled by 1/255, the result times 255 truncated.
F32_HSCALE = np.float32(6.0) / np.float32(180.0)
F32_INV255 = np.float32(1.0) / np.float32(255.0)
F32_255 = np.float32(255.0)
F32_ONE = np.float32(1.0)
F32_SIX = np.float32(6.0)
#: OpenCV's sector table: (b, g, r) = (tab[i], tab[j], tab[k]) for a hue sector.
SECTORS = np.array([[1, 3, 0], [1, 0, 2], [3, 0, 1], [0, 2, 1], [0, 1, 3], [2, 1, 0]], dtype=np.int64)


@kernel
def uniform(key, counter):
    """Draw ``counter`` of ``key`` as a double in [0, 1) (top 53 bits)."""
    return np.float64(splitmix64(key, counter) >> np.uint64(11)) * _INV53


@kernel
def chaos_game(maps, cum, key, xs, ys):
    """Fill ``xs, ys`` with chaos-game points of ``maps`` (``(N, 6)`` rows a, b, c, d, e, f).

    Starts at the fixed point of map 0, ``(I - A0)^-1 t0`` (a point of the
    attractor); step ``i`` draws ``u = uniform(key, i)``, picks the first map
    ``j`` with ``u < cum[j]`` (strict; the last map if none), applies it and
    stores the new point (the start point itself is not stored).
    """
    n = maps.shape[0]
    a = maps[0, 0]
    b = maps[0, 1]
    c = maps[0, 2]
    d = maps[0, 3]
    e = maps[0, 4]
    f = maps[0, 5]
    s = 1.0 / (1.0 + (a * d - b * c) - a - d)
    x = s * ((1.0 - d) * e + b * f)
    y = s * ((1.0 - a) * f + c * e)
    for i in range(xs.shape[0]):
        u = uniform(key, i)
        k = n - 1
        for j in range(n):
            if u < cum[j]:
                k = j
                break
        xt = x
        x = maps[k, 0] * xt + maps[k, 1] * y + maps[k, 4]
        y = maps[k, 2] * xt + maps[k, 3] * y + maps[k, 5]
        xs[i] = x
        ys[i] = y


@kernel
def bounds(xs, ys, region):
    """``region = [min x, min y, max x, max y]`` over the finite points (zeros if none)."""
    x0 = np.inf
    y0 = np.inf
    x1 = -np.inf
    y1 = -np.inf
    for i in range(xs.shape[0]):
        x = xs[i]
        y = ys[i]
        if math.isfinite(x) and math.isfinite(y):
            if x < x0:
                x0 = x
            if x > x1:
                x1 = x
            if y < y0:
                y0 = y
            if y > y1:
                y1 = y
    if x0 > x1:
        x0 = y0 = x1 = y1 = 0.0
    region[0] = x0
    region[1] = y0
    region[2] = x1
    region[3] = y1


@kernel
def render_graded(xs, ys, region, cells, img):
    """Graded density of the points inside ``region`` in ``img`` (``(S, S)`` float64, max 1).

    Row from x, column from y (the original's transposed layout); a point
    lands at ``int((x - x0) * (S - 1) / (x1 - x0))`` (truncation; a span that
    is not positive counts as 1) and adds 1 at each ``cells`` offset ``(dr,
    dc)`` minus 1 (a 3x3 patch; ``[[1, 1]]`` is the point alone).  Counts are
    divided by their maximum.
    """
    s = img.shape[0]
    for r in range(s):
        for c in range(s):
            img[r, c] = 0.0
    xspan = region[2] - region[0]
    if not xspan > 0.0:
        xspan = 1.0
    yspan = region[3] - region[1]
    if not yspan > 0.0:
        yspan = 1.0
    xscale = (s - 1) / xspan
    yscale = (s - 1) / yspan
    x0 = region[0]
    y0 = region[1]
    for i in range(xs.shape[0]):
        xv = (xs[i] - x0) * xscale
        yv = (ys[i] - y0) * yscale
        # int() truncates toward zero: (-1, 0) lands on 0, as in the original.
        if xv > -1.0 and xv < s and yv > -1.0 and yv < s:
            rr = int(xv)
            cc = int(yv)
            for j in range(cells.shape[0]):
                r = rr + cells[j, 0] - 1
                c = cc + cells[j, 1] - 1
                if r >= 0 and r < s and c >= 0 and c < s:
                    img[r, c] += 1.0
    m = 0.0
    for r in range(s):
        for c in range(s):
            if img[r, c] > m:
                m = img[r, c]
    if m > 0.0:
        for r in range(s):
            for c in range(s):
                img[r, c] /= m


@kernel
def colorize_density(dens, hue_shift, sat, val, hsv):
    """HSV bytes of a density: ``H = floor(d * 255 + hue_shift) mod 256``, ``S = sat``,
    ``V = val`` where ``d > 0``; ``(0, 0, 0)`` elsewhere."""
    h, w = dens.shape
    for i in range(h):
        for j in range(w):
            x = dens[i, j]
            if x > 0.0:
                hsv[i, j, 0] = np.uint8(np.int64(math.floor(x * 255.0 + hue_shift)) % 256)
                hsv[i, j, 1] = sat
                hsv[i, j, 2] = val
            else:
                hsv[i, j, 0] = 0
                hsv[i, j, 1] = 0
                hsv[i, j, 2] = 0


@kernel
def _fnma1(a, b):
    """``1 - a*b`` for float32 ``a, b`` with one rounding to float32 (a fused
    multiply-add: the product is exact in float64).  GCC contracts OpenCV's
    ``v_sub(one, v_mul(s, h))`` into an FMA in its AVX2 build."""
    return np.float32(1.0 - np.float64(a) * np.float64(b))


@kernel
def _trunc_byte(x):
    """OpenCV's SIMD path: ``v_trunc`` of a non-negative float, packed to a byte."""
    f = math.floor(np.float64(x))
    return np.uint8(255.0 if f > 255.0 else f)


@kernel
def hsv_to_rgb(hsv, rgb):
    """``cv2.cvtColor(COLOR_HSV2RGB)`` on 8-bit images as x86-64 OpenCV computes it.

    H in 2-degree units (wraps at 180), S and V times 1/255, all in float32:
    sector and fraction of ``H * 6/180``; ``t1 = v (1 - s)``, ``t2 = v (1 - s f)``,
    ``t3 = v (1 - s (1 - f))`` with the inner ``1 - s x`` fused (see
    :func:`_fnma1`); the channel times 255 truncated (the vector path's
    ``v_trunc``; its scalar tail would round, but images of a multiple of 64
    pixels never reach it).  Equal to cv2 on all 2^24 byte triples
    (``tests/test_colorfractal.py``).  ``rgb`` may be ``hsv`` itself.
    """
    h, w = hsv.shape[0], hsv.shape[1]
    for i in range(h):
        for j in range(w):
            hh = np.float32(hsv[i, j, 0]) * F32_HSCALE
            s = np.float32(hsv[i, j, 1]) * F32_INV255
            v = np.float32(hsv[i, j, 2]) * F32_INV255
            if hh >= F32_SIX:  # the sector wraps: h mod 6, exact for h in [0, 8.5)
                hh = hh - F32_SIX
            sector = np.int64(math.floor(hh))
            hh = hh - np.float32(sector)
            t0 = v
            t1 = v * (F32_ONE - s)
            t2 = v * _fnma1(s, hh)
            t3 = v * _fnma1(s, F32_ONE - hh)
            b = t0
            g = t0
            r = t0
            for k in range(3):
                idx = SECTORS[sector, k]
                t = t0 if idx == 0 else (t1 if idx == 1 else (t2 if idx == 2 else t3))
                if k == 0:
                    b = t
                elif k == 1:
                    g = t
                else:
                    r = t
            rgb[i, j, 0] = _trunc_byte(r * F32_255)
            rgb[i, j, 1] = _trunc_byte(g * F32_255)
            rgb[i, j, 2] = _trunc_byte(b * F32_255)


@kernel
def diamond_square(decay, key, a):
    """Diamond-square noise on ``a`` (``(2^n + 1)^2`` float64), levels ``k = 1..n``.

    Corners are draws 0..3 of ``key`` (U(0, 1): [0, 0], [0, -1], [-1, 0],
    [-1, -1]); each later cell, in visiting order, adds ``U(-m, m)`` from the
    next draw, ``m = 0.5 exp(decay (1 - k))``.  Diamond step: the mean of the
    4 corners of each square; square step: the mean of the 4 neighbours,
    wrapping around the grid (toroidal).  No clipping.
    """
    s = a.shape[0]
    for i in range(s):
        for j in range(s):
            a[i, j] = 0.0
    a[0, 0] = uniform(key, 0)
    a[0, s - 1] = uniform(key, 1)
    a[s - 1, 0] = uniform(key, 2)
    a[s - 1, s - 1] = uniform(key, 3)
    cnt = 4
    n = 0
    while (1 << n) + 1 < s:
        n += 1
    for k in range(1, n + 1):
        m = 0.5 * math.exp(decay * (1 - k))
        ss = s // (1 << k)
        ni = 1 << k
        for i in range(0, ni, 2):
            ru = i * ss
            r = ru + ss
            rd = r + ss
            for j in range(0, ni, 2):
                cl = j * ss
                c = cl + ss
                cr = c + ss
                a[r, c] = 0.25 * (a[ru, cl] + a[ru, cr] + a[rd, cl] + a[rd, cr])
                a[r, c] += -m + 2.0 * m * uniform(key, cnt)
                cnt += 1
        ni = (1 << k) + 1
        for i in range(ni):
            r = i * ss
            ru = r - ss if r > 0 else s - ss - 1
            rd = r + ss if r < s - 1 else ss
            sj = 1 if i % 2 == 0 else 0
            for j in range(sj, ni, 2):
                c = j * ss
                cl = c - ss if c > 0 else s - ss - 1
                cr = c + ss if c < s - 1 else ss
                a[r, c] = 0.25 * (a[ru, c] + a[r, cl] + a[r, cr] + a[rd, c])
                a[r, c] += -m + 2.0 * m * uniform(key, cnt)
                cnt += 1


@kernel
def colorize_background(x, params, hsv):
    """HSV bytes of diamond-square noise ``x`` (the top-left ``hsv``-sized window).

    ``params = (hue_scale, hue_shift, sat_scale, sat_shift, val_scale, val_shift)``
    (already times 255): ``H = floor(x hs + h0) mod 256``, ``S = floor(clip(x ss + s0, 0, 255))``,
    ``V`` likewise.
    """
    h, w = hsv.shape[0], hsv.shape[1]
    for i in range(h):
        for j in range(w):
            v = x[i, j]
            hsv[i, j, 0] = np.uint8(np.int64(math.floor(v * params[0] + params[1])) % 256)
            sv = min(v * params[2] + params[3], 255.0)
            vv = min(v * params[4] + params[5], 255.0)
            hsv[i, j, 1] = np.uint8(math.floor(sv)) if sv > 0.0 else np.uint8(0)
            hsv[i, j, 2] = np.uint8(math.floor(vv)) if vv > 0.0 else np.uint8(0)


@kernel
def paste(fg, img, y, x):
    """Copy the non-black pixels of ``fg`` into ``img`` with ``fg[0, 0]`` at row ``y``, column ``x``
    (parts outside ``img`` are cut off)."""
    fh, fw = fg.shape[0], fg.shape[1]
    h, w = img.shape[0], img.shape[1]
    for i in range(fh):
        r = y + i
        if r < 0 or r >= h:
            continue
        for j in range(fw):
            c = x + j
            if c < 0 or c >= w:
                continue
            if fg[i, j, 0] != 0 or fg[i, j, 1] != 0 or fg[i, j, 2] != 0:
                img[r, c, 0] = fg[i, j, 0]
                img[r, c, 1] = fg[i, j, 1]
                img[r, c, 2] = fg[i, j, 2]


@kernel
def _reflect101(i, n):
    if i < 0:
        return -i
    if i >= n:
        return 2 * n - 2 - i
    return i


@kernel
def blur3(img, weights, tmp):
    """3x3 separable blur of ``img`` (``(H, W, C)`` uint8, in place) with ``weights`` (3 taps).

    Rows first into ``tmp`` (float64, same shape), then columns; borders
    reflect without repeating the edge (OpenCV's ``BORDER_REFLECT_101``);
    the result is rounded half up.
    """
    h, w, ch = img.shape
    w0 = weights[0]
    w1 = weights[1]
    w2 = weights[2]
    for i in range(h):
        for j in range(w):
            jl = _reflect101(j - 1, w)
            jr = _reflect101(j + 1, w)
            for c in range(ch):
                tmp[i, j, c] = w0 * img[i, jl, c] + w1 * img[i, j, c] + w2 * img[i, jr, c]
    for i in range(h):
        iu = _reflect101(i - 1, h)
        idn = _reflect101(i + 1, h)
        for j in range(w):
            for c in range(ch):
                v = math.floor(w0 * tmp[iu, j, c] + w1 * tmp[i, j, c] + w2 * tmp[idn, j, c] + 0.5)
                img[i, j, c] = np.uint8(min(max(v, 0.0), 255.0))


@kernel
def _bilinear_tap(d, scale, n):
    """Source pixels and weight of destination index ``d`` along one axis of
    :func:`resize_bilinear`: ``(i0, i1, frac)``, clamped at both ends."""
    f = (d + 0.5) * scale - 0.5
    i0 = int(math.floor(f))
    f -= i0
    if i0 < 0:
        i0 = 0
        f = 0.0
    if i0 >= n - 1:
        i0 = n - 1
        f = 0.0
    return i0, min(i0 + 1, n - 1), f


@kernel
def resize_bilinear(src, dst):
    """Bilinear resize of ``src`` (``(h, w, C)`` uint8) into ``dst`` (``(H, W, C)`` uint8).

    OpenCV's ``INTER_LINEAR`` geometry: pixel centres aligned
    (``sx = (dx + 0.5) w / W - 0.5``), coordinates before the first pixel
    clamp to it and the last pixel repeats; float64 weights, rounded half up.
    """
    h, w, ch = src.shape
    dh, dw = dst.shape[0], dst.shape[1]
    sy_scale = h / dh
    sx_scale = w / dw
    for di in range(dh):
        y0, y1, fy = _bilinear_tap(di, sy_scale, h)
        for dj in range(dw):
            x0, x1, fx = _bilinear_tap(dj, sx_scale, w)
            for c in range(ch):
                top = (1.0 - fx) * src[y0, x0, c] + fx * src[y0, x1, c]
                bot = (1.0 - fx) * src[y1, x0, c] + fx * src[y1, x1, c]
                v = math.floor((1.0 - fy) * top + fy * bot + 0.5)
                dst[di, dj, c] = np.uint8(min(max(v, 0.0), 255.0))
