"""Every random stream, derived from (dataset seed, purpose, ids...).

No library code touches a global RNG.  A stream is named by its purpose and
the ids of what it draws for (category, weight, patch draw, ...), so any one
sample can be regenerated alone, on any worker, in any order.
"""

from __future__ import annotations

import numpy as np

from ._jit import kernel

__all__ = ["PURPOSES", "declare_purposes", "derived_code", "stream_key", "stream_keys", "int_seed", "generator"]

#: Purpose codes: part of every stream's identity.  Never renumber them: that
#: would change every dataset generated so far.  This table holds the generic
#: streams; each family declares its own (:func:`declare_purposes`, called where
#: the family defines them) and they join this table.
PURPOSES = {
    "plan-blocks": 5,       # order of the blocks across shards (every family)
    "plan-shard": 6,        # order of the samples inside one shard
    "stream-epoch": 7,      # block order of one epoch of the on-the-fly stream
    "stream-shuffle": 8,    # sample shuffle buffer of the on-the-fly stream (epoch, rank, worker)
    "loader-shuffle": 9,    # sample shuffle buffer of the shard loader (epoch, rank, worker)
    "loader-shards": 10,    # resampled shard draw of the shard loader (epoch, rank, worker)
    "train": 13,            # model init and data order of pretrain/finetune (run seed, ...)
    "experiment": 14,       # sampling inside 'fractaldb experiment' (seed, ...)
}
#: Who declared each purpose (``"fractaldb"`` for the generic ones above).
_OWNERS = dict.fromkeys(PURPOSES, "fractaldb")

#: Codes below this were handed out by hand before families declared their own;
#: derived codes (:func:`derived_code`) are at or above it, so the two never meet.
DERIVED_BASE = 0x8000_0000


def derived_code(owner: str, name: str) -> int:
    """The code of purpose ``name`` declared by ``owner`` without a number: the first four
    bytes of ``sha256("owner:name")`` with the top bit set.  A function of the two names
    alone, so no merge, registration order or other family can shift it."""
    import hashlib

    digest = hashlib.sha256(f"{owner}:{name}".encode()).digest()
    return DERIVED_BASE | (int.from_bytes(digest[:4], "big") & 0x7FFF_FFFF)


def declare_purposes(owner: str, purposes: dict) -> dict:
    """Add ``owner``'s purposes (``{name: code, or None for a derived code}``) to
    :data:`PURPOSES`; returns ``{name: code}``.

    Idempotent for the same owner and codes.  Codes given by number must lie below
    :data:`DERIVED_BASE` (they are the historical ones: never renumber them).

    Raises:
        ValueError: a name or code already taken by another purpose.
    """
    out = {}
    codes = {c: n for n, c in PURPOSES.items()}
    for name, code in purposes.items():
        if code is None or code == derived_code(owner, name):  # the latter: declared again
            code = derived_code(owner, name)
        elif not (isinstance(code, int) and 0 < code < DERIVED_BASE):
            raise ValueError(f"purpose {name!r} of {owner}: a given code must be an int in 1..{DERIVED_BASE - 1}, "
                             f"got {code!r}; leave it None for a derived code")
        if name in PURPOSES and (PURPOSES[name], _OWNERS[name]) != (code, owner):
            raise ValueError(f"purpose {name!r} of {owner} is already declared by {_OWNERS[name]} "
                             f"(code {PURPOSES[name]}); choose another name")
        if codes.get(code, name) != name:
            raise ValueError(f"purpose {name!r} of {owner} has code {code}, already the code of "
                             f"{codes[code]!r} ({_OWNERS[codes[code]]}); choose another name or code")
        PURPOSES[name], _OWNERS[name], codes[code] = code, owner, name
        out[name] = code
    return out


def _code(purpose: str) -> int:
    try:
        return PURPOSES[purpose]
    except KeyError:
        raise KeyError(f"unknown random-stream purpose {purpose!r}: declare it with "
                       "fractaldb.seeds.declare_purposes where it is used") from None


def _sequence(seed: int, purpose: str, ids) -> np.random.SeedSequence:
    return np.random.SeedSequence(int(seed), spawn_key=(_code(purpose), *(int(i) for i in ids)))


def stream_key(seed: int, purpose: str, *ids: int) -> np.uint64:
    """A 64-bit key for the in-kernel counter-based stream (splitmix64).

    ``SeedSequence(seed, spawn_key=(purpose code, *ids)).generate_state(1, uint64)[0]``;
    when the seed and every id fit in 32 bits (always, in practice) computed by
    :func:`_mixed_key`, the same mixing compiled (a few hundred times faster
    than building a SeedSequence, which every block of every shard does).
    """
    words = [int(seed), _code(purpose), *(int(i) for i in ids)]
    if len(words) <= 16 and all(0 <= w <= _M32 for w in words):
        buf = np.array(words + [0] * (16 - len(words)), dtype=np.uint32)
        return np.uint64(_mixed_key(buf, len(words)))
    return _sequence(seed, purpose, ids).generate_state(1, np.uint64)[0]


def int_seed(seed: int, purpose: str, *ids: int) -> int:
    """A plain int seed (for Python's ``random.Random``) for the stream."""
    return int(_sequence(seed, purpose, ids).generate_state(1, np.uint64)[0])


def generator(seed: int, purpose: str, *ids: int) -> np.random.Generator:
    """A NumPy ``Generator`` (PCG64) for the stream."""
    return np.random.Generator(np.random.PCG64(_sequence(seed, purpose, ids)))


# NumPy's SeedSequence constants (numpy/random/bit_generator.pyx), for stream_keys.
_POOL = 4
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R = 0xCA01F9DD, 0x4973F715
_M32 = 0xFFFFFFFF


def _words(n: int) -> list:
    """An int as SeedSequence coerces it: 32-bit words, least significant first (0 -> [0])."""
    out = [n & _M32]
    n >>= 32
    while n:
        out.append(n & _M32)
        n >>= 32
    return out


def _hash_consts(count: int, init: int, mult: int) -> list:
    """``init * mult**t`` (mod 2**32) for ``t < count``: the hash constants SeedSequence steps through."""
    out, h = [], init
    for _ in range(count):
        out.append(np.uint32(h))
        h = (h * mult) & _M32
    return out


def _xorshift(v):
    return v ^ (v >> np.uint32(16))


def stream_keys(seed: int, purpose: str, ids) -> np.ndarray:
    """``stream_key(seed, purpose, *row)`` for every row of ``ids``, vectorised.

    Runs SeedSequence's entropy mixing and ``generate_state(1, uint64)`` on
    whole columns of uint32 words at once, so a few thousand keys cost about
    as much as a handful of :func:`stream_key` calls, and each key is the one
    :func:`stream_key` gives (``tests/test_seeds.py`` compares them).

    Args:
        seed: the dataset seed (a non-negative int).
        purpose: a key of :data:`PURPOSES`.
        ids: ``(n, k)`` integers, each row the ids of one stream.

    Returns:
        ``(n,)`` uint64 keys.
    """
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError(f"ids must be a 2-D array of stream ids, got shape {ids.shape}")
    n = ids.shape[0]
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    if ids.size and (ids.min() < 0 or ids.max() > _M32):
        # Ids of several words (or invalid ones): SeedSequence itself decides.
        return np.array([stream_key(seed, purpose, *row) for row in ids.tolist()], dtype=np.uint64)
    run = _words(int(seed))
    run += [0] * (_POOL - len(run))  # the spawn key is never empty: padded to the pool size
    consts = [np.full(n, w, dtype=np.uint32) for w in run + _words(_code(purpose))]
    entropy = consts + [ids[:, c].astype(np.uint32) for c in range(ids.shape[1])]
    n_hash = _POOL + _POOL * (_POOL - 1) + (len(entropy) - _POOL) * _POOL
    ha = _hash_consts(n_hash + 1, _INIT_A, _MULT_A)
    step = iter(range(n_hash))

    def hashmix(value):  # SeedSequence's hashmix, its t-th call
        t = next(step)
        return _xorshift((value ^ ha[t]) * ha[t + 1])

    def mix(x, y):
        return _xorshift(np.uint32(_MIX_L) * x - np.uint32(_MIX_R) * y)

    with np.errstate(over="ignore"):
        pool = [hashmix(entropy[i]) for i in range(_POOL)]
        for src in range(_POOL):
            for dst in range(_POOL):
                if src != dst:
                    pool[dst] = mix(pool[dst], hashmix(pool[src]))
        for src in range(_POOL, len(entropy)):
            for dst in range(_POOL):
                pool[dst] = mix(pool[dst], hashmix(entropy[src]))
        # generate_state(1, uint64): two 32-bit words from pool[0] and pool[1], low word first.
        hb = _hash_consts(3, _INIT_B, _MULT_B)
        state = [_xorshift((pool[k] ^ hb[k]) * hb[k + 1]).astype(np.uint64) for k in range(2)]
    return state[0] | (state[1] << np.uint64(32))


@kernel
def _mixed_key(words, n):
    """:func:`stream_key` of ``words[:n]`` = (seed, purpose code, ids...), each one
    32-bit word: SeedSequence's entropy (the seed padded to the pool size, then
    the spawn key), its ``mix_entropy`` and ``generate_state(1, uint64)``, in
    uint32 arithmetic (tests/test_seeds.py compares it with NumPy's)."""
    m32 = np.uint64(0xFFFFFFFF)
    entropy = np.zeros(n + _POOL - 1, dtype=np.uint64)
    entropy[0] = words[0]  # the seed, then zeros up to the pool size
    for i in range(1, n):
        entropy[_POOL - 1 + i] = words[i]
    ne = n + _POOL - 1
    hc = np.uint64(_INIT_A)
    pool = np.zeros(_POOL, dtype=np.uint64)

    def hashmix(value, hc):
        value = (value ^ hc) & m32
        hc = (hc * np.uint64(_MULT_A)) & m32
        value = (value * hc) & m32
        value ^= value >> np.uint64(16)
        return value, hc

    def mix(x, y):
        # L x - R y mod 2**32, as L x + (2**32 - R) y: no unsigned wrap-around (NumPy warns of one)
        r = (((np.uint64(_MIX_L) * x) & m32) + ((np.uint64(2**32 - _MIX_R) * y) & m32)) & m32
        return r ^ (r >> np.uint64(16))

    for i in range(_POOL):
        pool[i], hc = hashmix(entropy[i], hc)
    for src in range(_POOL):
        for dst in range(_POOL):
            if src != dst:
                h, hc = hashmix(pool[src], hc)
                pool[dst] = mix(pool[dst], h)
    for src in range(_POOL, ne):
        for dst in range(_POOL):
            h, hc = hashmix(entropy[src], hc)
            pool[dst] = mix(pool[dst], h)
    hb = np.uint64(_INIT_B)
    out = np.uint64(0)
    for k in range(2):
        v = (pool[k] ^ hb) & m32
        hb = (hb * np.uint64(_MULT_B)) & m32
        v = (v * hb) & m32
        v ^= v >> np.uint64(16)
        out |= v << np.uint64(32 * k)
    return out
