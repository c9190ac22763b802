"""The original FractalDB renderer's approach, re-implemented as the same-run reference.

Per-point Python loops for the chaos game, ``'{:09b}'.format`` patch masks and
one PIL ``paste`` per point, RGB PNG per flip: what users run today.  Only
used to measure the speed ratio; it is slow by design (about 1 image/s).
"""

from __future__ import annotations

import io
import random

import numpy as np
from PIL import Image


def chaos_game(maps, probs, iteration, rand):
    cum, s = [], 0.0
    for p in probs:
        s += p
        cum.append(s)
    xs, ys = [0.0], [0.0]
    x = y = 0.0
    nx, ny = x, y
    for i in range(iteration - 1):
        for j in range(len(cum)):
            if rand[i] <= cum[j]:
                a, b, c, d, e, f = maps[j]
                nx = x * a + y * b + e
                ny = x * c + y * d + f
                break
        xs.append(nx)
        ys.append(ny)
        x, y = nx, ny
    return np.array(xs), np.array(ys)


def rescale(xs, ys, size, pad):
    if xs.min() < 0.0:
        xs = xs - xs.min()
    if ys.min() < 0.0:
        ys = ys - ys.min()
    px = np.uint16(xs / (xs.max() - xs.min()) * float(size - 2 * pad) + float(pad))
    py = np.uint16(ys / (ys.max() - ys.min()) * float(size - 2 * pad) + float(pad))
    return px, py


def render_patch_images(maps, probs, size=362, points=200_000, pad=6, rng=None):
    """One patch draw in 4 flips, encoded as RGB PNG, like the original."""
    rng = rng or random.Random(0)
    rand = np.random.RandomState(100).random_sample(points)
    xs, ys = chaos_game(maps, probs, points, rand)
    px, py = rescale(xs, ys, size, pad)
    image = Image.new("RGB", (size, size))
    for i in range(len(px)):
        mask = "{:09b}".format(rng.randrange(1, 512))
        patch = np.zeros((3, 3, 3), np.uint8)
        for r in range(3):
            for c in range(3):
                patch[r, c, :] = np.array([127, 127, 127]) * int(mask[r * 3 + c])
        image.paste(Image.fromarray(patch), (int(px[i]) + 1, int(py[i]) + 1))
    image = image.transpose(Image.FLIP_TOP_BOTTOM)
    out = []
    for t in range(4):
        im = image
        if t in (1, 3):
            im = im.transpose(Image.FLIP_TOP_BOTTOM)
        if t in (2, 3):
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def search_candidate(rs, points=100_000, size=512, pad=6):
    """One candidate of the original search loop (returns the fill rate)."""
    n = rs.randint(2, 8)
    rows = np.zeros((n, 7))
    total = 0.0
    for i in range(n):
        a, b, c, d, e, f = rs.uniform(-1.0, 1.0, 6)
        p = abs(a * d - b * c)
        total += p
        rows[i] = a, b, c, d, e, f, p
    rows[:, 6] /= total
    rand = rs.random(points)
    xs, ys = chaos_game(rows[:, :6], rows[:, 6], points, rand)
    if np.isnan(xs).any() or np.isnan(ys).any():
        return 0.0
    px, py = rescale(xs, ys, size, pad)
    img = np.zeros((size, size, 3), np.uint8)
    for i in range(len(px)):
        img[py[i], px[i], :] = 127
    return np.count_nonzero(img[:, :, 0]) / float(size * size)
