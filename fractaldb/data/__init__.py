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

Both are one **source** stage followed by the same stages (:mod:`.stages`:
shuffle buffer, decoding, batching, the epoch cap): :mod:`.shards` reads shards,
:mod:`.onthefly` renders.

Images come out as ``uint8`` tensors ``(3, H, W)`` unless a ``transform``
(a callable on a PIL image) is given.  Targets follow the dataset's label kind
(:mod:`fractaldb.labels`): ``int`` class indices; multi-hot ``float32`` vectors
over all the dataset's classes for a dataset holding a multi-label family (from
each sample's ``.labels.json`` member, or the family's ``sample_labels`` on the
fly); ``uint8 (H, W)`` segmentation masks for a mask dataset.  This package needs
PyTorch (``pip install 'fractaldb[torch]'``); nothing else in fractaldb imports it.
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError("fractaldb.data needs PyTorch: pip install 'fractaldb[torch]'") from exc

from .onthefly import NO_RENDER_GPU, FractalStream, GPUFractalStream, render_device, stream
from .shards import (ShardStream, Shards, multi_hot, multi_label_classes, open_shards, shard_dataset,
                     shard_loader, shard_urls, to_tensor)
from .stages import worker_info

__all__ = ["shard_urls", "open_shards", "Shards", "ShardStream", "multi_label_classes", "multi_hot",
           "shard_dataset", "shard_loader", "FractalStream", "GPUFractalStream", "stream", "render_device",
           "NO_RENDER_GPU", "worker_info", "to_tensor"]
