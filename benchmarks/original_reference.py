"""The original FractalDB scripts' approach, as the same-run speed reference.

Mirrors the structure of the original renderer and search (MIT, AIST 2020)
as SPEC section 1 describes it, so the measured speed is what users get
today: maps as dicts of Python floats, a per-point Python loop over
``np.random.random`` output appending to lists, NumPy rescale, and for patch
mode a ``'{:09b}'`` mask string, a 3x3x3 array and one PIL ``paste`` per
point; RGB PNG per flip.  Slow by design (about 1 image/s).
"""

from __future__ import annotations

import io
import random

import numpy as np
from PIL import Image


class _IFS:
    def __init__(self):
        self.function, self.select_function, self.xs, self.ys = [], [], [0.0], [0.0]
        self.temp_proba = 0.0

    def set_param(self, a, b, c, d, e, f, proba):
        self.function.append({"a": a, "b": b, "c": c, "d": d, "e": e, "f": f, "proba": proba})
        self.temp_proba += proba
        self.select_function.append(self.temp_proba)

    def calculate(self, rand):
        select, function = self.select_function, self.function
        prev_x, prev_y = 0.0, 0.0
        next_x, next_y = prev_x, prev_y
        for i in range(len(rand) - 1):
            for j in range(len(select)):
                if rand[i] <= select[j]:
                    next_x = prev_x * function[j]["a"] + prev_y * function[j]["b"] + function[j]["e"]
                    next_y = prev_x * function[j]["c"] + prev_y * function[j]["d"] + function[j]["f"]
                    break
            self.xs.append(next_x), self.ys.append(next_y)
            prev_x, prev_y = next_x, next_y

    def rescale(self, size, pad):
        xs, ys = np.array(self.xs), np.array(self.ys)
        if np.any(np.isnan(xs)) or np.any(np.isnan(ys)):
            keep = ~(np.isnan(xs) | np.isnan(ys))
            xs, ys = xs[keep], ys[keep]
        if np.min(xs) < 0.0:
            xs -= np.min(xs)
        if np.min(ys) < 0.0:
            ys -= np.min(ys)
        with np.errstate(all="ignore"):
            self.px = np.uint16(xs / (np.max(xs) - np.min(xs)) * float(size - 2 * pad) + float(pad))
            self.py = np.uint16(ys / (np.max(ys) - np.min(ys)) * float(size - 2 * pad) + float(pad))


def _system(rows):
    ifs = _IFS()
    for r in rows:
        ifs.set_param(*(float(v) for v in r))
    return ifs


def render_patch_images(maps, probs, size=362, points=200_000, pad=6, rng=None):
    """One patch draw in 4 flips, encoded as RGB PNG, like the original."""
    rng = rng or random.Random(0)
    ifs = _system(np.concatenate([maps, np.asarray(probs)[:, None]], axis=1))
    np.random.seed(100)
    with np.errstate(all="ignore"):
        ifs.calculate(np.random.random(points))
    ifs.rescale(size, pad)
    image = Image.new("RGB", (size, size))
    color = [127, 127, 127]
    for i in range(len(ifs.px)):
        mask = "{:09b}".format(rng.randrange(1, 512))
        patch_color = np.array(color)
        patch = np.zeros((3, 3, 3), np.uint8)
        for r in range(3):
            for c in range(3):
                patch[r, c, :] = patch_color * int(mask[r * 3 + c])
        image.paste(Image.fromarray(patch), (int(ifs.px[i]) + 1, int(ifs.py[i]) + 1))
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
    ifs = _system(rows)
    with np.errstate(all="ignore"):
        ifs.calculate(rs.random(points))
    ifs.rescale(size, pad)
    img = np.zeros((size, size, 3), np.uint8)
    for i in range(len(ifs.px)):
        if ifs.px[i] < size and ifs.py[i] < size:
            img[ifs.py[i], ifs.px[i], :] = 127
    return np.count_nonzero(img[:, :, 0]) / float(size * size)
