"""Every random stream, derived from (dataset seed, purpose, ids...).

No library code touches a global RNG.  A stream is named by its purpose and
the ids of what it draws for (category, weight, patch draw, ...), so any one
sample can be regenerated alone, on any worker, in any order.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PURPOSES", "stream_key", "int_seed", "generator"]

#: Purpose codes: part of every stream's identity.  Never renumber them: that
#: would change every dataset generated so far.
PURPOSES = {
    "search-candidate": 1,  # parameters of a modern/svd search candidate
    "search-points": 2,     # chaos-game uniforms of a search candidate
    "render-points": 3,     # chaos-game uniforms of a render (category, weight)
    "render-patches": 4,    # patch masks of a render (category, weight, draw)
    "plan-blocks": 5,       # order of the (category, weight) blocks across shards
    "plan-shard": 6,        # order of the samples inside one shard
    "stream-epoch": 7,      # block order of one epoch of the on-the-fly stream
    "stream-shuffle": 8,    # sample shuffle buffer of the on-the-fly stream (epoch, rank, worker)
    "loader-shuffle": 9,    # sample shuffle buffer of the shard loader (epoch, rank, worker)
    "loader-shards": 10,    # resampled shard draw of the shard loader (epoch, rank, worker)
    "perlin-instance": 11,  # gradient lattice and offsets of a Perlin instance (class, instance)
    "perlin-classes": 12,   # the Perlin class search (candidate)
    "train": 13,            # model init and data order of pretrain/finetune (run seed, ...)
    "experiment": 14,       # sampling inside 'fractaldb experiment' (seed, ...)
}


def _sequence(seed: int, purpose: str, ids) -> np.random.SeedSequence:
    return np.random.SeedSequence(int(seed), spawn_key=(PURPOSES[purpose], *(int(i) for i in ids)))


def stream_key(seed: int, purpose: str, *ids: int) -> np.uint64:
    """A 64-bit key for the in-kernel counter-based stream (splitmix64)."""
    return _sequence(seed, purpose, ids).generate_state(1, np.uint64)[0]


def int_seed(seed: int, purpose: str, *ids: int) -> int:
    """A plain int seed (for Python's ``random.Random``) for the stream."""
    return int(_sequence(seed, purpose, ids).generate_state(1, np.uint64)[0])


def generator(seed: int, purpose: str, *ids: int) -> np.random.Generator:
    """A NumPy ``Generator`` (PCG64) for the stream."""
    return np.random.Generator(np.random.PCG64(_sequence(seed, purpose, ids)))
