"""The "Perlin noise" of the contour generators: ``noise.pnoise1(u)`` with the library's
defaults (octaves 1, repeat 1024, base 0), bit for bit, in float32 (FDSL.md §1.2).

``pnoise1(u, fixed)`` (a kernel) follows the C code's steps:

1. ``x = float32(u)``;
2. ``i = (int)floor(x) % 1024`` (C remainder), ``ii = (i + 1) % 1024``, both ``& 255``;
   ``t = x - floor(x)``;
3. fade ``f = t^3 (t (6t - 15) + 10)``;
4. gradient ``G(h) = (h & 7) + 1``, but ``-1`` when bit 3 of ``h`` is set (the library's
   bug; ``fixed=True`` gives ``-((h & 7) + 1)``, an option of modern mode only);
5. ``P = (a + f (b - a)) * 0.4`` with ``a = G(PERM[i]) t``, ``b = G(PERM[ii]) (t - 1)``,

every operation rounded to float32; the result is returned as a float64 (as the
binding does).  The drawn values are i.i.d. (each ``u`` is a fresh uniform): std 0.3285,
range [-0.952, 0.952].
"""

from __future__ import annotations

import numpy as np

from .._jit import kernel

__all__ = ["PERM", "pnoise1", "fill_pnoise1", "fmul", "fadd", "ffloor"]

#: Ken Perlin's permutation of 0..255 (the ``noise`` package's ``PERM``, first half).
PERM = np.array([
    151, 160, 137, 91, 90, 15, 131, 13, 201, 95, 96, 53, 194, 233, 7, 225, 140, 36, 103, 30, 69, 142, 8, 99, 37,
    240, 21, 10, 23, 190, 6, 148, 247, 120, 234, 75, 0, 26, 197, 62, 94, 252, 219, 203, 117, 35, 11, 32, 57, 177,
    33, 88, 237, 149, 56, 87, 174, 20, 125, 136, 171, 168, 68, 175, 74, 165, 71, 134, 139, 48, 27, 166, 77, 146,
    158, 231, 83, 111, 229, 122, 60, 211, 133, 230, 220, 105, 92, 41, 55, 46, 245, 40, 244, 102, 143, 54, 65, 25,
    63, 161, 1, 216, 80, 73, 209, 76, 132, 187, 208, 89, 18, 169, 200, 196, 135, 130, 116, 188, 159, 86, 164, 100,
    109, 198, 173, 186, 3, 64, 52, 217, 226, 250, 124, 123, 5, 202, 38, 147, 118, 126, 255, 82, 85, 212, 207, 206,
    59, 227, 47, 16, 58, 17, 182, 189, 28, 42, 223, 183, 170, 213, 119, 248, 152, 2, 44, 154, 163, 70, 221, 153,
    101, 155, 167, 43, 172, 9, 129, 22, 39, 253, 19, 98, 108, 110, 79, 113, 224, 232, 178, 185, 112, 104, 218, 246,
    97, 228, 251, 34, 242, 193, 238, 210, 144, 12, 191, 179, 162, 241, 81, 51, 145, 235, 249, 14, 239, 107, 49,
    192, 214, 31, 181, 199, 106, 157, 184, 84, 204, 176, 115, 121, 50, 45, 127, 4, 150, 254, 138, 236, 205, 93,
    222, 114, 67, 29, 24, 72, 243, 141, 128, 195, 78, 66, 215, 61, 156, 180], dtype=np.int32)
PERM.setflags(write=False)

_F6 = np.float32(6.0)
_F15 = np.float32(15.0)
_F10 = np.float32(10.0)
_F1 = np.float32(1.0)
_F04 = np.float32(0.4)


@kernel
def _crem(n):
    """C's ``n % 1024`` (truncating: negative for negative ``n``)."""
    return n % 1024 if n >= 0 else -((-n) % 1024)


@kernel
def fmul(a, b):
    """``a * b`` rounded to float32 once (the GPU twin never fuses it into an FMA)."""
    return np.float32(a * b)


@kernel
def fadd(a, b):
    """``a + b`` rounded to float32 once."""
    return np.float32(a + b)


@kernel
def ffloor(x):
    """``floorf``: a float32's floor as a float32 (exact)."""
    return np.float32(np.floor(x))


@kernel
def _grad(h, t, fixed):
    g = np.float32((h & 7) + 1)
    if h & 8:
        g = -g if fixed else np.float32(-1.0)
    return fmul(g, t)


@kernel
def pnoise1(u, fixed):
    """``noise.pnoise1(u)`` as a float64 (``fixed``: the corrected gradient, not the library's)."""
    x = np.float32(u)
    fl = ffloor(x)
    i = _crem(np.int64(fl))
    ii = _crem(i + 1)
    i &= 255
    ii &= 255
    t = fadd(x, -fl)
    f = fmul(fmul(fmul(t, t), t), fadd(fmul(t, fadd(fmul(t, _F6), -_F15)), _F10))
    a = _grad(PERM[i], t, fixed)
    b = _grad(PERM[ii], fadd(t, -_F1), fixed)
    return np.float64(fmul(fadd(a, fmul(f, fadd(b, -a))), _F04))


@kernel
def fill_pnoise1(us, fixed, out):
    """``out[i] = pnoise1(us[i], fixed)``."""
    for i in range(us.shape[0]):
        out[i] = pnoise1(us[i], fixed)
