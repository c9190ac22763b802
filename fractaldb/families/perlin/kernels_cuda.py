"""CUDA twins of the Perlin-noise kernels (numba-cuda), bit-identical to the CPU's.

Each kernel renders a batch of instances and must give, pixel for pixel, what
:mod:`fractaldb.families.perlin.kernels` gives for each instance alone:
``tests/perlin_cuda_cases.py`` compares them (under numba's CUDA simulator on
CI, on the hardware where there is a GPU).  Importing this module imports
``numba.cuda``; only :mod:`fractaldb.families.perlin.render_cuda` imports it, lazily.

Layout of one launch: ``n`` instances, each one a row of per-instance tables
that the host fills from the class alone (:func:`fractaldb.families.perlin.model.octave_table`):

* ``keys[s]`` -- the instance key;
* ``steps[s, o]`` (``freqs[o] / size``, divided on the host: NumPy's and the
  CPU kernel's float64 division are both IEEE, so the value is the one the
  CPU kernel computes), ``amps[s, o]``, ``periods[s, o]`` -- the octave table,
  padded to ``MAX_OCTAVES`` columns; columns ``>= noct[s]`` are never read;
* ``gains[s]`` (:func:`~fractaldb.families.perlin.model.class_gain`) and ``lut_id[s]``, the
  instance's palette in the stacked ``luts``.

No kernel reads another instance's row, so an image never depends on the batch
it is in, nor on the launch geometry (grid-stride loops).

**One thread block per instance.**  The block first rebuilds the instance's
lattice from its key in shared memory, then its threads cover the pixels:

1. *Permutation and offsets on the device.*  The 255 Fisher-Yates draws and
   the ``2 * noct`` offset draws are independent splitmix64 values: the
   block's threads compute them in parallel (the draw ``j`` of swap ``i`` into
   a shared table).  The swaps themselves are sequential, so thread 0 does
   them, 255 swaps in shared memory (a few microseconds, overlapped with other
   blocks' pixel work).  The alternative, :func:`~fractaldb.families.perlin.kernels.fill_permutation`
   on the host and an upload, costs host time per instance (Python and a
   numba call, microseconds each) and 2 KB of transfer per instance -- the
   host would bound the throughput of small images.  It gives the same
   permutation: the draws are the same integers (``splitmix64`` is
   :func:`fractaldb.kernels.cuda_common.splitmix64`, tested against the CPU's), the
   swaps the same sequence; the offsets are a 53-bit integer times 2^-53 times
   256, exact on both sides.
2. *The permutation stays in shared memory*, where the pixel loop's
   data-dependent hash lookups (8 per pixel and octave) are cheapest.  It is
   stored once (256 entries): ``perm[(perm[i & 255] + (j & 255)) & 255]`` is the
   CPU's doubled-table lookup ``perm[perm[i & 255] + (j & 255)]``.
3. *One thread per pixel*, grid-stride over the image: the octave sum in the
   CPU's order (octave 0 first, into an accumulator starting at 0.0), each
   octave with the CPU kernel's operations in the CPU kernel's order (the
   CPU precomputes the column terms once per octave; the values are the
   same whichever thread computes them), then the byte level and the palette.

Floating point: NVVM contracts ``a * b + c`` into a fused multiply-add by
default, which rounds once instead of twice.  Every product here is
:func:`fractaldb.kernels.cuda_common._mul` (``mul.rn.f64``, never fused), and every
sum with a product in it is :func:`~fractaldb.kernels.cuda_common._add`; so no plain
``fmul`` is left for NVVM to contract.  Differences of two non-products (``fx -
1.0``, ``n10 - n00``) stay plain: ``a - b`` is ``a + (-b)`` exactly and there
is nothing to fuse.  ``tests/test_cuda.py::test_perlin_kernels_compile_for_the_gpu_without_fma``
checks the PTX.  ``floor`` is libdevice's (exact), and the float-to-integer
conversion of a lattice coordinate at or past 2^63 (only for absurd
frequencies, >= ~10^18 cycles per image) gives x86-64's "integer indefinite"
``-2^63``, as the CPU's ``cvttsd2si`` does, instead of the GPU's saturation.
"""

from __future__ import annotations

import numpy as np
from numba import cuda, float64, int32

from ...kernels.cuda_common import SIMULATOR, _add, _mul, device_twin, splitmix64
from . import kernels as K

__all__ = ["MAX_OCTAVES", "PERLIN_TPB", "perlin_image_kernel", "perlin_field_kernel"]

#: Columns of the per-instance octave tables (``fractaldb.families.perlin.model.MAX_OCTAVES``;
#: not imported from there: kernels sit below the wrapper layer).
MAX_OCTAVES = 16
#: Threads per block: one block renders one instance at a time.  The simulator
#: runs a Python thread per CUDA thread, so it gets a tiny block (the
#: grid-stride loops make the results independent of the geometry).
PERLIN_TPB = 4 if SIMULATOR else 256

#: 2^63: from here on a float64 has no int64 value.
_TWO63 = 9223372036854775808.0
_INT64_MIN = np.int64(-9223372036854775807 - 1)

if SIMULATOR:
    _floor = np.floor
else:  # pragma: no cover - needs the CUDA target (compiled, not run, on CI)
    from numba.cuda import libdevice

    _floor = libdevice.floor


# --------------------------------------------------------------------------- device functions


@cuda.jit(device=True)
def _to_int(fl):
    """``np.int64(fl)`` for an integral ``fl >= 0`` as the CPU computes it (x86-64 ``cvttsd2si``).

    In range it is exact on both; past 2^63 x86 returns ``-2^63`` where the
    GPU's conversion would saturate to ``2^63 - 1``.
    """
    if fl < _TWO63:
        return np.int64(fl)
    return _INT64_MIN


#: The CPU's ``fade``, compiled from its own code (each operation rounded alone).
fade = device_twin(K.fade)
#: The CPU's shuffle draw and lattice offset, compiled from their own code.
_swap_index = device_twin(K.swap_index, splitmix64=splitmix64)
_lattice_offset = device_twin(K.lattice_offset, splitmix64=splitmix64)


@cuda.jit(device=True)
def level(v, gain):
    """Field value -> byte, as the CPU's ``_level``: ``round(255 * clip(0.5 + gain * v, 0, 1))``."""
    t = _add(0.5, _mul(gain, v))
    t = 0.0 if t < 0.0 else (1.0 if t > 1.0 else t)
    return np.uint8(np.int64(_add(_mul(t, 255.0), 0.5)))


@cuda.jit(device=True)
def _lattice(key, noct, perm, draws, offs):
    """The instance's permutation (256 entries) and offsets, in the block's shared arrays.

    Every thread of the block calls it.  ``fill_permutation``: ``perm[i] = i``,
    then for ``i`` = 255 down to 1 swap entries ``i`` and ``j_i``, ``j_i`` the
    multiply-shift of draw ``i``.  ``fill_offsets``: ``offs[o, c]`` from draw
    ``OFFSET_COUNTER + 2 o + c``.
    """
    t = cuda.threadIdx.x
    nt = cuda.blockDim.x
    for i in range(t, 256, nt):
        perm[i] = i
        if i > 0:
            draws[i] = np.int32(_swap_index(key, i))
    for k in range(t, 2 * noct, nt):
        offs[k >> 1, k & 1] = _lattice_offset(key, k)
    cuda.syncthreads()
    if t == 0:
        for i in range(255, 0, -1):
            j = draws[i]
            tmp = perm[i]
            perm[i] = perm[j]
            perm[j] = tmp
    cuda.syncthreads()


@cuda.jit(device=True)
def _cell(c, step, off, p):
    """Lattice cell, fraction and faded fraction of pixel centre ``c`` (= x + 0.5) in one octave.

    The CPU's column (and row) terms: ``u = c * step + off``,
    ``i0 = floor(u)`` wrapped modulo ``p`` when ``p > 0``, ``i1`` the next
    cell (also wrapped), ``f = u - floor(u)``.
    """
    u = _add(_mul(c, step), off)
    fl = _floor(u)
    i0 = _to_int(fl)
    if p > 0:
        i0 = i0 % p
        i1 = (i0 + 1) % p
    else:
        i1 = i0 + 1
    f = u - fl
    return i0, i1, f, fade(f)


@cuda.jit(device=True)
def _grad(perm, a, b, dx, dy):
    """``g(hash(a, b)) . (dx, dy)``: the CPU's ``gx[k] * fx + gy[k] * fy``.

    The gradient ``(GRAD_X[h], GRAD_Y[h])`` is selected with integer tests
    rather than read from a table: a table would live in constant memory,
    which serialises a warp's differing indices (``tests/perlin_cuda_cases.py::test_gradients_are_the_cpu_table``).
    The products and the sum are the CPU's, operand for operand.
    """
    h = perm[(perm[a & 255] + (b & 255)) & 255] & 7
    gx = 0.0 if h >= 6 else (-1.0 if h & 1 else 1.0)
    if h < 4:
        gy = -1.0 if h & 2 else 1.0
    elif h < 6:
        gy = 0.0
    else:
        gy = -1.0 if h & 1 else 1.0
    return _add(_mul(gx, dx), _mul(gy, dy))


@cuda.jit(device=True)
def octave_sum(perm, offs, steps, amps, periods, s, noct, x, y):
    """``sum_o amps[s, o] * noise_o(x, y)`` in the CPU's order and operations (``fbm_field``, ``_row``)."""
    acc = 0.0
    cx = np.float64(x) + 0.5  # exact, as the CPU's x + 0.5
    cy = np.float64(y) + 0.5
    for o in range(noct):
        step = steps[s, o]
        p = periods[s, o]
        i0, i1, fx, ux = _cell(cx, step, offs[o, 0], p)
        j0, j1, fy, uy = _cell(cy, step, offs[o, 1], p)
        fx1 = fx - 1.0
        fy1 = fy - 1.0
        n00 = _grad(perm, i0, j0, fx, fy)
        n10 = _grad(perm, i1, j0, fx1, fy)
        n01 = _grad(perm, i0, j1, fx, fy1)
        n11 = _grad(perm, i1, j1, fx1, fy1)
        nx0 = _add(n00, _mul(ux, n10 - n00))
        nx1 = _add(n01, _mul(ux, n11 - n01))
        acc = _add(acc, _mul(amps[s, o], _add(nx0, _mul(uy, nx1 - nx0))))
    return acc


# --------------------------------------------------------------------------- kernels


@cuda.jit
def perlin_image_kernel(keys, steps, amps, periods, noct, gains, lut_id, luts, images):
    """Images of ``n`` instances: ``images[s]`` = the CPU ``render`` of instance ``s``.

    Args:
        keys: ``(n,)`` uint64 instance keys.
        steps, amps: ``(n, MAX_OCTAVES)`` float64: ``freqs / size`` and the
            octave weights of each instance's class (padded).
        periods: ``(n, MAX_OCTAVES)`` int64 lattice periods, 0 = no wrap.
        noct: ``(n,)`` int32 octaves actually rendered (``len(freqs)``, 1..16).
        gains: ``(n,)`` float64 byte-mapping gains.
        lut_id: ``(n,)`` int32 row of ``luts`` (ignored with one channel).
        luts: ``(P, 256, 3)`` uint8 palette tables.
        images: ``(n, size, size, C)`` uint8 output, C = 1 (the level itself)
            or 3 (the palette's colour).
    """
    perm = cuda.shared.array(256, int32)
    draws = cuda.shared.array(256, int32)
    offs = cuda.shared.array((MAX_OCTAVES, 2), float64)
    size = images.shape[1]
    nch = images.shape[3]
    npix = size * size
    for s in range(cuda.blockIdx.x, keys.shape[0], cuda.gridDim.x):
        m = noct[s]
        _lattice(keys[s], m, perm, draws, offs)
        gain = gains[s]
        lut = lut_id[s]
        for q in range(cuda.threadIdx.x, npix, cuda.blockDim.x):
            y = q // size
            x = q - y * size
            b = level(octave_sum(perm, offs, steps, amps, periods, s, m, x, y), gain)
            if nch == 1:
                images[s, y, x, 0] = b
            else:
                images[s, y, x, 0] = luts[lut, b, 0]
                images[s, y, x, 1] = luts[lut, b, 1]
                images[s, y, x, 2] = luts[lut, b, 2]
        cuda.syncthreads()  # every thread is done with the lattice before the next instance rebuilds it


@cuda.jit
def perlin_field_kernel(keys, steps, amps, periods, noct, field):
    """Float octave sums of ``n`` instances: ``field[s]`` = the CPU ``render_field`` of instance ``s``.

    Arguments as :func:`perlin_image_kernel`; ``field`` is ``(n, size, size)`` float64.
    """
    perm = cuda.shared.array(256, int32)
    draws = cuda.shared.array(256, int32)
    offs = cuda.shared.array((MAX_OCTAVES, 2), float64)
    size = field.shape[1]
    npix = size * size
    for s in range(cuda.blockIdx.x, keys.shape[0], cuda.gridDim.x):
        m = noct[s]
        _lattice(keys[s], m, perm, draws, offs)
        for q in range(cuda.threadIdx.x, npix, cuda.blockDim.x):
            y = q // size
            x = q - y * size
            field[s, y, x] = octave_sum(perm, offs, steps, amps, periods, s, m, x, y)
        cuda.syncthreads()
