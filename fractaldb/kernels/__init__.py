"""Numba kernels every family shares: dumb loops over checked, preallocated arrays.

:mod:`.random` (the keyed splitmix64 stream), :mod:`.mt19937` (NumPy's legacy
generator, replayed word for word) and :mod:`.cuda_common` (what the CUDA
kernels share; imports ``numba.cuda``).  Each family's own kernels live in its
package (``fractaldb/families/<name>/kernels*.py``).  Nothing here validates
input, allocates its outputs, logs or does I/O; the families' wrappers do that.
"""
