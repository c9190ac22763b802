"""Numba kernels: dumb, allocation-free loops over checked, preallocated arrays.

Nothing in this package validates input, allocates output, logs or does I/O;
the wrappers in :mod:`fractaldb.render` and :mod:`fractaldb.search` do that.
"""
