"""The stages every stream shares: each an iterator in, an iterator out.

A stream (:mod:`fractaldb.data`) is one **source** stage -- shards read from
storage, or blocks rendered on the fly on the CPU or the GPU -- followed by the
same stages in the same order::

    source (this rank's and worker's share of the epoch)
    -> shuffled   a seeded shuffle buffer (seed, purpose, epoch, rank, worker)
    -> decoded    the sample as training wants it (image tensor, target)
    -> batched    optional: batches of ``batch_size``
    -> capped     optional: at most ``epoch_size`` items, the source repeated if short

Nothing here knows where samples come from.
"""

from __future__ import annotations

import os
import random
from itertools import islice

import torch

from ..seeds import int_seed

__all__ = ["worker_info", "Epoch", "shuffled", "capped", "batched", "consumer_rng", "handled"]


def worker_info() -> tuple:
    """``(rank, world_size, worker, num_workers)`` of the calling process."""
    rank, world = 0, 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    elif "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    info = torch.utils.data.get_worker_info()
    worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
    return rank, world, worker, workers


class Epoch:
    """A mutable epoch shared by a stream's stages (``set_epoch``)."""

    def __init__(self):
        self.value = 0


def consumer_rng(seed: int, purpose: str, epoch: int) -> random.Random:
    """The ``random.Random`` of this (epoch, rank, DataLoader worker) for ``purpose``."""
    rank, _, worker, _ = worker_info()
    return random.Random(int_seed(seed, purpose, epoch, rank, worker))


def shuffled(items, bufsize: int, rng: random.Random):
    """A shuffle buffer of ``bufsize`` items: once full, each new item swaps a random one
    out; the rest leave in a shuffled order at the end.  ``bufsize`` 1 keeps the order."""
    buf = []
    for item in items:
        buf.append(item)
        if len(buf) >= bufsize:
            k = rng.randrange(len(buf))
            buf[k], buf[-1] = buf[-1], buf[k]
            yield buf.pop()
    rng.shuffle(buf)
    yield from buf


def handled(items, fn, handler):
    """``fn(item)`` for each item; an exception goes to ``handler(exc)``, which raises, returns
    True to skip the item, or False to end the stream (webdataset's handler convention)."""
    for item in items:
        try:
            out = fn(item)
        except Exception as exc:  # noqa: BLE001 - the handler decides
            if handler(exc):
                continue
            return
        yield out


def batched(items, batch_size: int, collate):
    """Lists of ``batch_size`` items through ``collate``; a last, shorter batch is kept."""
    items = iter(items)
    while True:
        batch = list(islice(items, batch_size))
        if not batch:
            return
        yield collate(batch)


def capped(make_items, n: int | None, repeat: bool = True):
    """At most ``n`` items of ``make_items()``; with ``repeat``, calling it again whenever
    it runs dry (a finite source is repeated to fill an epoch; an empty one ends it).
    All of one pass when ``n`` is None."""
    if n is None:
        yield from make_items()
        return
    if not repeat:
        yield from islice(make_items(), n)
        return
    count = 0
    while count < n:
        before = count
        for item in make_items():
            yield item
            count += 1
            if count >= n:
                return
        if count == before:
            return
