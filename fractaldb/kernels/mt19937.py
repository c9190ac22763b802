"""NumPy's legacy ``RandomState`` stream (MT19937), reproduced inside numba.

The official FractalDB search draws everything from one global
``np.random.seed(1)`` stream.  To replay it in parallel we walk the stream
once, cheaply, and hand each candidate a snapshot of the generator state.

A state is a ``uint32[625]`` array: the 624 words of MT19937 followed by the
position of the next word (624 means "twist before the next draw"), the same
layout as ``RandomState.get_state()``.  Every draw below consumes exactly the
words NumPy's legacy functions consume, so the values are bit-identical
(``tests/test_mt19937.py`` compares them with NumPy).
"""

from __future__ import annotations

import numpy as np

from .._jit import kernel

N = 624
M = 397
STATE_SIZE = N + 1
_MATRIX_A = np.uint32(0x9908B0DF)
_UPPER = np.uint32(0x80000000)
_LOWER = np.uint32(0x7FFFFFFF)


def state_from_seed(seed: int) -> np.ndarray:
    """The state NumPy's ``np.random.seed(seed)`` leaves behind."""
    _, key, pos, _, _ = np.random.RandomState(seed).get_state(legacy=True)
    out = np.empty(STATE_SIZE, dtype=np.uint32)
    out[:N] = key
    out[N] = pos
    return out


@kernel
def twist(st):
    """Regenerate the 624 words (the reference ``genrand`` block step)."""
    for i in range(N - M):
        y = (st[i] & _UPPER) | (st[i + 1] & _LOWER)
        st[i] = st[i + M] ^ (y >> np.uint32(1)) ^ (np.uint32(0) - (y & np.uint32(1))) & _MATRIX_A
    for i in range(N - M, N - 1):
        y = (st[i] & _UPPER) | (st[i + 1] & _LOWER)
        st[i] = st[i + M - N] ^ (y >> np.uint32(1)) ^ (np.uint32(0) - (y & np.uint32(1))) & _MATRIX_A
    y = (st[N - 1] & _UPPER) | (st[0] & _LOWER)
    st[N - 1] = st[M - 1] ^ (y >> np.uint32(1)) ^ (np.uint32(0) - (y & np.uint32(1))) & _MATRIX_A


@kernel
def next_u32(st):
    """One 32-bit word (``genrand_int32``)."""
    pos = st[N]
    if pos >= N:
        twist(st)
        pos = 0
    y = st[pos]
    st[N] = pos + 1
    y ^= y >> np.uint32(11)
    y ^= (y << np.uint32(7)) & np.uint32(0x9D2C5680)
    y ^= (y << np.uint32(15)) & np.uint32(0xEFC60000)
    y ^= y >> np.uint32(18)
    return y


@kernel
def next_double(st):
    """``RandomState.random_sample()``: 53-bit double from two words."""
    a = next_u32(st) >> np.uint32(5)
    b = next_u32(st) >> np.uint32(6)
    return (a * 67108864.0 + b) / 9007199254740992.0


@kernel
def fill_doubles(st, out):
    """``out[:] = RandomState.random_sample(len(out))``."""
    for i in range(out.shape[0]):
        out[i] = next_double(st)


@kernel
def randint_masked(st, low, high):
    """``RandomState.randint(low, high)`` for a range below 2**32 (masked rejection)."""
    rng = np.uint32(high - 1 - low)
    if rng == 0:
        return np.int64(low)  # NumPy draws nothing for a one-value range
    mask = rng
    mask |= mask >> np.uint32(1)
    mask |= mask >> np.uint32(2)
    mask |= mask >> np.uint32(4)
    mask |= mask >> np.uint32(8)
    mask |= mask >> np.uint32(16)
    while True:
        v = next_u32(st) & mask
        if v <= rng:
            return low + np.int64(v)


@kernel
def skip(st, n_words):
    """Advance the stream by ``n_words`` 32-bit words without tempering them."""
    pos = np.int64(st[N])
    k = np.int64(n_words)
    while pos + k > N:
        k -= N - pos
        twist(st)
        pos = 0
    st[N] = np.uint32(pos + k)


@kernel
def fill_words(st, out):
    """``out[:] =`` the next ``len(out)`` tempered words, block by block.

    Tempering a whole block at a time lets LLVM vectorise it; this is the hot
    loop of the official search (200 000 words per candidate).  The block is
    tempered from one contiguous slice into another: indexed as ``st[pos + k]``
    and ``out[i + k]`` LLVM kept it scalar, 5x slower (benchmarks/bench_replay.py).
    """
    n = out.shape[0]
    pos = np.int64(st[N])
    mt = st[:N]
    i = 0
    while i < n:
        if pos >= N:
            twist(st)
            pos = 0
        m = min(N - pos, n - i)
        src = mt[pos:pos + m]
        dst = out[i:i + m]
        for k in range(m):
            y = src[k]
            y ^= y >> np.uint32(11)
            y ^= (y << np.uint32(7)) & np.uint32(0x9D2C5680)
            y ^= (y << np.uint32(15)) & np.uint32(0xEFC60000)
            y ^= y >> np.uint32(18)
            dst[k] = y
        i += m
        pos += m
    st[N] = np.uint32(pos)


@kernel
def words_to_doubles(words, out):
    """Pairs of words to ``random_sample`` doubles (``genrand_res53``)."""
    for i in range(out.shape[0]):
        a = words[2 * i] >> np.uint32(5)
        b = words[2 * i + 1] >> np.uint32(6)
        out[i] = (a * 67108864.0 + b) / 9007199254740992.0
