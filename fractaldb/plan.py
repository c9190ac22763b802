"""The plan: which samples go into which shard, as a pure function of the config.

Samples come in blocks.  A fractal block is one (category, weight): its
``draws x flips`` images share one chaos game.  A Perlin block is one
(class, instance): a single image.  All blocks are shuffled with a seeded
permutation and laid end to end; shard ``i`` takes samples
``[i * S, (i + 1) * S)`` of that sequence (S = ``shard_size``) and shuffles
them within the shard.  So every shard mixes many classes (and both families
of a mixed dataset), a streaming shuffle buffer sees many classes at once,
and shard ``i`` depends only on (config, i): any worker can make it alone,
in any order, and it always has the same bytes.

Labels: fractal categories are ``0 .. K-1``; Perlin classes follow as
``K .. K+P-1``, so the two families never collide.
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

    category: int          # the label (fractal category, or K + Perlin class)
    weight: int            # fractal: row of the weight table (Perlin: 0)
    draw: int              # fractal: patch re-draw (Perlin: 0)
    flip: int              # fractal: orientation (Perlin: 0)
    family: str = "fractal"
    instance: int = 0      # Perlin: the instance of its class

    @property
    def block(self) -> tuple:
        """What one render produces: (category, weight) or (label, instance)."""
        return (self.category, self.instance if self.family == "perlin" else self.weight)


@dataclass(frozen=True)
class Plan:
    """Block layout and shard assignment of a dataset.

    The fractal part has ``n_categories x n_weights`` blocks of
    ``draws x flips`` images; the Perlin part ``perlin_classes x
    perlin_instances`` blocks of one image.
    """

    n_categories: int
    n_weights: int
    draws: int
    flips: int
    shard_size: int
    seed: int
    perlin_classes: int = 0
    perlin_instances: int = 0

    @property
    def images_per_block(self) -> int:
        """Images of a fractal block."""
        return self.draws * self.flips

    @property
    def n_fractal_blocks(self) -> int:
        return self.n_categories * self.n_weights

    @property
    def n_blocks(self) -> int:
        return self.n_fractal_blocks + self.perlin_classes * self.perlin_instances

    @property
    def n_samples(self) -> int:
        return self.n_fractal_blocks * self.images_per_block + self.perlin_classes * self.perlin_instances

    @property
    def n_classes(self) -> int:
        return self.n_categories + self.perlin_classes

    @property
    def n_shards(self) -> int:
        return math.ceil(self.n_samples / self.shard_size)

    @cached_property
    def block_order(self) -> np.ndarray:
        """The shuffled block sequence (fractal block id = category * n_weights + weight;
        Perlin block ids follow: n_fractal_blocks + class * perlin_instances + instance)."""
        return generator(self.seed, "plan-blocks").permutation(self.n_blocks)

    @cached_property
    def _block_ends(self) -> np.ndarray | None:
        """Cumulative sample count along ``block_order`` (None when all blocks are equal)."""
        if self.perlin_classes == 0 or self.n_fractal_blocks == 0 or self.images_per_block == 1:
            return None
        sizes = np.where(self.block_order < self.n_fractal_blocks, self.images_per_block, 1)
        return np.cumsum(sizes)

    def shard_length(self, index: int) -> int:
        self._check(index)
        return min(self.shard_size, self.n_samples - index * self.shard_size)

    def _locate(self, g: int) -> tuple:
        """(block id, offset in the block) of global sample position ``g``."""
        ends = self._block_ends
        if ends is None:
            per = self.images_per_block if self.n_fractal_blocks else 1
            return int(self.block_order[g // per]), g % per
        k = int(np.searchsorted(ends, g, side="right"))
        start = int(ends[k - 1]) if k else 0
        return int(self.block_order[k]), g - start

    def sample(self, block: int, offset: int) -> Sample:
        """The sample at ``offset`` of block ``block``."""
        if block < self.n_fractal_blocks:
            category, weight = divmod(block, self.n_weights)
            draw, flip = divmod(offset, self.flips)
            return Sample(category, weight, draw, flip)
        klass, instance = divmod(block - self.n_fractal_blocks, self.perlin_instances)
        return Sample(self.n_categories + klass, 0, 0, 0, family="perlin", instance=instance)

    def shard_samples(self, index: int) -> list:
        """The samples of shard ``index`` in their order inside the shard."""
        self._check(index)
        start = index * self.shard_size
        n = self.shard_length(index)
        order = generator(self.seed, "plan-shard", index).permutation(n)
        return [self.sample(*self._locate(start + j)) for j in order.tolist()]

    def _check(self, index: int) -> None:
        if not 0 <= index < self.n_shards:
            raise IndexError(f"shard {index} out of range 0..{self.n_shards - 1}")
