"""What every family's CUDA kernels share (numba-cuda): launch constants,
no-FMA arithmetic and the keyed random stream as device functions.

Importing this module imports ``numba.cuda``; only the GPU renderers import
it, lazily.  The integer mixing (:func:`splitmix64`, :func:`patch_mask`) is
not written twice: the device functions are compiled from the very Python
functions of :mod:`fractaldb.kernels.random` (:func:`device_twin`), so the
CPU and the GPU cannot drift apart.

Floating point: NVVM contracts ``a * b + c`` into one fused multiply-add by
default (numba-cuda passes no ``-fma=0``, even with ``fastmath=False``), and a
fused result is rounded once instead of twice, so it differs from the CPU's.
Kernels that must match the CPU bit for bit therefore multiply and add through
:func:`_mul` and :func:`_add`: libdevice's ``__nv_dmul_rn`` / ``__nv_dadd_rn``,
which compile to ``mul.rn.f64`` / ``add.rn.f64``; PTX never fuses an
instruction with an explicit rounding modifier.  Under the simulator they are
plain Python arithmetic on NumPy float64.
"""

from __future__ import annotations

import types

import numpy as np
from numba import config, cuda

from . import arith as A
from . import random as R

__all__ = ["SIMULATOR", "TPB", "MAX_GRID", "device_twin", "splitmix64", "patch_mask", "uniform", "_mul", "_add"]

#: Whether numba runs kernels in its CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``).
SIMULATOR = bool(config.ENABLE_CUDASIM)
# The simulator runs one Python thread per CUDA thread: tiny blocks and grids
# keep it fast, and grid-stride loops make the results independent of it.
#: Threads per block of the data-parallel kernels (a power of two: tree reduction).
TPB = 4 if SIMULATOR else 256
#: Largest grid extent the launch helpers use per dimension.
MAX_GRID = 2 if SIMULATOR else 65535

if SIMULATOR:
    def _mul(a, b):
        return a * b

    def _add(a, b):
        return a + b
else:  # pragma: no cover - needs the CUDA target (compiled, not run, on CI)
    from numba.cuda import libdevice

    # Never fused into an FMA (see the module docstring).
    _mul = libdevice.dmul_rn
    _add = libdevice.dadd_rn


def device_twin(fn, **calls):
    """A CUDA device function compiled from CPU kernel ``fn``'s own Python code.

    ``calls`` rebinds the kernels ``fn`` calls to their device twins (a CPU
    dispatcher cannot be called from device code); the rounded arithmetic of
    :mod:`fractaldb.kernels.arith` (``mul``, ``add``) is rebound to ``_mul`` /
    ``_add`` whenever ``fn`` uses it.  Under ``NUMBA_DISABLE_JIT`` the CPU kernel
    is already the plain function.
    """
    py = getattr(fn, "py_func", fn)
    for name, twin in (("mul", _mul), ("add", _add)):
        if py.__globals__.get(name) is getattr(A, name) and name not in calls:
            calls[name] = twin
    if calls:
        py = types.FunctionType(py.__code__, {**py.__globals__, **calls}, py.__name__, py.__defaults__,
                                py.__closure__)
    return cuda.jit(device=True)(py)


#: Draw ``counter`` of the splitmix64 stream keyed by ``key`` (:func:`fractaldb.kernels.random.splitmix64`).
splitmix64 = device_twin(R.splitmix64)
#: A 9-bit patch mask in 1..511 (:func:`fractaldb.kernels.random.patch_mask`).
patch_mask = device_twin(R.patch_mask, splitmix64=splitmix64)

_INV53 = R._INV53


@cuda.jit(device=True)
def uniform(key, counter):
    """Uniform double in [0, 1): draw ``counter`` of ``fill_uniform``'s stream."""
    return _mul(np.float64(splitmix64(key, counter) >> np.uint64(11)), _INV53)
