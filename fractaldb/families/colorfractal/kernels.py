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


@kernel
def uniform(key, counter):
    """Draw ``counter`` of ``key`` as a double in [0, 1) (top 53 bits)."""
    return np.float64(splitmix64(key, counter) >> np.uint64(11)) * _INV53


@kernel
def chaos_game(maps, cum, key, xs, ys, region):
    """Fill ``xs, ys`` with chaos-game points of ``maps`` (``(N, 6)`` rows a, b, c, d, e, f)
    and ``region = [min x, min y, max x, max y]`` with their bounds.

    Starts at the fixed point of map 0, ``(I - A0)^-1 t0`` (a point of the
    attractor); step ``i`` draws ``u = uniform(key, i)``, picks the first map
    ``j`` with ``u < cum[j]`` (strict; the last map if none), applies it and
    stores the new point (the start point itself is not stored).  The bounds
    are those of the finite points (zeros if none).

    Speed: the map is counted, not searched -- ``j`` = the number of ``cum[0..N-2]``
    that are ``<= u``, the same map for a non-decreasing ``cum`` -- so no branch
    depends on the random draw (a mispredicted branch per point cost more than the
    point itself), and the bounds are kept in the same pass.
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
    x0 = np.inf
    y0 = np.inf
    x1 = -np.inf
    y1 = -np.inf
    last = n - 1
    for i in range(xs.shape[0]):
        u = uniform(key, i)
        k = 0
        for j in range(last):
            k += cum[j] <= u
        xt = x
        x = maps[k, 0] * xt + maps[k, 1] * y + maps[k, 4]
        y = maps[k, 2] * xt + maps[k, 3] * y + maps[k, 5]
        xs[i] = x
        ys[i] = y
        if x - x == 0.0 and y - y == 0.0:  # finite
            x0 = min(x0, x)
            x1 = max(x1, x)
            y0 = min(y0, y)
            y1 = max(y1, y)
    if x0 > x1:
        x0 = y0 = x1 = y1 = 0.0
    region[0] = x0
    region[1] = y0
    region[2] = x1
    region[3] = y1


#: ``render_graded``'s bounds rules: ``CELLS`` (the original's: each patch cell is
#: checked alone, so a point just outside the window still paints the border cells
#: its patch reaches) and ``CENTRE`` (fractaldb before 0.3: a point is drawn only when
#: its own pixel is inside the window).
CELLS, CENTRE = 0, 1


@kernel
def render_graded(xs, ys, region, cells, rule, hits, img):
    """Graded density of the points in ``region`` into ``img`` (``(S, S)`` float64, max 1).

    Row from x, column from y (the original's transposed layout); a point
    lands at ``rr = int((x - x0) * (S - 1) / (x1 - x0))`` (truncation toward
    zero; a span that is not positive counts as 1), ``cc`` likewise, and adds 1
    at each ``cells`` offset ``(rr + dr - 1, cc + dc - 1)`` (a 3x3 patch;
    ``[[1, 1]]`` is the point alone).  ``rule`` :data:`CELLS`: every cell
    inside the image counts, whatever the point's own pixel; :data:`CENTRE`:
    only points whose own pixel ``(rr, cc)`` is inside count.  Counts are
    divided by their maximum.

    ``hits`` is int32 scratch of at least ``(S + 2)^2 + 1``.  Two passes give the
    same integers as painting each patch: the points are counted at their own
    pixel (``rr, cc`` in -1..S), without a branch on the point (a point that
    reaches no pixel counts in the last, unused slot), then each pixel sums the
    counts of the pixels whose patch covers it; dividing by the largest sum is
    what adding 1.0 per cell and dividing gives.
    """
    s = img.shape[0]
    w = s + 2
    trash = w * w
    for i in range(w * w + 1):
        hits[i] = 0
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
    # int() truncates toward zero: a point at (-1, 0) lands on pixel 0, as in the
    # original.  CELLS: rr in -1..S still reaches the image (xv in (-2, S + 1));
    # CENTRE: rr in 0..S-1 (xv in (-1, S)).
    lo = -2.0 if rule == CELLS else -1.0
    hi = s + 1.0 if rule == CELLS else float(s)
    for i in range(xs.shape[0]):
        xv = (xs[i] - x0) * xscale
        yv = (ys[i] - y0) * yscale
        inside = (xv > lo) & (xv < hi) & (yv > lo) & (yv < hi)  # False for NaN
        k = (np.int64(min(max(xv, lo), hi)) + 1) * w + np.int64(min(max(yv, lo), hi)) + 1
        hits[k if inside else trash] += 1
    top = 0.0
    for r in range(s):
        for c in range(s):
            img[r, c] = 0.0
        for j in range(cells.shape[0]):
            # pixel (r, c) gets the points at (r - dr + 1, c - dc + 1)
            base = (r - cells[j, 0] + 2) * w - cells[j, 1] + 2
            for c in range(s):
                img[r, c] += hits[base + c]
        for c in range(s):
            top = max(top, img[r, c])
    if top > 0.0:
        for r in range(s):
            for c in range(s):
                img[r, c] /= top


@kernel
def colorize_rgb(dens, hue_shift, lut, rgb):
    """RGB bytes of a density coloured by it: ``lut[floor(d * 255 + hue_shift) mod 256]``
    where ``d > 0``, black elsewhere.  ``lut`` is ``(256, 3)``: the RGB of each hue at the
    image's one saturation and value (:func:`hue_lut`), so the HSV->RGB conversion runs
    256 times per image instead of once per pixel, with the same bytes."""
    h, w = dens.shape
    for i in range(h):
        for j in range(w):
            x = dens[i, j]
            if x > 0.0:
                k = np.int64(math.floor(x * 255.0 + hue_shift)) & 255  # mod 256
                rgb[i, j, 0] = lut[k, 0]
                rgb[i, j, 1] = lut[k, 1]
                rgb[i, j, 2] = lut[k, 2]
            else:
                rgb[i, j, 0] = 0
                rgb[i, j, 1] = 0
                rgb[i, j, 2] = 0


@kernel
def paste_density(dens, hue_shift, lut, img):
    """:func:`colorize_rgb` then :func:`paste` at ``(0, 0)``, in one pass: where ``d > 0``
    and the colour is not black, ``img`` takes the colour; elsewhere it is left as it is."""
    h, w = dens.shape
    for i in range(h):
        for j in range(w):
            x = dens[i, j]
            if x > 0.0:
                k = np.int64(math.floor(x * 255.0 + hue_shift)) & 255
                r = lut[k, 0]
                g = lut[k, 1]
                b = lut[k, 2]
                if r != 0 or g != 0 or b != 0:
                    img[i, j, 0] = r
                    img[i, j, 1] = g
                    img[i, j, 2] = b


@kernel
def colorize_density(dens, hue_shift, sat, val, hsv):
    """HSV bytes of a density: ``H = floor(d * 255 + hue_shift) mod 256``, ``S = sat``,
    ``V = val`` where ``d > 0``; ``(0, 0, 0)`` elsewhere (the step :func:`colorize_rgb`
    fuses with the conversion)."""
    h, w = dens.shape
    for i in range(h):
        for j in range(w):
            x = dens[i, j]
            if x > 0.0:
                hsv[i, j, 0] = np.uint8(np.int64(math.floor(x * 255.0 + hue_shift)) & 255)
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
    """OpenCV's SIMD path: ``v_trunc`` of ``x * 255`` (``x`` a non-negative float32: the
    truncation is the floor) packed to a byte."""
    y = x * F32_255
    return np.uint8(np.int32(y)) if y < F32_255 else np.uint8(255)


@kernel
def hsv_pixel(h8, s8, v8):
    """``(r, g, b)`` bytes of one 8-bit HSV pixel as x86-64 OpenCV's ``COLOR_HSV2RGB`` computes it.

    H in 2-degree units (wraps at 180), S and V times 1/255, all in float32:
    sector and fraction of ``H * 6/180``; ``t1 = v (1 - s)``, ``t2 = v (1 - s f)``,
    ``t3 = v (1 - s (1 - f))`` with the inner ``1 - s x`` fused (see
    :func:`_fnma1`); the channel times 255 truncated (the vector path's
    ``v_trunc``; its scalar tail would round, but images of a multiple of 64
    pixels never reach it).  OpenCV's sector table, ``(b, g, r)`` per sector:
    ``(t1, t3, v), (t1, v, t2), (t3, v, t1), (v, t2, t1), (v, t1, t3), (t2, t1, v)``.
    Every value is non-negative, so truncating to an integer is the floor.
    """
    hh = np.float32(h8) * F32_HSCALE
    s = np.float32(s8) * F32_INV255
    v = np.float32(v8) * F32_INV255
    if hh >= F32_SIX:  # the sector wraps: h mod 6, exact for h in [0, 8.5)
        hh = hh - F32_SIX
    sector = np.int32(hh)
    hh = hh - np.float32(sector)
    t1 = v * (F32_ONE - s)
    t2 = v * _fnma1(s, hh)
    t3 = v * _fnma1(s, F32_ONE - hh)
    if sector == 0:
        r, g, b = v, t3, t1
    elif sector == 1:
        r, g, b = t2, v, t1
    elif sector == 2:
        r, g, b = t1, v, t3
    elif sector == 3:
        r, g, b = t1, t2, v
    elif sector == 4:
        r, g, b = t3, t1, v
    else:
        r, g, b = v, t1, t2
    return _trunc_byte(r), _trunc_byte(g), _trunc_byte(b)


@kernel
def hsv_to_rgb(hsv, rgb):
    """``cv2.cvtColor(COLOR_HSV2RGB)`` on 8-bit images as x86-64 OpenCV computes it
    (:func:`hsv_pixel` per pixel).  Equal to cv2 on all 2^24 byte triples
    (``tests/test_colorfractal.py``).  ``rgb`` may be ``hsv`` itself."""
    h, w = hsv.shape[0], hsv.shape[1]
    for i in range(h):
        for j in range(w):
            r, g, b = hsv_pixel(hsv[i, j, 0], hsv[i, j, 1], hsv[i, j, 2])
            rgb[i, j, 0] = r
            rgb[i, j, 1] = g
            rgb[i, j, 2] = b


@kernel
def hue_lut(sat, val, lut):
    """``lut[h]`` = the RGB bytes of HSV ``(h, sat, val)`` for h = 0..255 (:func:`hsv_pixel`)."""
    for k in range(256):
        r, g, b = hsv_pixel(np.uint8(k), sat, val)
        lut[k, 0] = r
        lut[k, 1] = g
        lut[k, 2] = b


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
def _background_hsv(v, params):
    """HSV bytes of one diamond-square value (see :func:`colorize_background`)."""
    hh = np.uint8(np.int64(math.floor(v * params[0] + params[1])) & 255)  # mod 256, also below 0
    sv = min(v * params[2] + params[3], 255.0)
    vv = min(v * params[4] + params[5], 255.0)
    ss = np.uint8(math.floor(sv)) if sv > 0.0 else np.uint8(0)
    va = np.uint8(math.floor(vv)) if vv > 0.0 else np.uint8(0)
    return hh, ss, va


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
            hh, ss, vv = _background_hsv(x[i, j], params)
            hsv[i, j, 0] = hh
            hsv[i, j, 1] = ss
            hsv[i, j, 2] = vv


@kernel
def background_rgb(x, params, rgb):
    """:func:`colorize_background` then :func:`hsv_to_rgb`, pixel by pixel (no HSV image)."""
    h, w = rgb.shape[0], rgb.shape[1]
    for i in range(h):
        for j in range(w):
            hh, ss, vv = _background_hsv(x[i, j], params)
            r, g, b = hsv_pixel(hh, ss, vv)
            rgb[i, j, 0] = r
            rgb[i, j, 1] = g
            rgb[i, j, 2] = b


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
def blur3(img, weights, tmp):
    """3x3 separable blur of ``img`` (``(H, W, C)`` uint8, H, W >= 2, in place) with
    ``weights`` (3 taps).

    Rows first into ``tmp`` (float64, same shape), ``w0 left + w1 centre + w2 right``,
    then columns, ``w0 up + w1 centre + w2 down``; borders reflect without repeating
    the edge (OpenCV's ``BORDER_REFLECT_101``: the neighbour beyond the edge is the
    second pixel); the result is rounded half up.  Each row is a flat run of
    ``W * C`` numbers, so the interior needs no border test.
    """
    h, w, ch = img.shape
    w0 = weights[0]
    w1 = weights[1]
    w2 = weights[2]
    n = w * ch
    src = img.reshape(h, n)
    t = tmp.reshape(h, n)
    for i in range(h):
        a = src[i]
        o = t[i]
        for k in range(ch):
            o[k] = w0 * a[ch + k] + w1 * a[k] + w2 * a[ch + k]
        for k in range(ch, n - ch):
            o[k] = w0 * a[k - ch] + w1 * a[k] + w2 * a[k + ch]
        for k in range(n - ch, n):
            o[k] = w0 * a[k - ch] + w1 * a[k] + w2 * a[k - ch]
    for i in range(h):
        up = t[1 if i == 0 else i - 1]
        mid = t[i]
        down = t[h - 2 if i == h - 1 else i + 1]
        o = src[i]
        for k in range(n):
            v = math.floor(w0 * up[k] + w1 * mid[k] + w2 * down[k] + 0.5)
            o[k] = np.uint8(min(max(v, 0.0), 255.0))


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
    Four black sources give black without the arithmetic (objects are mostly black).
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
                p = src[y0, x0, c]
                q = src[y0, x1, c]
                r = src[y1, x0, c]
                t = src[y1, x1, c]
                if (p | q | r | t) == 0:
                    dst[di, dj, c] = 0
                    continue
                top = (1.0 - fx) * p + fx * q
                bot = (1.0 - fx) * r + fx * t
                v = math.floor((1.0 - fy) * top + fy * bot + 0.5)
                dst[di, dj, c] = np.uint8(min(max(v, 0.0), 255.0))
