"""Streaming into training loops (SPEC 3): the shard loader and the on-the-fly ``FractalStream``.

* ``shard_dataset(resampled=False)`` splits shards by node (webdataset's
  ``split_by_node`` reads ``RANK``/``WORLD_SIZE``) and then by worker: ranks
  get disjoint shard sets that cover everything.
* ``shard_dataset(resampled=True)`` is a deterministic stream per (seed, rank).
* ``FractalStream`` renders the same 48 images as the shards, each exactly
  once per epoch, for any worker count and any number of (simulated) ranks;
  its order depends on the epoch and is repeatable.
"""

from __future__ import annotations

import io
import tarfile
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

import fractaldb.data as fdata
from fractaldb.data import FractalStream, shard_dataset, shard_urls

from tinyset import TINY_SAMPLES, TINY_SHARDS


@pytest.fixture(autouse=True)
def single_process(monkeypatch):
    """No distributed environment leaks in from the caller."""
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "WORKER", "NUM_WORKERS"):
        monkeypatch.delenv(var, raising=False)


def pixels(img: Image.Image) -> bytes:
    return np.asarray(img.convert("L")).tobytes()


@pytest.fixture(scope="module")
def shard_contents(tiny):
    """``{shard name: Counter((label, gray pixel bytes))}`` read straight from the tars."""
    out = {}
    for name in TINY_SHARDS:
        c = Counter()
        with tarfile.open(tiny / name) as tar:
            parts = {}
            for m in tar:
                key, _, ext = m.name.partition(".")
                parts.setdefault(key, {})[ext] = tar.extractfile(m).read()
        for p in parts.values():
            c[(int(p["cls"]), pixels(Image.open(io.BytesIO(p["png"]))))] += 1
        out[name] = c
    return out


def collect(ds, **loader):
    """``[(label, gray pixel bytes)]`` from a dataset of (uint8 tensor (3,H,W), label)."""
    if loader:
        ds = torch.utils.data.DataLoader(ds, batch_size=None, **loader)
    out = []
    for img, label in ds:
        assert isinstance(img, torch.Tensor) and img.dtype == torch.uint8 and img.shape == (3, 64, 64)
        assert torch.equal(img[0], img[1]) and torch.equal(img[0], img[2])  # gray repeated
        out.append((int(label), img[0].numpy().tobytes()))
    return out


# --------------------------------------------------------------------------- shard_dataset


def test_shard_urls(tiny):
    urls = shard_urls(tiny)
    assert [u.rsplit("/", 1)[-1] for u in urls] == TINY_SHARDS
    assert shard_urls(urls) == urls
    assert shard_urls(str(tiny / TINY_SHARDS[0])) == [str(tiny / TINY_SHARDS[0])]


def test_one_pass_reads_every_sample_once(tiny, shard_contents):
    got = Counter(collect(shard_dataset(tiny, resampled=False, shuffle=0)))
    assert got == sum(shard_contents.values(), Counter())
    assert sum(got.values()) == TINY_SAMPLES


@pytest.mark.parametrize("resampled", [False, True])
@pytest.mark.parametrize("whole", [True, False])
def test_every_shard_file_is_closed(tiny, resampled, whole):
    # webdataset leaves each opened shard to the garbage collector (the transfer study printed a
    # ResourceWarning per shard); a pass read to its end, or left after one sample, closes them.
    import gc
    import warnings

    gc.collect()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", ResourceWarning)
        it = iter(shard_dataset(tiny, resampled=resampled, shuffle=0, epoch_size=TINY_SAMPLES if resampled else None))
        if whole:
            assert sum(1 for _ in it) == TINY_SAMPLES
        else:
            next(it)
        del it
        gc.collect()
    assert [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)] == []


def _shards_of(samples, shard_contents) -> set:
    """The shards a list of samples came from (every sample must come from whole shards)."""
    got = Counter(samples)
    names = set()
    for name, c in shard_contents.items():
        if all(got[k] >= n for k, n in c.items()):
            names.add(name)
    assert sum((shard_contents[n] for n in names), Counter()) == got, "samples are not whole shards"
    return names


@pytest.mark.parametrize("num_workers", [0, 2])
def test_ranks_get_disjoint_shards_that_cover_everything(tiny, shard_contents, monkeypatch, num_workers):
    per_rank = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        ds = shard_dataset(tiny, resampled=False, shuffle=0)
        samples = collect(ds, num_workers=num_workers) if num_workers else collect(ds)
        per_rank.append(_shards_of(samples, shard_contents))
    assert per_rank[0] and per_rank[1]
    assert per_rank[0].isdisjoint(per_rank[1])
    assert per_rank[0] | per_rank[1] == set(TINY_SHARDS)


def test_workers_split_the_shards_of_a_rank(tiny, shard_contents):
    samples = collect(shard_dataset(tiny, resampled=False, shuffle=0), num_workers=2)
    assert Counter(samples) == sum(shard_contents.values(), Counter())


def test_resampled_is_deterministic_per_seed_and_rank(tiny, monkeypatch):
    def labels(seed=3, **kw):
        return [lab for lab, _ in collect(shard_dataset(tiny, seed=seed, epoch_size=20, **kw))]

    a, b = labels(), labels()
    assert len(a) == 20
    assert a == b
    assert set(a) <= {0, 1, 2, 3}
    assert labels(seed=4) != a
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    r1 = labels()
    assert r1 == labels()
    assert r1 != a


def test_resampled_epoch_size_and_batches(tiny):
    # epoch_size counts samples (per worker), also when batching in the pipeline.
    ds = shard_dataset(tiny, seed=0, epoch_size=20, batch_size=4)
    batches = list(ds)
    assert len(batches) == 5
    for images, labels in batches:
        assert images.shape == (4, 3, 64, 64) and images.dtype == torch.uint8
        assert np.asarray(labels).shape == (4,) and set(np.asarray(labels).tolist()) <= {0, 1, 2, 3}


def test_set_epoch_changes_the_resampled_shuffle(tiny):
    def run(epoch):
        ds = shard_dataset(tiny, seed=3, epoch_size=20)
        ds.set_epoch(epoch)
        return collect(ds)

    assert run(0) == run(0)
    assert run(1) != run(0)


def test_resampled_same_epoch_twice_is_repeatable(tiny):
    ds = shard_dataset(tiny, seed=3, epoch_size=40, shuffle=0)
    ds.set_epoch(0)
    first = collect(ds)
    ds.set_epoch(0)
    assert collect(ds) == first


def test_resampled_set_epoch_changes_the_shard_draw_in_workers(tiny):
    def run(epoch):
        ds = shard_dataset(tiny, seed=3, epoch_size=48, shuffle=0)
        ds.set_epoch(epoch)
        return collect(ds, num_workers=2)

    assert run(1) != run(0)


# --------------------------------------------------------------------------- FractalStream


@pytest.fixture(scope="module")
def stream():
    return FractalStream("tiny")


@pytest.fixture
def fresh(stream):
    stream.set_epoch(0)
    yield stream
    stream.set_epoch(0)


def test_stream_basics(fresh):
    assert len(fresh) == TINY_SAMPLES
    assert fresh.num_classes == 4
    assert isinstance(fresh, torch.utils.data.IterableDataset)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_stream_yields_every_sample_once_per_epoch(fresh, shard_contents, num_workers):
    got = collect(fresh, num_workers=num_workers)
    assert len(got) == TINY_SAMPLES
    # the same images, with the same labels, as the shards on disk
    assert Counter(got) == sum(shard_contents.values(), Counter())


def test_stream_order_depends_on_the_epoch_and_repeats(fresh):
    e0 = collect(fresh)
    assert collect(fresh) == e0
    fresh.set_epoch(1)
    e1 = collect(fresh)
    assert e1 != e0
    assert Counter(e1) == Counter(e0)
    assert collect(fresh) == e1
    fresh.set_epoch(0)
    assert collect(fresh) == e0


def test_stream_with_workers_repeats_per_epoch(fresh):
    a = collect(fresh, num_workers=2)
    assert collect(fresh, num_workers=2) == a
    fresh.set_epoch(1)
    b = collect(fresh, num_workers=2)
    assert b != a and Counter(b) == Counter(a)


@pytest.mark.parametrize("world,workers", [(2, 1), (2, 2), (3, 1)])
def test_stream_ranks_and_workers_are_disjoint_and_cover_everything(fresh, monkeypatch, world, workers):
    everything = Counter(collect(fresh))
    parts = []
    for rank in range(world):
        for worker in range(workers):
            monkeypatch.setattr(fdata.stages, "worker_info", lambda r=rank, w=worker: (r, world, w, workers))
            parts.append(Counter(collect(fresh)))
    total = sum(parts, Counter())
    assert total == everything
    assert set(total.values()) == {1}
    for i in range(len(parts)):
        for j in range(i + 1, len(parts)):
            assert not (set(parts[i]) & set(parts[j]))


def test_stream_epoch_size_caps_each_worker(fresh):
    capped = FractalStream(dataset=fresh.dataset, epoch_size=5)
    got = collect(capped)
    assert len(got) == 5
    assert set(got) <= set(collect(fresh))


def test_stream_transform(fresh):
    s = FractalStream(dataset=fresh.dataset, transform=lambda img: img.size)
    sizes = [x for x, _ in s]
    assert sizes == [(64, 64)] * TINY_SAMPLES
