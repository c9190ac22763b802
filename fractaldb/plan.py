"""The plan: which samples go into which shard, as a pure function of the config.

A dataset is a list of **segments**, one per family, laid end to end: segment
``s`` has ``classes x blocks_per_class`` blocks of ``images_per_block``
images, and its labels start at ``label_offset`` (the classes of the segments
before it).  A block is what one render produces: for the fractal family one
(category, weight) with its ``draws x flips`` images; for Perlin noise one
(class, instance), a single image.

All blocks are shuffled with a seeded permutation and laid end to end; shard
``i`` takes samples ``[i * S, (i + 1) * S)`` of that sequence (S =
``shard_size``) and shuffles them within the shard.  So every shard mixes many
classes (and every family of a mixed dataset), a streaming shuffle buffer sees
many classes at once, and shard ``i`` depends only on (config, i): any worker
can make it alone, in any order, and it always has the same bytes.

Block ids: segment after segment, ``class * blocks_per_class + block`` within
a segment.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .seeds import generator

__all__ = ["Plan", "Sample", "Segment"]


@dataclass(frozen=True)
class Segment:
    """One family's part of a dataset."""

    family: str
    classes: int
    blocks_per_class: int
    images_per_block: int
    label_offset: int = 0
    #: Labels the family contributes when they are not its plan rows (``classes``):
    #: a family whose images are not made class by class (one row of images that
    #: each show several classes); None: one label per row.
    labels: int | None = None

    @property
    def n_labels(self) -> int:
        return self.classes if self.labels is None else self.labels

    def doc(self) -> dict:
        """The manifest's entry (``labels`` only where it differs from ``classes``)."""
        out = dataclasses.asdict(self)
        if self.labels is None:
            del out["labels"]
        return out

    @property
    def n_blocks(self) -> int:
        return self.classes * self.blocks_per_class

    @property
    def n_samples(self) -> int:
        return self.n_blocks * self.images_per_block


@dataclass(frozen=True)
class Sample:
    """One image of the dataset: its label, family, class within the family,
    block within the class and offset within the block."""

    label: int
    family: str
    klass: int
    block: int
    offset: int

    @property
    def block_id(self) -> tuple:
        """What one render produces: (family, class, block)."""
        return (self.family, self.klass, self.block)


@dataclass(frozen=True)
class Plan:
    """Block layout and shard assignment of a dataset."""

    segments: tuple
    shard_size: int
    seed: int

    @staticmethod
    def build(segments, shard_size: int, seed: int) -> "Plan":
        """A plan of ``(family, rows, blocks_per_class, images_per_block[, labels])`` segments
        (label offsets follow; ``labels`` defaults to ``rows``)."""
        out, offset = [], 0
        for family, rows, bpc, ipb, *labels in segments:
            labels = labels[0] if labels and labels[0] != rows else None
            seg = Segment(family, rows, bpc, ipb, offset, labels)
            out.append(seg)
            offset += seg.n_labels
        return Plan(tuple(out), shard_size, seed)

    @property
    def n_blocks(self) -> int:
        return sum(s.n_blocks for s in self.segments)

    @property
    def n_samples(self) -> int:
        return sum(s.n_samples for s in self.segments)

    @property
    def n_classes(self) -> int:
        """Labels of the dataset."""
        return sum(s.n_labels for s in self.segments)

    @property
    def n_shards(self) -> int:
        return math.ceil(self.n_samples / self.shard_size)

    def segment(self, family: str) -> Segment:
        return next(s for s in self.segments if s.family == family)

    @cached_property
    def _block_starts(self) -> np.ndarray:
        """First block id of each segment."""
        return np.cumsum([0] + [s.n_blocks for s in self.segments])

    @cached_property
    def block_order(self) -> np.ndarray:
        """The shuffled block sequence."""
        return generator(self.seed, "plan-blocks").permutation(self.n_blocks)

    @cached_property
    def _uniform(self) -> int | None:
        """Images per block when every non-empty segment has the same, else None."""
        sizes = {s.images_per_block for s in self.segments if s.n_blocks}
        return sizes.pop() if len(sizes) <= 1 and sizes else (1 if not sizes else None)

    @cached_property
    def _block_ends(self) -> np.ndarray:
        """Cumulative sample count along ``block_order`` (blocks of unequal sizes)."""
        seg = np.searchsorted(self._block_starts, self.block_order, side="right") - 1
        sizes = np.array([s.images_per_block for s in self.segments], dtype=np.int64)[seg]
        return np.cumsum(sizes)

    def shard_length(self, index: int) -> int:
        self._check(index)
        return min(self.shard_size, self.n_samples - index * self.shard_size)

    def _locate(self, g: int) -> tuple:
        """(block id, offset in the block) of global sample position ``g``."""
        per = self._uniform
        if per is not None:
            return int(self.block_order[g // per]), g % per
        ends = self._block_ends
        k = int(np.searchsorted(ends, g, side="right"))
        start = int(ends[k - 1]) if k else 0
        return int(self.block_order[k]), g - start

    def block(self, block_id: int) -> tuple:
        """``(segment, class, block within the class)`` of a global block id."""
        s = int(np.searchsorted(self._block_starts, block_id, side="right")) - 1
        seg = self.segments[s]
        klass, block = divmod(block_id - int(self._block_starts[s]), seg.blocks_per_class)
        return seg, klass, block

    def sample(self, block_id: int, offset: int) -> Sample:
        """The sample at ``offset`` of global block ``block_id``."""
        seg, klass, block = self.block(block_id)
        return Sample(seg.label_offset + klass, seg.family, klass, block, offset)

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
