"""Slow, obviously correct NumPy twins of fractaldb.families.colorfractal.kernels.

Written from the description (docs/color-fractals.md), not from the kernels:
vectorised where that is clearer, plain loops where the order matters.
"""

from __future__ import annotations

import math

import numpy as np

from fractaldb.kernels.random import splitmix64


def uniforms(key, start, n):
    return np.array([float(int(splitmix64(np.uint64(key), start + i)) >> 11) / 2.0**53 for i in range(n)])


def chaos_game(maps, cum, key, n):
    a, b, c, d, e, f = maps[0]
    fixed = np.linalg.solve(np.eye(2) - np.array([[a, b], [c, d]]), np.array([e, f]))
    x, y = fixed
    u = uniforms(key, 0, n)
    out = np.empty((n, 2))
    for i in range(n):
        hits = np.nonzero(u[i] < cum)[0]
        k = hits[0] if len(hits) else len(cum) - 1
        a, b, c, d, e, f = maps[k]
        x, y = a * x + b * y + e, c * x + d * y + f
        out[i] = x, y
    return out


def render_graded(pts, region, cells, s, rule="cells"):
    """The graded patch raster, point by point, as the original's ``_render_graded_patch``
    (catalys1/fractal-pretraining, ``fractal_learning/fractals/ifs.py``) behaves:

    * ``xscale = (s - 1) / xspan`` with ``xspan = x1 - x0``, or 1 when that is not
      positive (``yscale`` likewise);
    * each point's pixel is ``rr = int((x - x0) * xscale)``, ``cc = int((y - y0) * yscale)``:
      Python's ``int``, truncation toward zero, so -0.7 gives 0 and -1.3 gives -1;
    * the point itself is **not** checked: for each on cell ``(dr, dc)`` of the patch the
      pixel ``(rr + dr - 1, cc + dc - 1)`` gets one more count when it lies in the image
      -- so a point one pixel outside the window still paints the border cells its
      patch reaches;
    * the counts are divided by their maximum (when it is positive).

    ``rule="centre"`` is what fractaldb did before 0.3: a point counts only when its own
    pixel ``(rr, cc)`` lies in the image.  A point whose coordinates are not finite
    reaches no pixel (the original's ``int`` of them is far outside).
    """
    x0, y0, x1, y1 = region
    xspan = x1 - x0 if x1 - x0 > 0 else 1.0
    yspan = y1 - y0 if y1 - y0 > 0 else 1.0
    xscale, yscale = (s - 1) / xspan, (s - 1) / yspan
    img = np.zeros((s, s))
    for x, y in pts:
        xv, yv = (x - x0) * xscale, (y - y0) * yscale
        if not (math.isfinite(xv) and math.isfinite(yv)):
            continue
        rr, cc = int(xv), int(yv)
        if rule == "centre" and not (0 <= rr < s and 0 <= cc < s):
            continue
        for dr, dc in cells:
            r, c = rr + dr - 1, cc + dc - 1
            if 0 <= r < s and 0 <= c < s:
                img[r, c] += 1.0
    if img.max() > 0:
        img /= img.max()
    return img


def colorize_density(d, hue, sat, val):
    out = np.zeros(d.shape + (3,), dtype=np.uint8)
    on = d > 0
    out[on, 0] = (np.floor(d[on] * 255.0 + hue).astype(np.int64) % 256).astype(np.uint8)
    out[on, 1] = sat
    out[on, 2] = val
    return out


def hsv_to_rgb(hsv):
    """x86-64 OpenCV's 8-bit HSV->RGB, vectorised in float32 (its AVX2 path:
    ``1 - s*x`` fused, channels times 255 truncated)."""
    f32 = np.float32
    flat = hsv.reshape(-1, 3)
    h = flat[:, 0].astype(f32) * (f32(6) / f32(180))
    s = flat[:, 1].astype(f32) * (f32(1) / f32(255))
    v = flat[:, 2].astype(f32) * (f32(1) / f32(255))
    pre = np.trunc(h)
    frac = h - pre
    sector = (pre - np.trunc(pre * f32(1 / 6)) * f32(6)).astype(np.int64)
    one = np.ones_like(h)

    def fused(a, b):  # 1 - a*b rounded once (the product is exact in float64)
        return (1.0 - a.astype(np.float64) * b.astype(np.float64)).astype(f32)

    tab = np.stack([v, v * (one - s), v * fused(s, frac), v * fused(s, one - frac)], 1)
    sectors = np.array([[1, 3, 0], [1, 0, 2], [3, 0, 1], [0, 2, 1], [0, 1, 3], [2, 1, 0]])
    rows = np.arange(len(v))
    bgr = [tab[rows, sectors[sector, k]] for k in range(3)]
    rgb = np.stack([bgr[2], bgr[1], bgr[0]], 1) * f32(255)
    return np.clip(np.trunc(rgb), 0, 255).astype(np.uint8).reshape(hsv.shape)


def diamond_square(decay, key, s):
    a = np.zeros((s, s))
    draws = iter(uniforms(key, 0, s * s + 8))
    a[0, 0], a[0, -1], a[-1, 0], a[-1, -1] = next(draws), next(draws), next(draws), next(draws)
    n = int(round(math.log2(s - 1)))
    for k in range(1, n + 1):
        m = 0.5 * math.exp(decay * (1 - k))
        step = (s - 1) >> k
        for r in range(step, s - 1, 2 * step):  # diamond: centres of the squares, row by row
            for c in range(step, s - 1, 2 * step):
                a[r, c] = 0.25 * (a[r - step, c - step] + a[r - step, c + step] + a[r + step, c - step]
                                  + a[r + step, c + step])
                a[r, c] += -m + 2.0 * m * next(draws)
        for i in range(2**k + 1):  # square: edge midpoints, toroidal neighbours (edge column/row shared)
            r = i * step
            for c in range(step if i % 2 == 0 else 0, s, 2 * step):
                up = a[r - step, c] if r > 0 else a[s - 1 - step, c]
                down = a[r + step, c] if r < s - 1 else a[step, c]
                left = a[r, c - step] if c > 0 else a[r, s - 1 - step]
                right = a[r, c + step] if c < s - 1 else a[r, step]
                a[r, c] = 0.25 * (up + left + right + down)
                a[r, c] += -m + 2.0 * m * next(draws)
    return a


def colorize_background(x, p):
    out = np.empty(x.shape + (3,), dtype=np.uint8)
    out[..., 0] = (np.floor(x * p[0] + p[1]).astype(np.int64) % 256).astype(np.uint8)
    out[..., 1] = np.floor(np.clip(x * p[2] + p[3], 0, 255)).astype(np.uint8)
    out[..., 2] = np.floor(np.clip(x * p[4] + p[5], 0, 255)).astype(np.uint8)
    return out


def paste(fg, img, y, x):
    out = img.copy()
    h, w = img.shape[:2]
    for i in range(fg.shape[0]):
        for j in range(fg.shape[1]):
            if 0 <= y + i < h and 0 <= x + j < w and fg[i, j].any():
                out[y + i, x + j] = fg[i, j]
    return out


def blur3(img, weights):
    f = img.astype(np.float64)
    pad = np.pad(f, ((0, 0), (1, 1), (0, 0)), mode="reflect")  # numpy 'reflect' = OpenCV REFLECT_101
    rows = weights[0] * pad[:, :-2] + weights[1] * pad[:, 1:-1] + weights[2] * pad[:, 2:]
    pad = np.pad(rows, ((1, 1), (0, 0), (0, 0)), mode="reflect")
    cols = weights[0] * pad[:-2] + weights[1] * pad[1:-1] + weights[2] * pad[2:]
    return np.clip(np.floor(cols + 0.5), 0, 255).astype(np.uint8)


def resize_bilinear(src, out_h, out_w):
    h, w = src.shape[:2]

    def axis(n_out, n_in):
        f = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        i0 = np.floor(f).astype(np.int64)
        t = f - i0
        t[i0 < 0] = 0.0
        i0[i0 < 0] = 0
        last = i0 >= n_in - 1
        t[last] = 0.0
        i0[last] = n_in - 1
        return i0, np.minimum(i0 + 1, n_in - 1), t

    y0, y1, ty = axis(out_h, h)
    x0, x1, tx = axis(out_w, w)
    s = src.astype(np.float64)
    tx = tx[None, :, None]
    top = (1.0 - tx) * s[y0][:, x0] + tx * s[y0][:, x1]
    bot = (1.0 - tx) * s[y1][:, x0] + tx * s[y1][:, x1]
    ty = ty[:, None, None]
    return np.clip(np.floor((1.0 - ty) * top + ty * bot + 0.5), 0, 255).astype(np.uint8)


def sigma_factor_rows(rng, maps=(2, 4)):
    """The sampler of VARIANTS.md section 4, loop by loop."""
    n = int(rng.integers(maps[0], maps[1] + 1))
    signs = [[1.0 if rng.random() > 0.5 else -1.0 for _ in range(2)] for _ in range(2 * n)]
    angles = [rng.uniform(-math.pi, math.pi) for _ in range(2 * n)]
    sigma = rng.uniform((5 + n) / 2, (6 + n) / 2)
    p, q = sigma, sigma - 3 * n + 3
    svs = []
    for _ in range(n - 1):
        s1 = rng.uniform(max(0, q / 3), min(1, p))
        q, p = q - s1, p - s1
        s2 = rng.uniform(max(0, q / 2), min(s1, p / 2))
        q, p = q - 2 * s2 + 3, p - 2 * s2
        svs.append((s1, s2))
    s2 = rng.uniform(max(0, (p - 1) / 2), p / 3)
    svs.append((p - 2 * s2, s2))
    trans = [(rng.uniform(-1, 1), rng.uniform(-1, 1)) for _ in range(n)]

    def ortho(k):
        t = angles[k]
        rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
        return rot @ np.diag(signs[k])

    rows = []
    for i in range(n):
        a = ortho(i) @ np.diag(svs[i]) @ ortho(n + i)
        rows.append([a[0, 0], a[0, 1], a[1, 0], a[1, 1], *trans[i], abs(np.linalg.det(a))])
    rows = np.array(rows)
    rows[:, 6] /= rows[:, 6].sum()
    return rows, sigma, np.array(svs)
