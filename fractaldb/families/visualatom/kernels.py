"""VisualAtom's own kernels: walking a class's share of a CPython stream (official mode)
and the modern instance centre.  Everything else is :mod:`fractaldb.contours`."""

from __future__ import annotations

import numpy as np

from ..._jit import kernel
from ...contours.orbits import skip_draws
from ...contours.pyrandom import py_randint_counted
from ...kernels.random import splitmix64

__all__ = ["walk_class", "keyed_centre"]


@kernel
def walk_class(st, V, K, instances, block, size, spread, cy, cx, offsets, centres):
    """Advance ``st`` through one class's ``instances`` instances as the original draws them
    (each instance's orbits, then the next centre: ``cy`` then ``cx``).

    Before instance ``b * block`` it records ``offsets[b]``, the words consumed since the
    walk began, and ``centres[b] = (cy, cx)``, that instance's centre.
    """
    used = np.zeros(1, dtype=np.int64)
    for i in range(instances):
        if i % block == 0:
            b = i // block
            offsets[b] = used[0]
            centres[b, 0] = cy
            centres[b, 1] = cx
        skip_draws(st, V, K, 0, 255, used)
        cy = (size + py_randint_counted(st, -spread, spread, used)) / 2
        cx = (size + py_randint_counted(st, -spread, spread, used)) / 2


@kernel
def keyed_centre(key, counter, size, spread):
    """Modern mode: ``(size + r) / 2`` with ``r`` uniform in ``-spread..spread`` (draw ``counter`` of ``key``)."""
    n = np.uint64(2 * spread + 1)
    hi = splitmix64(key, counter) >> np.uint64(32)
    return (size + (np.int64((hi * n) >> np.uint64(32)) - spread)) / 2
