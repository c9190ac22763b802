"""Rounded arithmetic a CPU kernel and its GPU twin share.

A CPU kernel whose body is also compiled for the GPU
(:func:`fractaldb.kernels.cuda_common.device_twin`) writes each ``a * b`` and
``a + b`` that must round alone as :func:`mul` and :func:`add`: on the CPU they
are the plain operations (LLVM never fuses them: numba compiles without
fast-math), and the twin rebinds them to ``dmul_rn`` / ``dadd_rn`` so NVVM cannot
contract a multiply and an add into one FMA, whose single rounding would change
the last bit.  One body, the same bits on both.
"""

from __future__ import annotations

from .._jit import kernel

__all__ = ["mul", "add"]


@kernel
def mul(a, b):
    """``a * b``, rounded once."""
    return a * b


@kernel
def add(a, b):
    """``a + b``, rounded once."""
    return a + b
