"""Streaming into training loops (PyTorch).

Two sources, one shape of sample: ``(image, label)``.

* :func:`shard_dataset` / :func:`shard_loader` read the shards ``fractaldb
  generate`` wrote (a folder, any fsspec/webdataset URL, or a list of shard
  URLs) with webdataset.  ``resampled=True`` (the default, for training)
  draws shards with replacement from a stream seeded per (seed, rank, worker,
  epoch) and caps each worker's epoch with ``epoch_size``: every DDP rank and
  DataLoader worker sees its own stream, none waits for another.
  ``resampled=False`` visits each shard exactly once per epoch, split by node
  (``split_by_node``) and then by worker.
* :class:`FractalStream` renders samples inside the DataLoader workers, with
  no disk at all: each (rank, worker) renders a disjoint share of the
  (category, weight) blocks, in an order fixed by (seed, epoch), so streams
  never overlap and a run is repeatable.
* :class:`GPUFractalStream` renders whole batches on an NVIDIA GPU (numba-cuda)
  in the training process and hands them to PyTorch as CUDA tensors without
  a host copy (``__cuda_array_interface__``): the same images as
  :class:`FractalStream`, shuffled on the GPU.

Images come out as ``uint8`` tensors ``(3, H, W)`` unless a ``transform``
(a callable on a PIL image) is given.  Labels are ``int`` class indices;
for a dataset holding a multi-label family they are multi-hot ``float32``
vectors over all the dataset's classes (from each sample's
``.labels.json`` member, or the family's ``sample_labels`` on the fly).  This module needs PyTorch
(``pip install 'fractaldb[torch]'``); nothing else in fractaldb imports it.
"""

from __future__ import annotations

import io
import math
import random

try:
    import torch
    from torch.utils.data import IterableDataset
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError("fractaldb.data needs PyTorch: pip install 'fractaldb[torch]'") from exc

import numpy as np
from PIL import Image

from . import config as fconfig
from .dataset import Dataset, load_manifest
from .encode import FORMATS
from .errors import ConfigError, InputError
from .keys import LABEL_EXT, SHARD_SUFFIX
from .seeds import generator, int_seed
from .labels import CLASS, MULTI_HOT
from .storage import Store

__all__ = ["shard_urls", "multi_label_classes", "multi_hot", "shard_dataset", "shard_loader", "FractalStream", "GPUFractalStream", "stream",
           "render_device", "NO_RENDER_GPU", "worker_info", "to_tensor"]

_IMAGE_EXTS = FORMATS


def worker_info() -> tuple:
    """``(rank, world_size, worker, num_workers)`` of the calling process."""
    import os

    rank, world = 0, 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    elif "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    info = torch.utils.data.get_worker_info()
    worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
    return rank, world, worker, workers


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL image -> ``uint8`` tensor ``(3, H, W)`` (gray is repeated to 3 channels)."""
    arr = np.asarray(img.convert("RGB"))
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def shard_urls(source) -> list:
    """Shard URLs of a dataset folder/URL (via its manifest), or ``source`` as given."""
    if isinstance(source, (list, tuple)):
        return list(source)
    source = str(source)
    if source.endswith(SHARD_SUFFIX) or "{" in source:
        return [source]
    store = Store(source)
    manifest = load_manifest(store)
    if store.local:  # a cheap check where it is cheap: each shard's size against the manifest
        for e in manifest["shards"]:
            size = store.check_regular(e["name"])
            if size != e["bytes"]:
                raise InputError(f"{store.path(e['name'])}: {size} bytes, the manifest says {e['bytes']}; "
                                 f"run 'fractaldb verify {source}' and regenerate what it names")
    return [store.path(e["name"]) if store.local else f"{source.rstrip('/')}/{e['name']}"
            for e in manifest["shards"]]


class _Epoch:
    """A mutable epoch shared by the pipeline stages (``set_epoch``)."""

    def __init__(self):
        self.value = 0


def _shuffled(samples, bufsize: int, seed: int, epoch: _Epoch):
    rank, _, worker, _ = worker_info()
    rng = random.Random(int_seed(seed, "loader-shuffle", epoch.value, rank, worker))
    buf = []
    for s in samples:
        buf.append(s)
        if len(buf) >= bufsize:
            k = rng.randrange(len(buf))
            buf[k], buf[-1] = buf[-1], buf[k]
            yield buf.pop()
    rng.shuffle(buf)
    yield from buf


def _resampled(urls: list, seed: int, epoch: _Epoch):
    """Shards drawn with replacement, seeded per (seed, epoch, rank, worker).

    Our own stage rather than ``webdataset.ResampledShards``: that one seeds
    from its own iteration counter, which restarts in every DataLoader worker
    and ignores :meth:`set_epoch`.
    """
    rank, _, worker, _ = worker_info()
    rng = random.Random(int_seed(seed, "loader-shards", epoch.value, rank, worker))
    while True:
        yield {"url": urls[rng.randrange(len(urls))]}


def multi_hot(labels, num_classes: int) -> torch.Tensor:
    """``float32 (num_classes,)``: 1 at each of ``labels``, 0 elsewhere."""
    out = torch.zeros(num_classes, dtype=torch.float32)
    out[list(labels)] = 1.0
    return out


def _target(value):
    """A label kind's target as the loaders yield it: an int, or a tensor of its array."""
    return torch.from_numpy(value) if isinstance(value, np.ndarray) else value


def _decode(sample: dict, transform, kind=CLASS, num_classes: int | None = None):
    where = f"{sample.get('__url__', 'a shard')}: sample {sample.get('__key__')}"
    ext = next((e for e in _IMAGE_EXTS if e in sample), None)
    if ext is None or LABEL_EXT not in sample:
        raise InputError(f"{where} has no image or no .cls member; the shard is damaged, regenerate it")
    try:
        img = Image.open(io.BytesIO(sample[ext]))
        img.load()
        label = int(sample[LABEL_EXT])
    except (OSError, ValueError, SyntaxError, IndexError, TypeError, Image.DecompressionBombError) as exc:
        raise InputError(f"{where} cannot be decoded ({type(exc).__name__}); the shard is damaged, "
                         "regenerate it") from None
    return (transform or to_tensor)(img), _target(kind.decode(sample, label, num_classes, where))


def _handler(handler):
    """The webdataset error handler for ``handler=``: ``"raise"`` (a damaged shard or
    sample is one :class:`~fractaldb.errors.InputError` naming it), ``"warn"`` (warn
    and skip it, like ``webdataset.warn_and_continue``), or any webdataset handler."""
    if callable(handler):
        return handler
    if handler not in ("raise", "warn"):
        raise ConfigError(f"handler must be 'raise', 'warn' or a webdataset handler, got {handler!r}")

    def handle(exn):
        if isinstance(exn, InputError):
            message = str(exn)
        else:
            urls = [a for a in getattr(exn, "args", ()) if isinstance(a, str) and SHARD_SUFFIX in a]
            where = urls[-1] if urls else "a shard"
            why = exn.args[0] if exn.args and isinstance(exn.args[0], str) else str(exn)
            message = (f"{where} is not a readable shard ({type(exn).__name__}: {why[:120]}); "
                       "run 'fractaldb verify' on the dataset and regenerate what it names")
        if handler == "raise":
            raise InputError(message) from None
        import warnings

        warnings.warn(f"skipped: {message}", stacklevel=2)
        return True

    return handle


def _dataset_of(source) -> Dataset | None:
    """The :class:`Dataset` of a dataset folder/URL, or None for shard URLs."""
    if isinstance(source, (list, tuple)):
        return None
    source = str(source)
    if source.endswith(SHARD_SUFFIX) or "{" in source:
        return None
    return Dataset.from_manifest(load_manifest(Store(source)))


def multi_label_classes(source) -> int | None:
    """The number of classes of the dataset folder/URL ``source`` when it holds a
    multi-label family (its loaders yield multi-hot vectors of that length), else None."""
    ds = _dataset_of(source)
    return ds.n_classes if ds is not None and ds.label_kind is MULTI_HOT else None


def shard_dataset(source, *, resampled: bool = True, epoch_size: int | None = None, shuffle: int = 1000,
                  seed: int = 0, transform=None, batch_size: int | None = None, num_classes: int | None = None,
                  handler="raise"):
    """A webdataset pipeline of ``(image, label)`` over the shards of ``source``.

    Args:
        source: dataset folder or URL (reads ``manifest.json``), a shard URL
            pattern (``data/tiny-{000000..000002}.tar``) or a list of URLs.
        resampled: draw shards with replacement (training; infinite unless
            ``epoch_size``) or visit each exactly once (split by node, then worker).
        epoch_size: samples per worker per epoch (``with_epoch``).
        shuffle: sample shuffle buffer (0 to disable); seeded per (seed, epoch, rank, worker).
        seed: stream seed.
        transform: callable on a PIL image (default: ``uint8`` tensor).
        batch_size: collate into batches inside the pipeline (use with
            ``DataLoader(batch_size=None)``).
        num_classes: yield multi-hot ``float32`` label vectors of this length
            (from ``.labels.json``, else the ``.cls`` label).  Found in the
            manifest for a multi-label dataset folder; give it for shard URLs.
        handler: what a damaged shard or sample does: ``"raise"`` (one
            :class:`~fractaldb.errors.InputError` naming it), ``"warn"`` (a warning,
            then it is skipped) or a webdataset handler such as
            ``webdataset.ignore_and_continue``.
    """
    import webdataset as wds

    ds = _dataset_of(source)
    if ds is not None:
        kind, num_classes = ds.label_kind, ds.n_classes if num_classes is None else num_classes
    else:  # shard URLs: multi-hot when told the number of classes
        kind = CLASS if num_classes is None else MULTI_HOT
    urls = shard_urls(source)
    epoch = _Epoch()
    if resampled:
        stages = [lambda: _resampled(urls, seed, epoch)]
    else:
        stages = [wds.SimpleShardList(urls), wds.split_by_node, wds.split_by_worker]
    on_error = _handler(handler)
    stages.append(wds.tarfile_to_samples(handler=on_error))
    if shuffle:
        stages.append(lambda src: _shuffled(src, shuffle, seed, epoch))
    stages.append(wds.map(lambda s: _decode(s, transform, kind, num_classes), handler=on_error))
    if batch_size:
        stages.append(wds.batched(batch_size))
    pipe = wds.DataPipeline(*stages)
    if epoch_size:
        # with_epoch counts the items that leave the pipeline: batches when batching here.
        pipe = pipe.with_epoch(math.ceil(epoch_size / batch_size) if batch_size else epoch_size)

    def set_epoch(e: int):
        epoch.value = int(e)

    pipe.set_epoch = set_epoch
    return pipe


def shard_loader(source, batch_size: int, num_workers: int = 2, **kwargs):
    """A ``DataLoader`` over :func:`shard_dataset` (batching done in the pipeline)."""
    ds = shard_dataset(source, batch_size=batch_size, **kwargs)
    return torch.utils.data.DataLoader(ds, batch_size=None, num_workers=num_workers,
                                       persistent_workers=False)


class _Stream:
    """What both on-the-fly streams share: the dataset, the epoch, and each consumer's blocks."""

    dataset: Dataset
    epoch: int = 0

    @property
    def num_classes(self) -> int:
        return self.dataset.n_classes

    def __len__(self) -> int:
        return self.dataset.plan.n_samples

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _share(self, part: int, parts: int) -> list:
        """Every ``parts``-th block id of this epoch's order, from ``part`` on."""
        order = generator(self.dataset.config["seed"], "stream-epoch", self.epoch).permutation(
            self.dataset.plan.n_blocks)
        return [int(b) for b in order[part::parts]]


class FractalStream(_Stream, IterableDataset):
    """Render samples on the fly in DataLoader workers (no disk).

    Args:
        preset: preset name, YAML path, or a resolved config dict.
        overrides: ``key=value`` strings as for ``--set``.
        transform: callable on a PIL image (default: ``uint8`` tensor ``(3, H, W)``).
        shuffle: per-worker sample shuffle buffer (blocks hold one class).
        epoch_size: cap on samples per (rank, worker) per epoch (default: its full share).
        dataset: an already resolved :class:`fractaldb.dataset.Dataset` (skips the search).

    Call :meth:`set_epoch` each epoch (as with ``DistributedSampler``).
    """

    def __init__(self, preset="tiny", overrides=(), transform=None, shuffle: int = 256,
                 epoch_size: int | None = None, dataset: Dataset | None = None):
        super().__init__()
        if dataset is None:
            cfg = preset if isinstance(preset, dict) else fconfig.resolve(preset, overrides)
            dataset = Dataset.from_config(cfg)  # categories are searched once, in the main process
        self.dataset = dataset
        self.transform = transform
        self.shuffle = shuffle
        self.epoch_size = epoch_size
        self.epoch = 0

    @property
    def multi_label(self) -> bool:
        """True when a family of the dataset is multi-label: labels are multi-hot vectors."""
        return self.dataset.label_kind is MULTI_HOT

    def blocks(self) -> list:
        """The block ids this (rank, worker) renders this epoch (see :class:`fractaldb.plan.Plan`)."""
        rank, world, worker, workers = worker_info()
        return self._share(rank * workers + worker, world * workers)

    def _samples(self):
        ds = self.dataset
        plan = ds.plan
        renderers = {}
        kind = ds.label_kind
        for b in self.blocks():
            seg, klass, block = plan.block(b)
            p = ds.part(seg.family)
            if seg.family not in renderers:
                renderers[seg.family] = p.renderer()
            job = [(klass, block, list(range(seg.images_per_block)))]
            for rb in p.render_blocks(renderers[seg.family], job):
                for i, (offset, img) in enumerate(zip(rb.offsets, rb.images)):
                    label = seg.label_offset + p.primary(klass, block, offset)
                    local = p.sample_labels(klass, block, offset)
                    labels = None if local is None else [seg.label_offset + k for k in local]
                    mask = None if rb.masks is None else rb.masks[i].copy()
                    if mask is not None and seg.label_offset:
                        mask[mask > 0] += seg.label_offset
                    yield img.copy(), _target(kind.target(label, labels, mask, ds.n_classes))

    def __iter__(self):
        rank, _, worker, _ = worker_info()
        rng = random.Random(int_seed(self.dataset.config["seed"], "stream-shuffle", self.epoch, rank, worker))
        transform = self.transform or to_tensor
        buf = []
        count = 0
        for item in self._samples():
            buf.append(item)
            if len(buf) < max(self.shuffle, 1):
                continue
            k = rng.randrange(len(buf))
            buf[k], buf[-1] = buf[-1], buf[k]
            img, label = buf.pop()
            yield transform(Image.fromarray(_squeeze(img))), label
            count += 1
            if self.epoch_size is not None and count >= self.epoch_size:
                return
        rng.shuffle(buf)
        for img, label in buf:
            if self.epoch_size is not None and count >= self.epoch_size:
                return
            yield transform(Image.fromarray(_squeeze(img))), label
            count += 1


def _squeeze(img: np.ndarray) -> np.ndarray:
    return img[:, :, 0] if img.ndim == 3 and img.shape[2] == 1 else img


def _chw3(x: "torch.Tensor") -> "torch.Tensor":
    """``(n, H, W, C)`` -> a ``(n, 3, H, W)`` view (gray repeated, nothing copied)."""
    x = x.permute(0, 3, 1, 2)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


class GPUFractalStream(_Stream):
    """Render batches on the GPU and hand them to PyTorch without a host copy.

    The GPU twin of :class:`FractalStream`, used in the training process
    itself (not in DataLoader workers): blocks are rendered ``window`` images
    at a time by each family's GPU renderer (``render_many_device``), wrapped as CUDA tensors through
    ``__cuda_array_interface__``, shuffled on the GPU and cut into batches.

    Each DDP rank renders its own share of the blocks of an epoch (the same
    split and block order as :class:`FractalStream` with one loader worker),
    so ranks never overlap and a run is repeatable: the images are the CPU
    renderer's, bit for bit; the order within a window is a permutation
    seeded by (seed, epoch, rank, window).

    Args:
        preset: preset name, YAML path, or a resolved config dict.
        overrides: ``key=value`` strings as for ``--set``.
        batch_size: images per batch.
        transform: optional callable on a batch, ``uint8 (B, 3, H, W)`` on
            the GPU (e.g. a resize); default: the batch itself.
        window: images rendered per launch and shuffled together (at least
            one batch; at 362² gray, 4096 images are 0.5 GB of GPU memory).
        epoch_size: cap on samples per rank per epoch (default: its full share).
        drop_last: drop a trailing partial batch.
        dataset: an already resolved :class:`fractaldb.dataset.Dataset`.
        max_batch: most fractal blocks per kernel launch.

    Iterating yields ``(images, labels)``: ``uint8 (B, 3, H, W)`` (a view of
    the window's ``(B, H, W, C)`` memory; gray is repeated without a copy) or
    ``transform``'s output, and ``int64 (B,)``, both on the GPU.

    Raises:
        ConfigError: without numba-cuda or a usable GPU (one line, as ``--device cuda``).
    """

    def __init__(self, preset="tiny", overrides=(), batch_size: int = 256, transform=None, window: int = 4096,
                 epoch_size: int | None = None, drop_last: bool = True, dataset: Dataset | None = None,
                 max_batch: int = 256):
        from .errors import ConfigError

        for name, v in (("batch_size", batch_size), ("window", window), ("max_batch", max_batch)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        if dataset is None:
            cfg = preset if isinstance(preset, dict) else fconfig.resolve(preset, overrides)
            dataset = Dataset.from_config(cfg)
        self.dataset = dataset
        self.batch_size = batch_size
        self.window = max(window, batch_size)
        self.transform = transform
        self.epoch_size = epoch_size
        self.drop_last = drop_last
        self.epoch = 0
        self.renderers = {name: p.renderer("cuda") for name, p in dataset.parts.items()}
        for r in self.renderers.values():
            if hasattr(r, "max_batch") and r.max_batch < max_batch:
                r.max_batch = max_batch
        self.channels = max(p.channels for p in dataset.parts.values())

    def blocks(self) -> list:
        """The block ids this rank renders this epoch (:meth:`FractalStream.blocks`, one worker)."""
        rank, world, _, _ = worker_info()
        return self._share(rank, world)

    def _render(self, blocks: list) -> tuple:
        """``(images (n, H, W, C), labels (n,))`` of ``blocks`` on the device, family
        after family (each family's images in its own launch order)."""
        from .gpu import as_torch

        ds, plan = self.dataset, self.dataset.plan
        by_family: dict = {}
        for b in blocks:
            seg, klass, block = plan.block(b)
            by_family.setdefault(seg.family, (seg, []))[1].append((klass, block))
        parts, labels = [], []
        for name in ds.parts:  # family order: the same windows on every run
            if name not in by_family:
                continue
            seg, pairs = by_family[name]
            p = ds.part(name)
            for positions, images in p.render_device(self.renderers[name], pairs):
                parts.append(as_torch(images))
                labels.append(torch.tensor([seg.label_offset + pairs[i][0] for i in positions],
                                           dtype=torch.int64).repeat_interleave(seg.images_per_block))
        # One channel count for the whole stream (windows are concatenated): gray
        # becomes 3 channels when any class of the dataset is in colour.
        parts = [x if x.shape[3] == self.channels else x.expand(-1, -1, -1, self.channels) for x in parts]
        images = torch.cat(parts) if len(parts) > 1 else parts[0]
        return images, torch.cat(labels).to(images.device)

    def __iter__(self):
        plan = self.dataset.plan
        rank = worker_info()[0]
        seed = self.dataset.config["seed"]
        blocks = self.blocks()
        per_block = max(max(s.images_per_block for s in plan.segments), 1)
        step = max(1, self.window // per_block)
        cap = self.epoch_size
        count = 0
        rest = None  # images and labels left over from the previous window
        for w, start in enumerate(range(0, len(blocks), step)):
            images, labels = self._render(blocks[start:start + step])
            gen = torch.Generator().manual_seed(int_seed(seed, "stream-shuffle", self.epoch, rank, w))
            order = torch.randperm(len(labels), generator=gen).to(images.device)
            images, labels = images.index_select(0, order), labels.index_select(0, order)
            if rest is not None:
                images, labels = torch.cat([rest[0], images]), torch.cat([rest[1], labels])
                rest = None
            n = len(labels) - len(labels) % self.batch_size
            for i in range(0, n, self.batch_size):
                if cap is not None and count >= cap:
                    return
                take = self.batch_size if cap is None else min(self.batch_size, cap - count)
                if take < self.batch_size and self.drop_last:
                    return
                yield self._out(images[i:i + take], labels[i:i + take])
                count += take
            if n < len(labels):
                rest = (images[n:], labels[n:])
        if rest is not None and not self.drop_last and (cap is None or count < cap):
            take = len(rest[1]) if cap is None else min(len(rest[1]), cap - count)
            yield self._out(rest[0][:take], rest[1][:take])

    def _out(self, images, labels):
        x = _chw3(images)
        return (self.transform(x) if self.transform is not None else x), labels


#: The error of a ``cuda`` render device without a usable GPU (the option is named by the caller).
NO_RENDER_GPU = ("{option} cuda needs numba-cuda (pip install 'fractaldb[cuda]') and an NVIDIA GPU; "
                 "none is usable here. Use {option} cpu")


def render_device(device: str = "auto", training_device: str | None = None, option: str = "--render-device") -> str:
    """Where on-the-fly images are rendered: ``cpu``, ``cuda``, or ``auto``.

    ``auto`` is the GPU when numba-cuda can use one and the images are consumed
    there (``training_device`` ``cuda``, or None: wherever PyTorch has CUDA),
    else the CPU.

    Raises:
        ConfigError: an unknown device, or ``cuda`` without a usable GPU (naming ``option``).
    """
    from .gpu import cuda_available

    if device == "auto":
        on_gpu = torch.cuda.is_available() if training_device is None else training_device == "cuda"
        return "cuda" if on_gpu and cuda_available() else "cpu"
    if device == "cuda":
        if not cuda_available():
            raise ConfigError(NO_RENDER_GPU.format(option=option))
        return device
    if device != "cpu":
        raise ConfigError(f"unknown render device {device!r}; choose auto, cpu or cuda")
    return device


def stream(dataset: Dataset | None = None, device: str = "auto", *, preset="tiny", overrides=(),
           training_device: str | None = None, **kwargs):
    """The on-the-fly stream for ``device`` (see :func:`render_device`):
    :class:`GPUFractalStream` (batches, in the training process) on ``cuda``,
    :class:`FractalStream` (samples, in DataLoader workers) on ``cpu``.

    Args:
        dataset: a resolved :class:`~fractaldb.dataset.Dataset`, or None to resolve
            ``preset`` with ``overrides``.
        kwargs: go to the chosen class.

    Returns:
        ``(stream, device)``.
    """
    where = render_device(device, training_device)
    cls = GPUFractalStream if where == "cuda" else FractalStream
    return cls(preset, overrides, dataset=dataset, **kwargs), where
