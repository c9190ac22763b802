"""One compile helper for every CPU kernel.

Kernels are plain Python functions decorated with :func:`kernel`.  They are
compiled by numba with ``nogil=True`` so a thread pool can run them side by
side, and cached on disk so the command line does not pay the JIT cost on
every start.  Setting ``NUMBA_DISABLE_JIT=1`` (numba's own switch) turns every
kernel back into the plain Python function: the test-suite runs the kernel
parity tests that way too (``tests/test_kernels.py::test_kernels_without_jit``).
"""

from __future__ import annotations

import numba

__all__ = ["kernel"]


def kernel(fn=None, **options):
    """Compile ``fn`` with numba in no-Python mode, releasing the GIL."""
    opts = {"nogil": True, "cache": True, "error_model": "numpy"}
    opts.update(options)
    if fn is None:
        return lambda f: numba.njit(**opts)(f)
    return numba.njit(**opts)(fn)
