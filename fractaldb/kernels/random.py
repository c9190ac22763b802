"""The counter-based random stream every family's kernels draw from (CPU, numba).

splitmix64 (Steele, Lea & Flood 2014) keyed by a 64-bit stream key from
:func:`fractaldb.seeds.stream_key`: draw ``i`` of a key is available without
the ``i - 1`` before it, so any thread -- or a GPU thread, see
:mod:`fractaldb.kernels.cuda_common`, which compiles these very functions for
the device -- produces exactly the same value.
"""

from __future__ import annotations

import numpy as np

from .._jit import kernel

__all__ = ["splitmix64", "patch_mask", "fill_uniform"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_INV53 = 1.0 / 9007199254740992.0


@kernel
def splitmix64(key, counter):
    """Draw ``counter`` of the splitmix64 stream keyed by ``key``.

    ``key`` must be a ``np.uint64`` (as :func:`fractaldb.seeds.stream_key`
    returns): numba types a plain Python int as int64, and int64 + uint64
    is a float there.
    """
    z = key + (np.uint64(counter) + np.uint64(1)) * _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@kernel
def patch_mask(key, counter):
    """A 9-bit patch mask in 1..511 from the keyed stream (multiply-shift)."""
    hi = splitmix64(key, counter) >> np.uint64(32)
    return np.int64(1) + np.int64((hi * np.uint64(511)) >> np.uint64(32))


@kernel
def fill_uniform(key, out):
    """``out[i]`` = a uniform double in [0, 1) from the keyed stream."""
    for i in range(out.shape[0]):
        out[i] = np.float64(splitmix64(key, i) >> np.uint64(11)) * _INV53
