"""Numba kernels: dumb loops over checked, preallocated arrays.

Nothing in this package validates input, allocates its outputs, logs or does I/O
(the search kernels keep one small per-call scratch row);
the wrappers in :mod:`fractaldb.render` and :mod:`fractaldb.search` do that.
"""
