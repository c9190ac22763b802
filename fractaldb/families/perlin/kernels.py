"""2-D improved Perlin noise, its octave sum and the colour mapping (CPU, numba).

The noise is Perlin's "improved noise" (SIGGRAPH 2002) reduced to two
dimensions:

* lattice corner ``(i, j)`` gets the hash ``perm[perm[i & 255] + (j & 255)]``
  from a 256-entry permutation stored twice (512 entries), so the sum never
  needs a second ``& 255``;
* the hash picks one of 8 gradients by ``hash & 7``: the four diagonals
  ``(±1, ±1)`` and the four axes ``(±1, 0)``, ``(0, ±1)`` -- the 2-D analogue
  of the reference's 12 cube-edge directions (which are the 3-D diagonals of
  the faces; in 2-D the face diagonals and the axes are all there is);
* the fractional position is smoothed with the quintic fade
  ``6t^5 - 15t^4 + 10t^3``, whose first and second derivatives vanish at the
  lattice lines (no creases, unlike the 1985 cubic);
* the four corner dot products are blended bilinearly with the faded weights.

Octave ``o`` samples pixel ``(x, y)`` of an image of side ``size`` at lattice
position ``((x + 0.5) * f_o / size + ox_o, (y + 0.5) * f_o / size + oy_o)``:
``f_o`` cycles per image, offset ``(ox_o, oy_o)`` in lattice units.  With a
period ``p_o > 0`` the lattice index wraps modulo ``p_o`` before hashing; the
wrapper sets ``p_o = f_o`` (an integer then), so octave ``o`` repeats exactly
once per image and the image tiles.

The kernels are dumb: the wrapper (:mod:`fractaldb.families.perlin.model`) builds the octave
table, owns every buffer and validates.  Every kernel has a slow NumPy twin in
``tests/perlin_reference.py``, compared in ``tests/test_perlin.py`` with the JIT on and off.
"""

from __future__ import annotations

import numpy as np

from ..._jit import kernel
from ...kernels.arith import add, mul
from ...kernels.random import splitmix64

# Gradient directions, indexed by ``hash & 7``.  Module-level arrays are
# frozen into the compiled code as constants.
GRAD_X = np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 0.0, 0.0])
GRAD_Y = np.array([1.0, 1.0, -1.0, -1.0, 0.0, 0.0, 1.0, -1.0])

_INV53 = 1.0 / 9007199254740992.0
#: Counters of the instance stream (splitmix64 of the instance key):
#: 0..255 drive the Fisher-Yates shuffle, ``OFFSET_COUNTER + 2 o`` and
#: ``OFFSET_COUNTER + 2 o + 1`` the x and y offsets of octave ``o``.
OFFSET_COUNTER = 256
#: Offsets are uniform in [0, 256) lattice units: the hash repeats every 256
#: cells, so this covers every distinct window of the lattice.
OFFSET_RANGE = 256.0


@kernel
def fill_permutation(key, perm):
    """``perm[:256]`` = a permutation of 0..255 drawn from ``key``; ``perm[256:512]`` = a copy.

    Fisher-Yates from the top: step ``i`` (255 down to 1) swaps entry ``i``
    with entry ``j``, ``j`` uniform in 0..i from the high 32 bits of draw
    ``i`` (multiply-shift; the bias is below 2^-24).
    """
    for i in range(256):
        perm[i] = i
    for i in range(255, 0, -1):
        j = swap_index(key, i)
        t = perm[i]
        perm[i] = perm[j]
        perm[j] = t
    for i in range(256):
        perm[256 + i] = perm[i]


@kernel
def swap_index(key, i):
    """The entry step ``i`` of the shuffle swaps with: ``j`` in 0..i from the high 32 bits of draw ``i``."""
    hi = splitmix64(key, i) >> np.uint64(32)
    return np.int64((hi * np.uint64(i + 1)) >> np.uint64(32))


@kernel
def lattice_offset(key, k):
    """Offset ``k`` of the instance (octave ``k // 2``, axis ``k % 2``): uniform in [0, 256)."""
    return mul(mul(np.float64(splitmix64(key, OFFSET_COUNTER + k) >> np.uint64(11)), _INV53), OFFSET_RANGE)


@kernel
def fill_offsets(key, offs):
    """``offs[o, c]`` = uniform in [0, 256) from draw ``OFFSET_COUNTER + 2 o + c`` of ``key``.

    Each octave gets its own offset: with one shared offset every octave
    would be zero at the same lattice point, a visible spot.
    """
    for o in range(offs.shape[0]):
        for c in range(2):
            offs[o, c] = lattice_offset(key, 2 * o + c)


@kernel
def fade(t):
    """Perlin's quintic ``6t^5 - 15t^4 + 10t^3`` in Horner form, each operation rounded alone
    (:mod:`fractaldb.kernels.arith`: the GPU twin computes the very same bits)."""
    return mul(mul(mul(t, t), t), add(mul(t, add(mul(t, 6.0), -15.0)), 10.0))


@kernel
def _row(gx, gy, cx0, cx1, cfx, cux, j0, j1, fy, uy, a, row):
    """Add octave weight ``a`` times the noise of one row (fixed ``j0, j1, fy``) to ``row``."""
    fy1 = fy - 1.0
    for x in range(row.shape[0]):
        # Unsigned indices: numba skips its negative-index wrap-around test
        # (about 30 % of the loop's time).
        k00 = cx0[x] + j0
        k10 = cx1[x] + j0
        k01 = cx0[x] + j1
        k11 = cx1[x] + j1
        fx = cfx[x]
        fx1 = fx - 1.0
        n00 = gx[k00] * fx + gy[k00] * fy
        n10 = gx[k10] * fx1 + gy[k10] * fy
        n01 = gx[k01] * fx + gy[k01] * fy1
        n11 = gx[k11] * fx1 + gy[k11] * fy1
        ux = cux[x]
        nx0 = n00 + ux * (n10 - n00)
        nx1 = n01 + ux * (n11 - n01)
        row[x] += a * (nx0 + uy * (nx1 - nx0))


@kernel
def fbm_field(perm, freqs, amps, offs, periods, size, grads, cx0, cx1, cfx, cux, field):
    """``field[y, x] = sum_o amps[o] * noise_o(x, y)`` (octave by octave, in order).

    Args:
        perm: ``int32[512]`` permutation, doubled (:func:`fill_permutation`).
        freqs: ``float64[O]`` cycles per image of each octave.
        amps: ``float64[O]`` weight of each octave (the wrapper normalises them
            to sum 1).
        offs: ``float64[O, 2]`` lattice offsets (x, y) of each octave.
        periods: ``int64[O]`` lattice period of each octave, 0 = no wrapping.
        size: image side the frequencies refer to.  ``field`` may be wider or
            taller (the tiling test samples the next tile that way).
        grads: ``float64[2, 512]`` scratch: the gradient of each hash value,
            ``GRAD_X[perm[k] & 7]``, ``GRAD_Y[perm[k] & 7]``.
        cx0, cx1: ``uint32[W]`` scratch: ``perm[i0 & 255]``, ``perm[i1 & 255]`` per column.
        cfx, cux: ``float64[W]`` scratch: fraction and faded fraction per column.
        field: ``float64[H, W]`` output.

    The column terms of an octave depend on x only, so they are computed once
    per octave into the scratch rows; the inner loop is then four gradient
    lookups and a bilinear blend.
    """
    h, w = field.shape
    gx = grads[0]
    gy = grads[1]
    for k in range(512):
        gx[k] = GRAD_X[perm[k] & 7]
        gy[k] = GRAD_Y[perm[k] & 7]
    for y in range(h):
        for x in range(w):
            field[y, x] = 0.0
    for o in range(freqs.shape[0]):
        step = freqs[o] / size
        p = periods[o]
        a = amps[o]
        ox = offs[o, 0]
        oy = offs[o, 1]
        for x in range(w):
            u = (x + 0.5) * step + ox
            fl = np.floor(u)
            i0 = np.int64(fl)
            if p > 0:
                i0 = i0 % p
                i1 = (i0 + 1) % p
            else:
                i1 = i0 + 1
            cx0[x] = perm[i0 & 255]
            cx1[x] = perm[i1 & 255]
            f = u - fl
            cfx[x] = f
            cux[x] = fade(f)
        for y in range(h):
            v = (y + 0.5) * step + oy
            fl = np.floor(v)
            j0 = np.int64(fl)
            if p > 0:
                j0 = j0 % p
                j1 = (j0 + 1) % p
            else:
                j1 = j0 + 1
            fy = v - fl
            _row(gx, gy, cx0, cx1, cfx, cux, np.uint32(j0 & 255), np.uint32(j1 & 255), fy, fade(fy), a, field[y])


@kernel
def _level(v, gain):
    """Field value -> byte: ``round(255 * clip(0.5 + gain * v, 0, 1))``."""
    t = 0.5 + gain * v
    t = 0.0 if t < 0.0 else (1.0 if t > 1.0 else t)
    return np.uint8(np.int64(t * 255.0 + 0.5))


@kernel
def _gray(field, gain, img):
    h, w = img.shape
    for y in range(h):
        for x in range(w):
            img[y, x] = _level(field[y, x], gain)


@kernel
def _rgb(field, gain, lut, img):
    h, w, _ = img.shape
    for y in range(h):
        for x in range(w):
            b = _level(field[y, x], gain)
            img[y, x, 0] = lut[b, 0]
            img[y, x, 1] = lut[b, 1]
            img[y, x, 2] = lut[b, 2]


@kernel
def colorize(field, gain, lut, img):
    """``img[y, x] = lut[level(field[y, x])]`` (one channel: the level itself).

    ``img`` is a C-contiguous ``(H, W, C)`` uint8 array, C = 1 or 3, of the
    same height and width as ``field``; ``lut`` is ``(256, 3)`` uint8.  Two
    loops, as in :func:`fractaldb.ifs.kernels.draw_points`: a run-time channel
    loop would stop LLVM from unrolling the writes.
    """
    if img.shape[2] == 1:
        _gray(field, gain, img.reshape(img.shape[0], img.shape[1]))
    else:
        _rgb(field, gain, lut, img)
