"""Slow, obviously correct references for the contour machinery (FDSL.md §1), in plain
Python: the noise law step by step with float32 rounding done by NumPy scalars, and the
orbit recurrence drawn with Pillow's own ``ImageDraw.line``."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from fractaldb.contours.noise import PERM

f32 = np.float32


def pnoise1_slow(u: float, fixed: bool = False) -> float:
    """Steps 1-5 of FDSL.md §1.2, one float32 operation at a time."""
    x = f32(u)
    fl = f32(math.floor(float(x)))
    n = int(fl)
    i = int(math.fmod(n, 1024))  # C's remainder (sign of the dividend)
    ii = int(math.fmod(i + 1, 1024))
    i &= 255
    ii &= 255
    t = f32(x - fl)

    def grad(h, d):
        g = f32((h & 7) + 1)
        if h & 8:
            g = -g if fixed else f32(-1)
        return f32(g * d)

    fade = f32(f32(f32(t * t) * t) * f32(f32(t * f32(f32(t * f32(6)) - f32(15))) + f32(10)))
    a = grad(int(PERM[i]), t)
    b = grad(int(PERM[ii]), f32(t - f32(1)))
    return float(f32(f32(a + f32(fade * f32(b - a))) * f32(0.4)))


def orbits_slow(P, grays, cx, cy, r0, ox, oy, c, lam, alpha, n1, n2, wave, centre_first, size, background,
                image=None):
    """One instance drawn as the originals do: Python floats, Pillow lines on an ``L`` image."""
    V = P.shape[2]
    angle = (math.pi * 2) / V
    im = image if image is not None else Image.new("L", (size, size), background)
    draw = ImageDraw.Draw(im)
    xs = [math.cos(angle * v) * r0 * ox + (cx if centre_first else 0) for v in range(V)]
    ys = [math.sin(angle * v) * r0 * oy + (cy if centre_first else 0) for v in range(V)]
    for k in range(len(grays)):
        g = min(int(grays[k]), 255)
        for axis, pts, trig in ((0, xs, math.cos), (1, ys, math.sin)):
            for v in range(V):
                n = float(P[k, axis, v]) * c * alpha - c
                if wave:
                    n = n - 0.5 * math.sin(angle * v * n1) - 0.5 * math.sin(angle * v * n2)
                pts[v] -= trig(angle * v) * (n - lam)
        for v in range(V):
            w = (v + 1) % V
            ex, ey = (0, 0) if centre_first else (cx, cy)
            draw.line((xs[v] + ex, ys[v] + ey, xs[w] + ex, ys[w] + ey), fill=g, width=1)
    return np.asarray(im)
