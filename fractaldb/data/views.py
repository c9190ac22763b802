"""The view sampler: one random view of each multi-view object per epoch.

A family whose blocks are several views of one object (its bound family's
:attr:`~fractaldb.families.base.BoundFamily.block_views`) stores every view as a
sample.  Trained on all of them, an epoch shows each object ``images_per_block``
times; the 3-D OFDB loader (ryoo-nakamura/OFDB ``data.py``, ``ExFractal_dataset``)
instead draws **one random image of each category folder** per visit.  This
stage does that for the shard reader and the on-the-fly streams:

* ``per="class"``: one image of each class per epoch, drawn uniformly from all its
  blocks' views (the original's per-category draw; with one instance per class,
  as 3-D OFDB, that is one of its views);
* ``per="instance"``: one view of each (class, block) per epoch.

The choice is a pure function of (seed, epoch, class[, block]) --
``stream_key(seed, "view-sample", epoch, group)`` -- so every rank and loader
worker agrees on it without talking, a sample is kept or dropped by looking at
its own metadata, and a run is repeatable (the original's is unseeded).
Families whose blocks are not views pass unchanged.
"""

from __future__ import annotations

import json

import numpy as np

from ..errors import ConfigError, InputError
from ..families.base import VIEW_SAMPLING
from ..seeds import declare_purposes, stream_key

__all__ = ["VIEW_SAMPLING", "ViewSampler", "view_sampler", "sampled"]

PURPOSES = declare_purposes("data", {"view-sample": None})  # (epoch, group): the view drawn


class ViewSampler:
    """Which views of a dataset's multi-view families an epoch keeps.

    Args:
        dataset: the :class:`~fractaldb.dataset.Dataset` (its plan and bound families).
        per: ``class`` or ``instance``.
        seed: the stream's seed.

    Raises:
        ConfigError: an unknown ``per``, or no family of the dataset stores views.
    """

    def __init__(self, dataset, per: str, seed: int):
        if per not in VIEW_SAMPLING[1:]:
            raise ConfigError(f"view sampling must be one of {', '.join(VIEW_SAMPLING)}, got {per!r}")
        self.per, self.seed = per, int(seed)
        self.segments = {s.family: (i, s) for i, s in enumerate(dataset.plan.segments)
                         if dataset.part(s.family).block_views and s.n_blocks}
        if not self.segments:
            raise ConfigError(f"view sampling {per!r} needs a dataset whose images are views of one object "
                              f"(families: {', '.join(dataset.parts)} store none); use view sampling 'all'")
        self.parts = {name: dataset.part(name) for name in self.segments}
        self._epoch, self._chosen = None, {}

    def _choice(self, epoch: int, family: str, klass: int, block: int) -> int:
        """The candidate drawn for the group of ``(klass, block)`` in ``epoch``: an index
        into the class's ``blocks x views`` (per class) or the block's views (per instance)."""
        if epoch != self._epoch:
            self._epoch, self._chosen = epoch, {}
        s, seg = self.segments[family]
        group = (s, klass) if self.per == "class" else (s, klass, block)
        hit = self._chosen.get(group)
        if hit is None:
            n = seg.images_per_block * (seg.blocks_per_class if self.per == "class" else 1)
            draw = int(stream_key(self.seed, "view-sample", epoch, *group)) >> 32
            hit = self._chosen[group] = (draw * n) >> 32  # multiply-shift: uniform in 0..n-1
        return hit

    def offsets(self, family: str, klass: int, block: int, epoch: int) -> list | None:
        """The offsets of block ``(klass, block)`` that epoch ``epoch`` keeps: ``[view]``
        or ``[]``; None for a family whose blocks are not views (keep them all)."""
        if family not in self.segments:
            return None
        c = self._choice(epoch, family, klass, block)
        per = self.segments[family][1].images_per_block
        if self.per == "class":
            b, c = divmod(c, per)
            if b != block:
                return []
        return [c]

    def epoch_samples(self, plan) -> int:
        """Samples one pass over ``plan`` yields with this sampler."""
        total = 0
        for seg in plan.segments:
            if seg.family not in self.segments:
                total += seg.n_samples
            else:
                total += seg.classes * (1 if self.per == "class" else seg.blocks_per_class)
        return total

    def keep(self, sample: dict, epoch: int) -> bool:
        """Whether a raw shard sample (webdataset's dict of members) is this epoch's view.
        Its ``.json`` member says the family and, through the family, the class, block and
        view; read as untrusted (bounded, checked)."""
        where = f"{sample.get('__url__', 'a shard')}: sample {sample.get('__key__')}"
        raw = sample.get("json")
        if not isinstance(raw, (bytes, bytearray)) or len(raw) > 1 << 16:
            raise InputError(f"{where} has no readable .json member (view sampling reads it); the shard is "
                             "damaged, regenerate it")
        try:
            meta = json.loads(raw)
            family = meta["family"]
        except (ValueError, TypeError, KeyError, RecursionError):
            raise InputError(f"{where}: its .json member is not the metadata fractaldb writes; the shard is "
                             "damaged, regenerate it") from None
        if family not in self.segments:
            return True
        seg = self.segments[family][1]
        pos = self.parts[family].sample_position(meta)
        if not (isinstance(pos, tuple) and len(pos) == 3 and all(_int(v) for v in pos)
                and 0 <= pos[0] < seg.classes and 0 <= pos[1] < seg.blocks_per_class
                and 0 <= pos[2] < seg.images_per_block):
            raise InputError(f"{where}: its .json metadata names no sample of this dataset ({family}); the shard "
                             "is damaged or from another dataset, regenerate it")
        klass, block, offset = pos
        return offset in self.offsets(family, klass, block, epoch)


def _int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def view_sampler(dataset, per: str, seed: int) -> ViewSampler | None:
    """A :class:`ViewSampler`, or None for ``per="all"`` (or None).

    Raises:
        ConfigError: an unknown value; ``class``/``instance`` without a dataset (shard URLs
            carry no plan) or with no multi-view family.
    """
    if per in (None, "all"):
        return None
    if per not in VIEW_SAMPLING:
        raise ConfigError(f"view sampling must be one of {', '.join(VIEW_SAMPLING)}, got {per!r}")
    if dataset is None:
        raise ConfigError(f"view sampling {per!r} needs the dataset's manifest: pass the dataset folder or URL, "
                          "not shard URLs")
    return ViewSampler(dataset, per, seed)


def sampled(items, sampler: ViewSampler, epoch: int, handler):
    """The stage: raw shard samples of this epoch's views only (the others are dropped before
    they are decoded); a damaged sample goes to ``handler`` (raise, skip, or end the stream)."""
    for item in items:
        try:
            keep = sampler.keep(item, epoch)
        except Exception as exc:  # noqa: BLE001 - the handler decides
            if handler(exc):
                continue
            return
        if keep:
            yield item
