"""On-the-fly sources: samples rendered while training, no disk.

* :class:`FractalStream` renders inside the DataLoader workers: each (rank, worker)
  renders a disjoint share of the blocks, in an order fixed by (seed, epoch), so
  streams never overlap and a run is repeatable; its samples then go through the
  same stages as the shard loader's (:mod:`fractaldb.data.stages`).
* :class:`GPUFractalStream` renders windows of images on an NVIDIA GPU (numba-cuda)
  in the training process and hands them to PyTorch as CUDA tensors without a
  host copy; the same images as :class:`FractalStream`, shuffled on the GPU.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch.utils.data import IterableDataset

from .. import config as fconfig
from ..dataset import Dataset
from ..errors import ConfigError
from ..gpu import AUTO_DEVICES, check_device
from ..seeds import generator, int_seed
from .shards import target, to_tensor
from . import stages
from .stages import capped, consumer_rng, shuffled
from .views import view_sampler

__all__ = ["FractalStream", "GPUFractalStream", "stream", "render_device", "NO_RENDER_GPU"]


class _Stream:
    """What both on-the-fly streams share: the dataset, the epoch, and each consumer's blocks."""

    dataset: Dataset
    epoch: int = 0
    views = None  #: the :class:`~fractaldb.data.views.ViewSampler`, or None: every view

    def _dataset(self, dataset, preset, overrides) -> Dataset:
        if dataset is not None:
            return dataset
        cfg = preset if isinstance(preset, dict) else fconfig.resolve(preset, overrides)
        return Dataset.from_config(cfg)  # classes are searched once, in the main process

    @property
    def num_classes(self) -> int:
        return self.dataset.n_classes

    def __len__(self) -> int:
        """Samples of one pass (with a view sampler: the views it keeps)."""
        plan = self.dataset.plan
        return plan.n_samples if self.views is None else self.views.epoch_samples(plan)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _share(self, part: int, parts: int) -> list:
        """Every ``parts``-th block id of this epoch's order, from ``part`` on."""
        order = generator(self.dataset.config["seed"], "stream-epoch", self.epoch).permutation(
            self.dataset.plan.n_blocks)
        return [int(b) for b in order[part::parts]]

    def _offsets(self, seg, klass: int, block: int) -> list:
        """The offsets of a block this epoch renders: all, or the view sampler's."""
        if self.views is not None:
            kept = self.views.offsets(seg.family, klass, block, self.epoch)
            if kept is not None:
                return kept
        return list(range(seg.images_per_block))


class FractalStream(_Stream, IterableDataset):
    """Render samples on the fly in DataLoader workers (no disk).

    Args:
        preset: preset name, YAML path, or a resolved config dict.
        overrides: ``key=value`` strings as for ``--set``.
        transform: callable on a PIL image (default: ``uint8`` tensor ``(3, H, W)``).
        shuffle: per-worker sample shuffle buffer (blocks hold one class).
        epoch_size: cap on samples per (rank, worker) per epoch (default: its full share).
        dataset: an already resolved :class:`fractaldb.dataset.Dataset` (skips the search).
        views: ``all``, or for multi-view families one random view per ``class`` or per
            ``instance`` each epoch (:mod:`fractaldb.data.views`): only that view is rendered.

    Yields ``(image, target)``, targets by the dataset's label kind (:mod:`fractaldb.labels`).
    Call :meth:`set_epoch` each epoch (as with ``DistributedSampler``).
    """

    def __init__(self, preset="tiny", overrides=(), transform=None, shuffle: int = 256,
                 epoch_size: int | None = None, dataset: Dataset | None = None, views: str = "all"):
        super().__init__()
        self.dataset = self._dataset(dataset, preset, overrides)
        self.views = view_sampler(self.dataset, views, self.dataset.config["seed"])
        self.transform = transform
        self.shuffle = shuffle
        self.epoch_size = epoch_size
        self.epoch = 0

    @property
    def multi_label(self) -> bool:
        """True when labels are multi-hot vectors (a multi-label family in the dataset)."""
        return self.dataset.label_kind.name == "multi-hot"

    def blocks(self) -> list:
        """The block ids this (rank, worker) renders this epoch (see :class:`fractaldb.plan.Plan`)."""
        rank, world, worker, workers = stages.worker_info()
        return self._share(rank * workers + worker, world * workers)

    def source(self):
        """The source stage: ``(image array, target)`` of this consumer's blocks, in order."""
        ds = self.dataset
        renderers, kind = {}, ds.label_kind
        for b in self.blocks():
            seg, klass, block = ds.plan.block(b)
            p = ds.part(seg.family)
            offsets = self._offsets(seg, klass, block)
            if not offsets:
                continue
            if seg.family not in renderers:
                renderers[seg.family] = p.renderer()
            job = [(klass, block, offsets)]
            for rb in p.render_blocks(renderers[seg.family], job):
                for i, (offset, img) in enumerate(zip(rb.offsets, rb.images)):
                    label = seg.label_offset + p.primary(klass, block, offset)
                    local = p.sample_labels(klass, block, offset)
                    labels = None if local is None else [seg.label_offset + k for k in local]
                    mask = None if rb.masks is None else rb.masks[i].copy()
                    if mask is not None and seg.label_offset:
                        mask[mask > 0] += seg.label_offset
                    yield img.copy(), target(kind.target(label, labels, mask, ds.n_classes))

    def _decoded(self, item):
        img, y = item
        return (self.transform or to_tensor)(Image.fromarray(_squeeze(img))), y

    def _one_pass(self):
        rng = consumer_rng(self.dataset.config["seed"], "stream-shuffle", self.epoch)
        return map(self._decoded, shuffled(self.source(), max(self.shuffle, 1), rng))

    def __iter__(self):
        return capped(self._one_pass, self.epoch_size, repeat=False)


def _squeeze(img: np.ndarray) -> np.ndarray:
    return img[:, :, 0] if img.ndim == 3 and img.shape[2] == 1 else img


def _chw3(x: "torch.Tensor") -> "torch.Tensor":
    """``(n, H, W, C)`` -> a ``(n, 3, H, W)`` view (gray repeated, nothing copied)."""
    x = x.permute(0, 3, 1, 2)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


class GPUFractalStream(_Stream):
    """Render batches on the GPU and hand them to PyTorch without a host copy.

    The GPU twin of :class:`FractalStream`, used in the training process itself (not in
    DataLoader workers).  Its source stage renders blocks ``window`` images at a time
    with each family's GPU renderer (``render_device``), wrapped as CUDA tensors through
    ``__cuda_array_interface__``; then each window is shuffled on the GPU, cut into
    batches (a window's remainder leads the next), and the epoch capped.

    Each DDP rank renders its own share of the blocks of an epoch (the same split and
    block order as :class:`FractalStream` with one loader worker), so ranks never
    overlap and a run is repeatable: the images are the CPU renderer's, bit for bit;
    the order within a window is a permutation seeded by (seed, epoch, rank, window).

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
        views: as :class:`FractalStream`'s (whole blocks are rendered, the other views dropped).

    Iterating yields ``(images, labels)``: ``uint8 (B, 3, H, W)`` (a view of
    the window's ``(B, H, W, C)`` memory; gray is repeated without a copy) or
    ``transform``'s output, and ``int64 (B,)``, both on the GPU.

    Raises:
        ConfigError: without numba-cuda or a usable GPU (one line, as ``--device cuda``).
    """

    def __init__(self, preset="tiny", overrides=(), batch_size: int = 256, transform=None, window: int = 4096,
                 epoch_size: int | None = None, drop_last: bool = True, dataset: Dataset | None = None,
                 max_batch: int = 256, views: str = "all"):
        for name, v in (("batch_size", batch_size), ("window", window), ("max_batch", max_batch)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        self.dataset = self._dataset(dataset, preset, overrides)
        if self.dataset.label_kind.name != "class":
            raise ConfigError(f"the GPU stream yields class labels only; this dataset's samples carry "
                              f"{self.dataset.label_kind.name} targets: use --render-device cpu")
        self.views = view_sampler(self.dataset, views, self.dataset.config["seed"])
        self.batch_size = batch_size
        self.window = max(window, batch_size)
        self.transform = transform
        self.epoch_size = epoch_size
        self.drop_last = drop_last
        self.epoch = 0
        self.renderers = {name: p.renderer("cuda") for name, p in self.dataset.parts.items()}
        for r in self.renderers.values():
            if hasattr(r, "max_batch") and r.max_batch < max_batch:
                r.max_batch = max_batch
        self.channels = max(p.channels for p in self.dataset.parts.values())

    def blocks(self) -> list:
        """The block ids this rank renders this epoch (:meth:`FractalStream.blocks`, one worker)."""
        rank, world, _, _ = stages.worker_info()
        return self._share(rank, world)

    def _render(self, blocks: list) -> tuple:
        """``(images (n, H, W, C), labels (n,))`` of ``blocks`` on the device, family
        after family (each family's images in its own launch order)."""
        from ..gpu import as_torch

        ds, plan = self.dataset, self.dataset.plan
        by_family: dict = {}
        for b in blocks:
            seg, klass, block = plan.block(b)
            offsets = self._offsets(seg, klass, block)
            if offsets:
                by_family.setdefault(seg.family, (seg, [], []))[1].append((klass, block))
                by_family[seg.family][2].append(offsets)
        parts, labels = [], []
        for name in ds.parts:  # family order: the same windows on every run
            if name not in by_family:
                continue
            seg, pairs, keep = by_family[name]
            for positions, images in ds.part(name).render_device(self.renderers[name], pairs):
                x = as_torch(images)
                y = torch.tensor([seg.label_offset + pairs[i][0] for i in positions],
                                 dtype=torch.int64).repeat_interleave(seg.images_per_block)
                if any(len(keep[i]) < seg.images_per_block for i in positions):  # the view sampler's views
                    idx = torch.tensor([j * seg.images_per_block + o for j, i in enumerate(positions)
                                        for o in keep[i]], dtype=torch.int64)
                    x, y = x.index_select(0, idx.to(x.device)), y.index_select(0, idx)
                parts.append(x)
                labels.append(y)
        if not parts:  # every block of the window left out by the view sampler
            return None
        # One channel count for the whole stream (windows are concatenated): gray
        # becomes 3 channels when any class of the dataset is in colour.
        parts = [x if x.shape[3] == self.channels else x.expand(-1, -1, -1, self.channels) for x in parts]
        images = torch.cat(parts) if len(parts) > 1 else parts[0]
        return images, torch.cat(labels).to(images.device)

    def source(self):
        """The source stage: ``(images, labels)`` windows of this rank's blocks, in order."""
        blocks = self.blocks()
        per_block = max(max(s.images_per_block for s in self.dataset.plan.segments), 1)
        step = max(1, self.window // per_block)
        for start in range(0, len(blocks), step):
            if (window := self._render(blocks[start:start + step])) is not None:
                yield window

    def _shuffled(self, windows):
        """Each window in a random order, on the device (seeded per epoch, rank and window)."""
        seed, rank = self.dataset.config["seed"], stages.worker_info()[0]
        for w, (images, labels) in enumerate(windows):
            gen = torch.Generator().manual_seed(int_seed(seed, "stream-shuffle", self.epoch, rank, w))
            order = torch.randperm(len(labels), generator=gen).to(images.device)
            yield images.index_select(0, order), labels.index_select(0, order)

    def _batched(self, windows):
        """Batches of ``batch_size``; a window's remainder leads the next window, the last
        one is a shorter batch unless ``drop_last``."""
        rest = None
        for images, labels in windows:
            if rest is not None:
                images, labels = torch.cat([rest[0], images]), torch.cat([rest[1], labels])
                rest = None
            n = len(labels) - len(labels) % self.batch_size
            for i in range(0, n, self.batch_size):
                yield images[i:i + self.batch_size], labels[i:i + self.batch_size]
            if n < len(labels):
                rest = (images[n:], labels[n:])
        if rest is not None and not self.drop_last:
            yield rest

    def _capped(self, batches):
        """At most ``epoch_size`` samples; a batch cut short by the cap is dropped with ``drop_last``."""
        count, cap = 0, self.epoch_size
        for images, labels in batches:
            if cap is not None and count >= cap:
                return
            take = len(labels) if cap is None else min(len(labels), cap - count)
            if take < len(labels) and self.drop_last:
                return
            yield images[:take], labels[:take]
            count += take

    def __iter__(self):
        for images, labels in self._capped(self._batched(self._shuffled(self.source()))):
            x = _chw3(images)
            yield (self.transform(x) if self.transform is not None else x), labels


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
    from ..gpu import cuda_available

    check_device(device, AUTO_DEVICES, "render device")
    if device == "auto":
        on_gpu = torch.cuda.is_available() if training_device is None else training_device == "cuda"
        return "cuda" if on_gpu and cuda_available() else "cpu"
    if device == "cuda" and not cuda_available():
        raise ConfigError(NO_RENDER_GPU.format(option=option))
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
