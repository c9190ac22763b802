"""Training data: every source yields ``uint8`` batches ``(B, 3, R, R)``, R = :func:`load_size`.

Shards of a ``fractaldb generate`` output (local or a URL), an ImageFolder,
on-the-fly rendering (:class:`fractaldb.data.FractalStream`, or
:class:`fractaldb.data.GPUFractalStream` on the GPU) or in-memory tensors; the
random part of the augmentation happens on whole batches in :func:`prepare_batch`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import torch

from ..errors import ConfigError, InputError
from ..seeds import generator
from .config import _SHUFFLE
from .runtime import Runtime


class SquareUint8:
    """PIL image -> ``uint8`` tensor ``(3, R, R)``: short side resized to R, centre square.

    Also takes a ``uint8`` tensor ``(3, H, W)`` or a batch ``(B, 3, H, W)``
    (the GPU stream's batches, resized on the GPU).

    Deterministic, so it may run in any DataLoader worker; the random part of the
    augmentation happens on whole batches in :func:`prepare_batch`.
    """

    def __init__(self, size: int):
        self.size = size

    def __call__(self, img):
        from torchvision.transforms.v2 import functional as F

        from ..data import to_tensor

        x = img if isinstance(img, torch.Tensor) else to_tensor(img)
        if x.shape[-2:] != (self.size, self.size):
            x = F.resize(x, [self.size], antialias=True)
            x = F.center_crop(x, [self.size, self.size])
        return x


def load_size(cfg: dict) -> int:
    """Side R of the square the loaders deliver (256 for a 224 crop at ratio 0.875)."""
    return max(cfg["image_size"], round(cfg["image_size"] / cfg["crop_ratio"]))


@dataclass
class Source:
    """A stream of ``(uint8 images, labels)`` batches with a known number per epoch."""

    batches: Callable[[int], Iterable]  # epoch -> this rank's batches of that epoch
    num_classes: int
    steps: int                          # batches per epoch on this rank (training sources)
    name: str
    classes: list | None = None         # class names, where the data has them


class _EpochBatches:
    """Index batches of one epoch: a permutation seeded by (seed, epoch), split across ranks.

    Training: every rank gets the same number of batches (the remainder is
    dropped), and a trailing batch of one is dropped (BatchNorm cannot train on it).
    Evaluation: in order, every sample exactly once across the ranks.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rt: Runtime, train: bool):
        self.n, self.batch_size, self.seed, self.rt, self.train = n, batch_size, seed, rt, train
        self.epoch = 0

    def _indices(self) -> list:
        if not self.train:
            return list(range(self.rt.rank, self.n, self.rt.world))
        order = generator(self.seed, "train", _SHUFFLE, self.epoch).permutation(self.n)
        per_rank = self.n // self.rt.world
        return order[self.rt.rank * per_rank:(self.rt.rank + 1) * per_rank].tolist()

    def __len__(self) -> int:
        m = len(self._indices())
        full, rest = divmod(m, self.batch_size)
        return full + (1 if rest > (1 if self.train else 0) else 0)

    def __iter__(self):
        idx = self._indices()
        for i in range(len(self)):
            yield idx[i * self.batch_size:(i + 1) * self.batch_size]


def _map_source(dataset, cfg: dict, rt: Runtime, train: bool, name: str, num_classes: int,
                classes=None, workers: int | None = None) -> Source:
    """A source over a map-style dataset of ``(uint8 tensor, label)``."""
    batch = cfg["batch_size"] // rt.world
    sampler = _EpochBatches(len(dataset), batch, cfg["seed"], rt, train)
    workers = cfg["workers"] if workers is None else workers
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=workers,
                                         pin_memory=rt.device.type == "cuda")

    def batches(epoch):
        sampler.epoch = epoch
        return loader

    return Source(batches, num_classes, len(sampler), name, classes)


def tensor_source(images: "torch.Tensor", labels: "torch.Tensor", cfg: dict, rt: Runtime, train: bool,
                  name: str = "tensors", num_classes: int | None = None) -> Source:
    """A source over in-memory ``uint8`` images ``(N, 3, R, R)`` and integer labels."""
    ds = torch.utils.data.TensorDataset(images, labels)
    k = int(labels.max()) + 1 if num_classes is None else num_classes
    return _map_source(ds, cfg, rt, train, name, k, workers=0)


def load_image(path: str):
    """An ImageFolder file as an RGB PIL image, or one :class:`InputError` naming it
    (corrupt, truncated, or over PIL's decompression-bomb limit)."""
    from ..inputs import open_image

    # the one validated reader path: a regular file (never a FIFO), bounded before it is decoded
    return open_image(path, str(path), "RGB")


def _imagefolder_source(path: Path, cfg: dict, rt: Runtime, train: bool) -> Source:
    from torchvision.datasets import ImageFolder

    if train and cfg.get("view_sampling", "all") != "all":
        raise ConfigError(f"--view-sampling {cfg['view_sampling']} needs a 'fractaldb generate' output or --preset "
                          f"(their samples say which views belong together); {path} is an ImageFolder: use "
                          "--view-sampling all")

    try:
        ds = ImageFolder(str(path), transform=SquareUint8(load_size(cfg)), loader=load_image)
    except (FileNotFoundError, OSError):
        raise InputError(f"{path} holds no images in class folders; an ImageFolder is "
                         f"{path}/<class>/<image>.png (or .jpg, .webp)") from None
    return _map_source(ds, cfg, rt, train, str(path), len(ds.classes), classes=list(ds.classes))


def _shard_source(url: str, shards, cfg: dict, rt: Runtime, train: bool) -> Source:
    """The source of a shard dataset (``shards``: :func:`fractaldb.data.open_shards`'s, read once)."""
    from ..data import shard_dataset

    from ..data.views import view_sampler

    manifest = shards.manifest
    samples, classes = int(manifest["plan"]["samples"]), int(manifest["plan"]["classes"])
    if samples == 0:
        raise InputError(f"{url} holds no samples; generate it again with more categories")
    views = cfg.get("view_sampling", "all") if train else "all"  # evaluation sees every view
    sampler = view_sampler(shards.dataset, views, cfg["seed"])
    if sampler is not None:  # an epoch is one view per class (or instance)
        samples = sampler.epoch_samples(shards.dataset.plan)
    workers, batch = cfg["workers"], cfg["batch_size"] // rt.world
    loader_kw = dict(num_workers=workers, pin_memory=rt.device.type == "cuda")
    if not train:  # every sample once: split by node, then by worker
        ds = shard_dataset(shards, resampled=False, shuffle=0, transform=SquareUint8(load_size(cfg)))
        loader = torch.utils.data.DataLoader(ds, batch_size=batch, **loader_kw)
        return Source(lambda epoch: loader, classes, 0, url)
    # Resampled shards, seeded per (seed, epoch, rank, worker); each worker yields the same
    # number of samples, so every rank runs the same number of steps (no DDP rank waits).
    per_rank = math.ceil((cfg["epoch_size"] or samples) / rt.world)
    per_worker = math.ceil(per_rank / max(workers, 1))
    steps = max(workers, 1) * (per_worker // batch)
    if steps == 0:
        raise ConfigError(f"--batch-size {cfg['batch_size']} is larger than the {per_worker} samples each "
                          f"loader worker reads per epoch from {url}; use a smaller batch, fewer --workers "
                          "or a larger --epoch-size")
    ds = shard_dataset(shards, resampled=True, epoch_size=per_worker, shuffle=min(cfg["shuffle"], samples),
                       seed=cfg["seed"], transform=SquareUint8(load_size(cfg)), views=views)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, drop_last=True, **loader_kw)

    def batches(epoch):
        ds.set_epoch(epoch)
        return loader

    return Source(batches, classes, steps, url)


def render_device(cfg: dict, rt: Runtime) -> str:
    """Where on-the-fly data is rendered (the data layer decides:
    :func:`fractaldb.data.render_device`): ``cfg['render_device']``, or for ``auto``
    the GPU when training on one and numba-cuda can use it, else the CPU."""
    from ..data import render_device as decide

    return decide(cfg["render_device"], rt.device.type)


def _stream_source(cfg: dict, rt: Runtime) -> Source:
    """On-the-fly rendering, no disk: :class:`fractaldb.data.FractalStream` in the
    DataLoader workers, or :class:`fractaldb.data.GPUFractalStream` on the GPU."""
    from ..data import render_device as decide
    from ..data import stream as open_stream

    batch = cfg["batch_size"] // rt.world
    where = decide(cfg["render_device"], rt.device.type)
    options = (dict(batch_size=batch, transform=SquareUint8(load_size(cfg)), window=max(4 * batch, cfg["shuffle"]))
               if where == "cuda" else dict(transform=SquareUint8(load_size(cfg)), shuffle=min(cfg["shuffle"], 256)))
    options["views"] = cfg.get("view_sampling", "all")
    stream, where = open_stream(None, where, preset=cfg["preset"], overrides=cfg["preset_set"], **options)
    loader = stream
    batch = cfg["batch_size"] // rt.world
    steps = (cfg["epoch_size"] or len(stream)) // (rt.world * batch)
    if steps == 0:
        raise ConfigError(f"--batch-size {cfg['batch_size']} is larger than the {len(stream)} samples of "
                          f"preset {cfg['preset']}; use a smaller batch or a larger --epoch-size")
    if where == "cpu":
        loader = torch.utils.data.DataLoader(stream, batch_size=batch, drop_last=True,
                                             num_workers=cfg["workers"], pin_memory=rt.device.type == "cuda")

    def batches(epoch):
        # Exactly `steps` batches per epoch on every rank: a stream pass splits its blocks
        # unevenly across (rank, worker), so we draw from as many passes as needed, each
        # seeded by (epoch, pass).
        taken, sub = 0, 0
        while taken < steps:
            stream.set_epoch(epoch * 1000 + sub)
            got = 0
            for b in loader:
                yield b
                taken, got = taken + 1, got + 1
                if taken == steps:
                    return
            if got == 0:
                raise InputError(f"preset {cfg['preset']} yields no full batch of {batch} per loader worker; "
                                 "use a smaller --batch-size or fewer --workers")
            sub += 1

    return Source(batches, stream.num_classes, steps, f"on-the-fly {cfg['preset']} (rendered on {where})")


def open_source(data: str, cfg: dict, rt: Runtime, train: bool = True) -> Source:
    """The source behind ``data``: a ``fractaldb generate`` output (folder or URL with a
    ``manifest.json``) or an ImageFolder (``data/<class>/<image>``)."""
    from ..data import open_shards
    from ..keys import MANIFEST
    from ..storage import Store

    store = Store(data)
    if store.exists(MANIFEST) or not store.local:
        return _shard_source(data, open_shards(data), cfg, rt, train)
    path = Path(data)
    if not path.is_dir():
        raise InputError(f"{data} does not exist; give a 'fractaldb generate' output or an ImageFolder")
    if not any(p.is_dir() for p in path.iterdir()):
        raise InputError(f"{data} is neither a 'fractaldb generate' output (no manifest.json) nor an "
                         "ImageFolder (no class folders)")
    return _imagefolder_source(path, cfg, rt, train)


def _finetune_sources(data: str, cfg: dict, rt: Runtime) -> tuple:
    root = data.rstrip("/")
    for split in ("train", "val"):
        if Path(data).is_dir() and not (Path(data) / split).is_dir():
            raise InputError(f"{data} has no {split}/ folder; fine-tuning reads {data}/train and {data}/val "
                             "(ImageFolders, or 'fractaldb generate' outputs)")
    train, val = open_source(f"{root}/train", cfg, rt, True), open_source(f"{root}/val", cfg, rt, False)
    if train.num_classes != val.num_classes or (train.classes and train.classes != val.classes):
        raise InputError(f"{root}/train has {train.num_classes} classes but {root}/val has {val.num_classes} "
                         "(or other names); both splits need the same class folders")
    return train, val


def prepare_batch(images: "torch.Tensor", cfg: dict, rt: Runtime, gen: "torch.Generator | None" = None):
    """``uint8 (B, 3, R, R)`` -> normalised ``float (B, 3, S, S)`` on the device.

    Training (``gen`` given): a random S x S crop per image and, with ``hflip``, a
    random horizontal flip, all drawn from ``gen``.  Evaluation: the centre crop.
    """
    from torchvision.transforms.v2 import functional as F

    x = images.to(rt.device, non_blocking=True)
    size, side = cfg["image_size"], x.shape[-1]
    if gen is not None:
        n = x.shape[0]
        tops = torch.randint(0, side - size + 1, (n,), generator=gen).tolist()
        lefts = torch.randint(0, side - size + 1, (n,), generator=gen).tolist()
        flips = (torch.rand(n, generator=gen) < 0.5).tolist()
        crops = [F.crop(img, t, l, size, size) for img, t, l in zip(x, tops, lefts)]
        x = torch.stack([F.horizontal_flip(c) if cfg["hflip"] and f else c for c, f in zip(crops, flips)])
    elif side != size:
        x = F.center_crop(x, [size, size])
    x = F.to_dtype(x, torch.float32, scale=True)
    return F.normalize(x, cfg["mean"], cfg["std"])
