"""Slow, obviously correct references for the Perlin kernels and the octave table.

Written the plain way from the definitions in docs/perlin.md: Python integers
for the splitmix64 stream and the shuffle, one function per lattice step, and
vectorised NumPy over the pixel grid for the noise itself (in the same order
of floating-point operations as the kernel, so the comparison can be exact).
Speed does not matter; nothing here imports the kernels.
"""

from __future__ import annotations

import math

import numpy as np

_M64 = (1 << 64) - 1

#: ``hash & 7`` -> gradient: the four diagonals, then the four axes.
GRADIENTS = [(1.0, 1.0), (-1.0, 1.0), (1.0, -1.0), (-1.0, -1.0),
             (1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0)]


def splitmix64(key: int, counter: int) -> int:
    """Draw ``counter`` of the splitmix64 stream keyed by ``key`` (Python ints)."""
    z = (int(key) + (counter + 1) * 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def permutation(key: int) -> np.ndarray:
    """Fisher-Yates from the top, ``j = (hi32(draw i) * (i + 1)) >> 32``; then doubled."""
    p = list(range(256))
    for i in range(255, 0, -1):
        j = ((splitmix64(key, i) >> 32) * (i + 1)) >> 32
        p[i], p[j] = p[j], p[i]
    return np.array(p + p, dtype=np.int64)


def offsets(key: int, octaves: int) -> np.ndarray:
    """Offset (x, y) of octave ``o``: draws ``256 + 2 o`` and ``257 + 2 o``, 53-bit uniforms times 256."""
    out = np.empty((octaves, 2))
    for o in range(octaves):
        for c in range(2):
            out[o, c] = float(splitmix64(key, 256 + 2 * o + c) >> 11) / 2.0**53 * 256.0
    return out


def taper(f, size):
    """1 up to half Nyquist (r = f / (size / 2) <= 1/2), 0 from Nyquist on, the quintic fade of 2 (1 - r) between."""
    r = 2.0 * f / size
    if r <= 0.5:
        return 1.0
    if r >= 1.0:
        return 0.0
    return fade(2.0 * (1.0 - r))


def octaves(frequency, n, persistence, lacunarity, size, tileable):
    """(freqs, amps, periods) by the documented rule, in plain Python."""
    freqs, weights = [], []
    for o in range(n):
        f = frequency * lacunarity**o
        if tileable:
            f = max(1.0, float(math.floor(f + 0.5)))
        w = persistence**o * (taper(f, size) if o > 0 else 1.0)
        if w == 0.0:
            break
        freqs.append(f)
        weights.append(w)
    amps = [w / sum(weights) for w in weights]
    periods = [int(f) for f in freqs] if tileable else [0] * len(freqs)
    return np.array(freqs), np.array(amps), np.array(periods, dtype=np.int64)


def fade(t):
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)


def noise(perm, u, v, period):
    """2-D improved Perlin noise at lattice positions ``(u, v)`` (arrays of the same shape)."""
    gx = np.array([g[0] for g in GRADIENTS])
    gy = np.array([g[1] for g in GRADIENTS])
    i = np.floor(u)
    j = np.floor(v)
    fx = u - i
    fy = v - j
    i = i.astype(np.int64)
    j = j.astype(np.int64)
    if period > 0:
        i0, i1 = i % period, (i + 1) % period
        j0, j1 = j % period, (j + 1) % period
    else:
        i0, i1, j0, j1 = i, i + 1, j, j + 1

    def corner(ci, cj, dx, dy):
        h = perm[perm[ci & 255] + (cj & 255)] & 7
        return gx[h] * dx + gy[h] * dy

    n00 = corner(i0, j0, fx, fy)
    n10 = corner(i1, j0, fx - 1.0, fy)
    n01 = corner(i0, j1, fx, fy - 1.0)
    n11 = corner(i1, j1, fx - 1.0, fy - 1.0)
    ux = fade(fx)
    uy = fade(fy)
    nx0 = n00 + ux * (n10 - n00)
    nx1 = n01 + ux * (n11 - n01)
    return nx0 + uy * (nx1 - nx0)


def field(key, freqs, amps, periods, size, height=None, width=None):
    """The octave sum over an ``height x width`` pixel grid (default ``size x size``)."""
    height = size if height is None else height
    width = size if width is None else width
    perm = permutation(key)
    offs = offsets(key, len(freqs))
    x = np.arange(width, dtype=np.float64)[None, :] + np.zeros((height, 1))
    y = np.arange(height, dtype=np.float64)[:, None] + np.zeros((1, width))
    out = np.zeros((height, width))
    for o in range(len(freqs)):
        step = freqs[o] / size
        u = (x + 0.5) * step + offs[o, 0]
        v = (y + 0.5) * step + offs[o, 1]
        out += amps[o] * noise(perm, u, v, int(periods[o]))
    return out


def gain(amps, sigma=math.sqrt(96835.0 / 1387386.0), z=2.5):
    """Byte gain: +-z standard deviations of the octave sum span the byte range."""
    return 0.5 / (z * sigma * math.sqrt(sum(a * a for a in amps)))


def image(values, g, lut, gray):
    """``round(255 * clip(0.5 + g v, 0, 1))``, then the palette (or one gray channel)."""
    level = np.floor(np.clip(0.5 + g * values, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return level[:, :, None] if gray else lut[level]
