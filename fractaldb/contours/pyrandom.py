"""CPython's ``random`` module, replayed in numba (FDSL.md §1.1).

The contour generators draw everything from CPython's global ``random``: MT19937
seeded with ``init_by_array`` (NumPy's legacy ``RandomState`` seeds the same
generator differently).  A **state** is the ``uint32[625]`` array of
:mod:`fractaldb.kernels.mt19937` -- the 624 words and the position of the next
word -- so its ``twist`` / ``next_u32`` / ``skip`` apply unchanged.  The draws
below consume exactly the words CPython 3.x consumes:

==========================  ====================================================
``seed_state(n)``           host function: the state ``random.seed(n)`` leaves (int ``n``)
``py_random(st)``           ``random()``: words a, b -> ((a >> 5)·2^26 + (b >> 6)) / 2^53
``py_uniform(st, a, b)``    ``a + (b - a) * random()``
``py_randint(st, a, b)``    ``randint(a, b)``: n = b - a + 1, k = bit_length(n) (<= 32);
                            ``r = word >> (32 - k)`` redrawn while ``r >= n``
``py_randint_counted(st, a, b, used)``  the same, adding the words consumed to ``used[0]``
``py_expovariate(st, l)``   ``-log(1 - random()) / l``
``skip(st, n)``             (re-exported) advance ``n`` words without tempering them
``fast_forward(st, n)``     host function: a copy of ``st`` advanced by ``n`` words
``state_tuple(st)``         host function: the state as ``random.getstate()`` shows it
==========================  ====================================================

All kernels take the state array first and update it in place.  ``randint`` spans fewer than
2^32 values (the contour generators need at most 1025).
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import kernel
from ..kernels.mt19937 import N, STATE_SIZE, next_double, next_u32, skip

__all__ = ["seed_state", "py_random", "py_uniform", "py_randint", "py_randint_counted", "py_expovariate", "skip", "fast_forward",
           "state_tuple", "bit_length", "STATE_SIZE"]

_M32 = 0xFFFFFFFF


def _init_genrand(s: int) -> list:
    mt = [0] * N
    mt[0] = s & _M32
    for i in range(1, N):
        mt[i] = (1812433253 * (mt[i - 1] ^ (mt[i - 1] >> 30)) + i) & _M32
    return mt


def seed_state(n: int) -> np.ndarray:
    """The state CPython's ``random.seed(n)`` leaves for an int ``n``: ``init_by_array``
    with the 32-bit limbs of ``|n|``, least significant first (``0`` -> ``[0]``)."""
    n = abs(int(n))
    key = []
    while True:
        key.append(n & _M32)
        n >>= 32
        if not n:
            break
    mt = _init_genrand(19650218)
    i, j = 1, 0
    for _ in range(max(N, len(key))):
        mt[i] = ((mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1664525)) + key[j] + j) & _M32
        i += 1
        j += 1
        if i >= N:
            mt[0] = mt[N - 1]
            i = 1
        if j >= len(key):
            j = 0
    for _ in range(N - 1):
        mt[i] = ((mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1566083941)) - i) & _M32
        i += 1
        if i >= N:
            mt[0] = mt[N - 1]
            i = 1
    mt[0] = 0x80000000
    out = np.empty(STATE_SIZE, dtype=np.uint32)
    out[:N] = mt
    out[N] = N
    return out


def state_tuple(st: np.ndarray) -> tuple:
    """``st`` as ``random.getstate()`` shows it: ``(3, (624 words..., position), None)``."""
    return (3, tuple(int(w) for w in st), None)


def fast_forward(st: np.ndarray, n_words: int) -> np.ndarray:
    """A copy of ``st`` advanced by ``n_words`` 32-bit words (nothing drawn or tempered)."""
    out = np.array(st, dtype=np.uint32, copy=True)
    skip(out, np.int64(n_words))
    return out


@kernel
def bit_length(n):
    """``int.bit_length`` of ``n`` >= 0 (0 for 0)."""
    k = 0
    n = np.uint64(n)
    while n:
        n >>= np.uint64(1)
        k += 1
    return k


#: ``random.random()``: a 53-bit double in [0, 1) from two words -- the same law as NumPy's
#: ``random_sample`` (only the seeding of the two generators differs).
py_random = next_double


@kernel
def py_uniform(st, a, b):
    """``random.uniform(a, b)`` = ``a + (b - a) * random()``."""
    return a + (b - a) * py_random(st)


@kernel
def py_randint(st, a, b):
    """``random.randint(a, b)`` (``a <= b``, fewer than 2^32 values): rejection on ``bit_length(n)`` bits."""
    n = np.int64(b) - np.int64(a) + 1
    k = bit_length(n)
    shift = np.uint32(32 - k)
    while True:
        r = np.int64(next_u32(st) >> shift)
        if r < n:
            return np.int64(a) + r


@kernel
def py_randint_counted(st, a, b, used):
    """:func:`py_randint`, adding the words it consumed to ``used[0]``."""
    n = np.int64(b) - np.int64(a) + 1
    shift = np.uint32(32 - bit_length(n))
    while True:
        used[0] += 1
        r = np.int64(next_u32(st) >> shift)
        if r < n:
            return np.int64(a) + r


@kernel
def py_expovariate(st, lambd):
    """``random.expovariate(lambd)`` = ``-log(1 - random()) / lambd``."""
    return -math.log(1.0 - py_random(st)) / lambd
