"""The plan: which samples go into which shard, as a pure function of the config.

Samples come in (category, weight) blocks of ``draws x flips`` images that
share one chaos game.  The blocks are shuffled with a seeded permutation and
laid end to end; shard ``i`` takes samples ``[i * S, (i + 1) * S)`` of that
sequence (S = ``shard_size``) and shuffles them within the shard.  So every
shard mixes many classes, a streaming shuffle buffer sees many classes at
once, and shard ``i`` depends only on (config, i): any worker can make it
alone, in any order, and it always has the same bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .seeds import generator

__all__ = ["Plan", "Sample"]


@dataclass(frozen=True)
class Sample:
    """One image of the dataset."""

    category: int     # position in the category list (the label)
    weight: int       # row of the weight table
    draw: int         # patch re-draw
    flip: int         # orientation

    @property
    def block(self) -> tuple:
        return (self.category, self.weight)


@dataclass(frozen=True)
class Plan:
    """Block layout and shard assignment of a dataset."""

    n_categories: int
    n_weights: int
    draws: int
    flips: int
    shard_size: int
    seed: int

    @property
    def images_per_block(self) -> int:
        return self.draws * self.flips

    @property
    def n_blocks(self) -> int:
        return self.n_categories * self.n_weights

    @property
    def n_samples(self) -> int:
        return self.n_blocks * self.images_per_block

    @property
    def n_shards(self) -> int:
        return math.ceil(self.n_samples / self.shard_size)

    @cached_property
    def block_order(self) -> np.ndarray:
        """The shuffled block sequence (block id = category * n_weights + weight)."""
        return generator(self.seed, "plan-blocks").permutation(self.n_blocks)

    def shard_length(self, index: int) -> int:
        self._check(index)
        return min(self.shard_size, self.n_samples - index * self.shard_size)

    def shard_samples(self, index: int) -> list:
        """The samples of shard ``index`` in their order inside the shard."""
        self._check(index)
        start = index * self.shard_size
        n = self.shard_length(index)
        order = generator(self.seed, "plan-shard", index).permutation(n)
        per = self.images_per_block
        out = []
        for j in order.tolist():
            g = start + j
            block = int(self.block_order[g // per])
            offset = g % per
            category, weight = divmod(block, self.n_weights)
            draw, flip = divmod(offset, self.flips)
            out.append(Sample(category, weight, draw, flip))
        return out

    def _check(self, index: int) -> None:
        if not 0 <= index < self.n_shards:
            raise IndexError(f"shard {index} out of range 0..{self.n_shards - 1}")
