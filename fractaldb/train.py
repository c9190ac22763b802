"""Pretraining and fine-tuning (SPEC 6): timm models on fractaldb data.

One training loop, :func:`fit`, serves every command; what differs is a short
override of the configuration and where the batches come from::

    recipe < command-line options -> resolved config   (RUN_DIR/config.json, and every checkpoint)
    source: shards | on-the-fly stream | ImageFolder | tensors -> uint8 batches (B, 3, R, R)
    -> crop + flip (seeded per (seed, epoch)) -> normalise -> timm model -> SGD
    -> per epoch: a stdout line, RUN_DIR/log.jsonl, last.pt, best.pt

Randomness is an input: model init, data order, crops and flips and any
dropout are drawn from streams derived from the run seed (purpose ``train``,
:mod:`fractaldb.seeds`), never from the global RNG state.  A resumed run
therefore ends with the same weights as an uninterrupted one
(tests/test_train.py checks it on CPU).

This module needs PyTorch and timm (``pip install 'fractaldb[torch]'``);
nothing imported by ``import fractaldb`` or by the generator imports it.  The
transfer check lives in :mod:`fractaldb.experiments` (a client of this module);
its names stay reachable here, imported on first use.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

try:
    import torch
    import torch.nn.functional as nnf
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError("fractaldb.train needs PyTorch: pip install 'fractaldb[torch]'") from exc

from . import __version__
from .errors import ConfigError, InputError, OutputError
from .seeds import generator, int_seed

__all__ = ["RECIPES", "TRAIN_KEYS", "resolve_config", "learning_rate", "create_model", "fit",
           "pretrain", "finetune", "load_checkpoint", "transfer_experiment", "TRANSFER_SETTINGS", "render_device"]

CHECKPOINT_FORMAT = "fractaldb-checkpoint-v1"
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]

# Ids inside the "train" purpose: one stream per use, never renumbered.
_INIT, _SHUFFLE, _AUGMENT, _DROPOUT, _HEAD = 0, 1, 2, 3, 4

# --------------------------------------------------------------------------------------------
# Configuration: recipe < command line.  One flat dict, saved beside the outputs.
# --------------------------------------------------------------------------------------------

#: The original recipe (Kataoka et al., ACCV 2020; SPEC 6) and a CPU sanity recipe.
#: The paper and the authors give lr 0.01 for pretraining; the original code's default is 0.1.
RECIPES = {
    "paper": {
        "pretrain": dict(arch="resnet50", epochs=90, batch_size=256, lr=0.01, momentum=0.9,
                         weight_decay=1e-4, schedule="step", milestones=[1 / 3, 2 / 3], gamma=0.1,
                         warmup_epochs=0, image_size=224, crop_ratio=224 / 256, hflip=False,
                         mean=[0.2, 0.2, 0.2], std=[0.5, 0.5, 0.5]),
        "finetune": dict(epochs=90, batch_size=256, lr=0.01, momentum=0.9, weight_decay=1e-4,
                         schedule="step", milestones=[1 / 3, 2 / 3], gamma=0.1, warmup_epochs=0,
                         image_size=224, crop_ratio=224 / 256, hflip=False,
                         mean=IMAGENET_MEAN, std=IMAGENET_STD),
    },
    "cpu-sanity": {
        "pretrain": dict(arch="resnet18", epochs=2, batch_size=32, lr=0.05, momentum=0.9,
                         weight_decay=1e-4, schedule="cosine", warmup_epochs=0, image_size=64,
                         crop_ratio=0.875, hflip=True, mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5]),
        "finetune": dict(epochs=5, batch_size=32, lr=0.01, momentum=0.9, weight_decay=1e-4,
                         schedule="cosine", warmup_epochs=0, image_size=64, crop_ratio=0.875,
                         hflip=True, mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5]),
    },
}


def _floats(n):
    return lambda v: isinstance(v, list) and len(v) == n and all(isinstance(x, (int, float)) for x in v)


#: key -> (type, check, allowed, default)
TRAIN_KEYS = {
    "kind": (str, lambda v: v in ("pretrain", "finetune"), "pretrain | finetune", "pretrain"),
    "recipe": (str, lambda v: v in RECIPES, " | ".join(RECIPES), "paper"),
    "arch": (str, bool, "a timm model name", ""),
    "data": (str, None, "a dataset folder or URL", ""),
    "preset": (str, None, "a preset name or YAML file (on-the-fly data)", ""),
    "preset_set": (list, None, "key=value overrides of the on-the-fly preset", []),
    "checkpoint": (str, None, "a checkpoint file", ""),
    "epochs": (int, lambda v: v > 0, "an integer > 0", 90),
    "batch_size": (int, lambda v: v > 0, "an integer > 0 (the global batch)", 256),
    "lr": (float, lambda v: v > 0, "a number > 0", 0.01),
    "momentum": (float, lambda v: 0 <= v < 1, "a number in [0, 1)", 0.9),
    "weight_decay": (float, lambda v: v >= 0, "a number >= 0", 1e-4),
    "schedule": (str, lambda v: v in ("step", "cosine", "constant"), "step | cosine | constant", "step"),
    "milestones": (list, lambda v: all(0 < m < 1 for m in v), "fractions of the run in (0, 1)", [1 / 3, 2 / 3]),
    "gamma": (float, lambda v: 0 < v <= 1, "a number in (0, 1]", 0.1),
    "warmup_epochs": (int, lambda v: v >= 0, "an integer >= 0", 0),
    "image_size": (int, lambda v: 8 <= v <= 4096, "an integer in 8..4096", 224),
    "crop_ratio": (float, lambda v: 0 < v <= 1, "a number in (0, 1]", 224 / 256),
    "hflip": (bool, None, "true | false", False),
    "mean": (list, _floats(3), "three numbers", [0.2, 0.2, 0.2]),
    "std": (list, _floats(3), "three numbers", [0.5, 0.5, 0.5]),
    "seed": (int, lambda v: 0 <= v < 2**32, "an integer in 0..2**32-1", 1),
    "workers": (int, lambda v: v >= 0, "an integer >= 0", 0),
    "device": (str, lambda v: v in ("auto", "cpu", "cuda"), "auto | cpu | cuda", "auto"),
    "render_device": (str, lambda v: v in ("auto", "cpu", "cuda"), "auto | cpu | cuda", "auto"),
    "amp": (str, lambda v: v in ("auto", "bf16", "fp16", "off"), "auto | bf16 | fp16 | off", "auto"),
    "epoch_size": (int, lambda v: v >= 0, "an integer >= 0 (0: one pass over the data)", 0),
    "shuffle": (int, lambda v: v >= 0, "an integer >= 0", 1000),
    "eval_every": (int, lambda v: v > 0, "an integer > 0", 1),
    "freeze": (bool, None, "true | false (train only the classifier head)", False),
}

#: Keys a resumed run may change: where it runs, how long, and where the data now lives.
RESUMABLE = ("epochs", "device", "render_device", "workers", "amp", "data", "eval_every")


def _check_value(key: str, value, source: str = "the command line"):
    if key not in TRAIN_KEYS:
        raise ConfigError(f"unknown training key {key!r}; known keys: {', '.join(TRAIN_KEYS)}")
    typ, check, allowed, _ = TRAIN_KEYS[key]
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if typ is list and isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, typ) or (typ is not bool and isinstance(value, bool)) \
            or (check is not None and not check(value)):
        raise ConfigError(f"{key.replace('_', '-')} from {source} must be {allowed}, got {value!r}")
    return value


def resolve_config(kind: str, recipe: str | None = None, options: dict | None = None,
                   resume_from=None) -> dict:
    """Defaults < recipe < ``options``: the resolved training configuration.

    Args:
        kind: ``pretrain`` or ``finetune`` (picks the recipe's half).
        recipe: a name in :data:`RECIPES` (default ``paper``).
        options: values given on the command line (``None`` values are ignored).
        resume_from: a run folder; its ``last.pt`` supplies the configuration, and
            ``options`` may change only :data:`RESUMABLE` keys.

    Returns:
        A flat dict with every key of :data:`TRAIN_KEYS`.
    """
    options = {k: v for k, v in (options or {}).items() if v is not None}
    options = {k: _check_value(k, v) for k, v in options.items()}
    if resume_from is not None:
        ckpt = _last_checkpoint(resume_from, kind)
        cfg = {**{k: spec[3] for k, spec in TRAIN_KEYS.items()}, **ckpt["config"]}
        if recipe is not None and recipe != cfg["recipe"]:
            options["recipe"] = recipe
        for key, value in options.items():
            if key not in RESUMABLE and value != cfg.get(key):
                raise ConfigError(f"--{key.replace('_', '-')} {_show(value)} differs from the run being resumed "
                                  f"({_show(cfg.get(key))}); drop it, or start a new --out")
        cfg.update(options)
        return cfg
    recipe = recipe or options.get("recipe") or "paper"
    if recipe not in RECIPES:
        raise ConfigError(f"unknown recipe {recipe!r}; choose one of: {', '.join(RECIPES)}")
    cfg = {k: spec[3] for k, spec in TRAIN_KEYS.items()}
    cfg.update(RECIPES[recipe][kind])
    cfg.update(options)
    cfg["kind"], cfg["recipe"] = kind, recipe
    if cfg["schedule"] == "step" and not cfg["milestones"]:
        raise ConfigError("the step schedule needs milestones (fractions of the run, e.g. 0.33,0.67)")
    return cfg


def _show(v) -> str:
    return ",".join(map(str, v)) if isinstance(v, list) else str(v)


# --------------------------------------------------------------------------------------------
# The learning-rate schedule: a pure function of the step.
# --------------------------------------------------------------------------------------------

def learning_rate(cfg: dict, step: int, steps_per_epoch: int) -> float:
    """The learning rate of optimizer step ``step`` (0-based) of a run.

    Linear warm-up over ``warmup_epochs``, then ``step`` (multiply by ``gamma``
    at each milestone, given as fractions of ``epochs``: 1/3 and 2/3 of 90 are
    the original 30 and 60), ``cosine`` (to 0 at the end) or ``constant``.
    """
    base, epochs = cfg["lr"], cfg["epochs"]
    warm = cfg["warmup_epochs"] * steps_per_epoch
    if step < warm:
        return base * (step + 1) / warm
    if cfg["schedule"] == "cosine":
        total = max(epochs * steps_per_epoch - warm, 1)
        return base * 0.5 * (1 + math.cos(math.pi * min((step - warm) / total, 1.0)))
    if cfg["schedule"] == "step":
        epoch = step // steps_per_epoch
        passed = sum(epoch >= round(m * epochs) for m in cfg["milestones"])
        return base * cfg["gamma"] ** passed
    return base


# --------------------------------------------------------------------------------------------
# Where the run executes: device, AMP, DDP (torchrun).
# --------------------------------------------------------------------------------------------

@dataclass
class Runtime:
    """Device, precision and place in a DDP job of this process."""

    device: "torch.device"
    amp_dtype: "torch.dtype | None"
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_runtime(device: str = "auto", amp: str = "auto") -> Runtime:
    """Pick the device, the autocast dtype, and join a torchrun job if there is one.

    Raises:
        ConfigError: ``cuda`` asked for but not available.
    """
    cuda = torch.cuda.is_available()
    if device == "cuda" and not cuda:
        raise ConfigError(f"--device cuda but PyTorch {torch.__version__} sees no CUDA device "
                          "(torch.cuda.is_available() is False); use --device cpu")
    kind = "cuda" if device == "cuda" or (device == "auto" and cuda) else "cpu"
    rank, world = 0, int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:  # started by torchrun: one process per GPU
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if kind == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
    dev = torch.device("cpu")
    if kind == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
        torch.backends.cudnn.benchmark = True
    if amp == "auto":
        amp = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if kind == "cuda" else "off"
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}[amp]
    if dtype is torch.float16 and kind == "cpu":
        raise ConfigError("--amp fp16 needs --device cuda; use --amp bf16 or off on a CPU")
    return Runtime(dev, dtype, rank, world)


def _all_reduce(t: "torch.Tensor", rt: Runtime) -> "torch.Tensor":
    if rt.world > 1:
        torch.distributed.all_reduce(t)
    return t


# --------------------------------------------------------------------------------------------
# Data: every source yields uint8 batches (B, 3, R, R), R = round(image_size / crop_ratio).
# --------------------------------------------------------------------------------------------

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

        from .data import to_tensor

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


def _imagefolder_source(path: Path, cfg: dict, rt: Runtime, train: bool) -> Source:
    from torchvision.datasets import ImageFolder

    try:
        ds = ImageFolder(str(path), transform=SquareUint8(load_size(cfg)))
    except (FileNotFoundError, OSError):
        raise InputError(f"{path} holds no images in class folders; an ImageFolder is "
                         f"{path}/<class>/<image>.png (or .jpg, .webp)") from None
    return _map_source(ds, cfg, rt, train, str(path), len(ds.classes), classes=list(ds.classes))


def _shard_source(url: str, manifest: dict, cfg: dict, rt: Runtime, train: bool) -> Source:
    from .data import shard_dataset

    samples, classes = int(manifest["plan"]["samples"]), int(manifest["plan"]["classes"])
    if samples == 0:
        raise InputError(f"{url} holds no samples; generate it again with more categories")
    workers, batch = cfg["workers"], cfg["batch_size"] // rt.world
    loader_kw = dict(num_workers=workers, pin_memory=rt.device.type == "cuda")
    if not train:  # every sample once: split by node, then by worker
        ds = shard_dataset(url, resampled=False, shuffle=0, transform=SquareUint8(load_size(cfg)))
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
    ds = shard_dataset(url, resampled=True, epoch_size=per_worker, shuffle=min(cfg["shuffle"], samples),
                       seed=cfg["seed"], transform=SquareUint8(load_size(cfg)))
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, drop_last=True, **loader_kw)

    def batches(epoch):
        ds.set_epoch(epoch)
        return loader

    return Source(batches, classes, steps, url)


def render_device(cfg: dict, rt: Runtime) -> str:
    """Where on-the-fly data is rendered: ``cfg['render_device']``, or for ``auto``
    the GPU when training on one and numba-cuda can use it, else the CPU."""
    want = cfg["render_device"]
    if want != "auto":
        return want
    if rt.device.type != "cuda":
        return "cpu"
    from .render_cuda import cuda_available

    return "cuda" if cuda_available() else "cpu"


def _stream_source(cfg: dict, rt: Runtime) -> Source:
    """On-the-fly rendering, no disk: :class:`fractaldb.data.FractalStream` in the
    DataLoader workers, or :class:`fractaldb.data.GPUFractalStream` on the GPU."""
    from .data import FractalStream, GPUFractalStream

    batch = cfg["batch_size"] // rt.world
    where = render_device(cfg, rt)
    if where == "cuda":
        from .render_cuda import cuda_available

        if not cuda_available():
            raise ConfigError("--render-device cuda needs numba-cuda (pip install 'fractaldb[cuda]') and an NVIDIA "
                              "GPU; none is usable here. Use --render-device cpu")
        stream = GPUFractalStream(cfg["preset"], cfg["preset_set"], batch_size=batch,
                                  transform=SquareUint8(load_size(cfg)), window=max(4 * batch, cfg["shuffle"]))
        loader = stream
    else:
        stream = FractalStream(cfg["preset"], cfg["preset_set"], transform=SquareUint8(load_size(cfg)),
                               shuffle=min(cfg["shuffle"], 256))
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
    from .dataset import load_manifest
    from .storage import Store

    store = Store(data)
    if store.exists("manifest.json") or not store.local:
        return _shard_source(data, load_manifest(store), cfg, rt, train)
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


# --------------------------------------------------------------------------------------------
# Models and checkpoints.
# --------------------------------------------------------------------------------------------

def check_arch(arch: str) -> None:
    """Raise :class:`ConfigError` unless ``arch`` is a timm model name (with a suggestion)."""
    import timm

    if not arch or not timm.is_model(arch):
        import difflib

        close = difflib.get_close_matches(arch, timm.list_models(), n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ConfigError(f"unknown architecture {arch!r}; {hint}list the names with "
                          "python -c \"import timm; print(timm.list_models('resnet*'))\"")


def create_model(arch: str, num_classes: int, seed: int, **kwargs) -> "torch.nn.Module":
    """``timm.create_model(arch, pretrained=False, num_classes, in_chans=3)``, initialised
    from the stream (seed, ``train``, init) without touching the global RNG.

    Raises:
        ConfigError: ``arch`` is not a timm model name.
    """
    import timm

    check_arch(arch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int_seed(seed, "train", _INIT))
        return timm.create_model(arch, pretrained=False, num_classes=num_classes, in_chans=3, **kwargs)


def reset_head(model, num_classes: int, seed: int) -> None:
    """A new classifier for ``num_classes`` (``model.reset_classifier``), seeded."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int_seed(seed, "train", _HEAD))
        model.reset_classifier(num_classes)


def freeze_backbone(model) -> None:
    """Train only the classifier (a linear probe): every other parameter stops taking gradients.

    BatchNorm layers stay in training mode, so their running statistics still adapt.
    """
    head = {id(p) for p in model.get_classifier().parameters()}
    for p in model.parameters():
        p.requires_grad_(id(p) in head)


def _save(obj, path: Path) -> None:
    """``torch.save`` under a temporary name, then rename: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}; choose a writable --out") from None


def load_checkpoint(path) -> dict:
    """A checkpoint file (ours, or a plain ``state_dict``) as a dict, tensors on the CPU.

    Raises:
        InputError: missing or unreadable file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint {path} does not exist; give the last.pt or best.pt of a "
                         "'fractaldb pretrain' run")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling problem is a bad input file
        raise InputError(f"checkpoint {path} cannot be read ({type(exc).__name__}); give a .pt file "
                         "written by 'fractaldb pretrain' or a plain state_dict") from None
    if not isinstance(obj, dict):
        raise InputError(f"checkpoint {path} holds a {type(obj).__name__}, not a state_dict")
    if obj.get("format") != CHECKPOINT_FORMAT:  # a plain state_dict (e.g. the published weights)
        obj = {"model": obj.get("state_dict", obj)}
    return obj


def _last_checkpoint(run_dir, kind: str) -> dict:
    path = Path(run_dir) / "last.pt"
    if not path.is_file():
        raise InputError(f"--resume: {path} does not exist; run 'fractaldb {kind}' into {run_dir} first, "
                         "or drop --resume")
    ckpt = load_checkpoint(path)
    if ckpt.get("kind") != kind:
        raise InputError(f"--resume: {path} is not a 'fractaldb {kind}' checkpoint")
    return ckpt


def _check_fresh_run_dir(out: Path) -> None:
    if (out / "last.pt").exists():
        raise OutputError(f"{out} already holds a run (last.pt); add --resume to continue it, or use a new --out")
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file; give a folder")


# --------------------------------------------------------------------------------------------
# The training loop.
# --------------------------------------------------------------------------------------------

def evaluate(model, source: Source, cfg: dict, rt: Runtime) -> dict:
    """Loss and top-1 accuracy (%) of ``model`` on every sample of ``source``."""
    model.eval()
    totals = torch.zeros(3, dtype=torch.float64, device=rt.device)  # loss sum, correct, count
    with torch.no_grad(), torch.autocast(rt.device.type, dtype=rt.amp_dtype, enabled=rt.amp_dtype is not None):
        for images, labels in source.batches(0):
            x, y = prepare_batch(images, cfg, rt), labels.to(rt.device)
            logits = model(x).float()
            totals += torch.stack([nnf.cross_entropy(logits, y, reduction="sum"),
                                   (logits.argmax(1) == y).sum(), torch.tensor(len(y), device=rt.device)]).double()
    loss, correct, count = _all_reduce(totals, rt).tolist()
    return {"val_loss": loss / max(count, 1), "val_top1": 100.0 * correct / max(count, 1), "val_samples": int(count)}


def fit(cfg: dict, rt: Runtime, model, train: Source, val: Source | None = None, run_dir: Path | None = None,
        state: dict | None = None, meta: dict | None = None, on_epoch=None, progress=None) -> dict:
    """Train ``model`` on ``train`` for the epochs ``cfg`` asks for; the one loop of every command.

    Args:
        cfg: resolved configuration (:func:`resolve_config`).
        rt: where to run (:func:`setup_runtime`).
        model: a module on the CPU; moved to ``rt.device`` (and wrapped in DDP) here.
        train: training batches; ``val``: optional evaluation batches (every ``eval_every`` epochs).
        run_dir: where ``last.pt``, ``best.pt`` and ``log.jsonl`` go (None: nothing is written).
        state: a checkpoint to continue from (``epoch``, ``optimizer``, ``scaler``, ``history``).
        meta: extra fields stored in every checkpoint (kind, arch, num_classes, classes ...).
        on_epoch: ``on_epoch(record)`` after each epoch (main process only).
        progress: ``progress(iterable, total, desc)`` wrapping the batches, e.g. a tqdm bar.

    Returns:
        ``{"history": [...], "best": record, "last": record}``; the model keeps the last weights.
    """
    seed, epochs, steps = cfg["seed"], cfg["epochs"], train.steps
    model.to(rt.device)
    if rt.device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]  # all but a frozen backbone
    optimizer = torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"])
    scaler = torch.amp.GradScaler(rt.device.type, enabled=rt.amp_dtype is torch.float16)
    start, history = 0, []
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        start, history = int(state["epoch"]), list(state["history"])
    net = model
    if rt.world > 1:
        ids = [rt.device.index] if rt.device.type == "cuda" else None
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    score = "val_top1" if val is not None else "top1"
    best = max(history, key=lambda r: r.get(score, -1.0), default=None)

    for epoch in range(start, epochs):
        # everything random in this epoch is a function of (seed, epoch)
        gen = torch.Generator().manual_seed(int_seed(seed, "train", _AUGMENT, epoch))
        net.train()
        totals = torch.zeros(3, dtype=torch.float64, device=rt.device)  # loss sum, correct, count
        batches = train.batches(epoch)
        if progress is not None and rt.main:
            batches = progress(batches, steps, f"epoch {epoch + 1}/{epochs}")
        t0 = time.perf_counter()
        with torch.random.fork_rng(devices=[rt.device] if rt.device.type == "cuda" else []):
            torch.manual_seed(int_seed(seed, "train", _DROPOUT, epoch, rt.rank))
            for i, (images, labels) in enumerate(batches):
                lr = learning_rate(cfg, epoch * steps + i, steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                x, y = prepare_batch(images, cfg, rt, gen), labels.to(rt.device, non_blocking=True)
                if rt.device.type == "cuda":
                    x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast(rt.device.type, dtype=rt.amp_dtype, enabled=rt.amp_dtype is not None):
                    logits = net(x)
                    loss = nnf.cross_entropy(logits, y)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                totals += torch.stack([loss.detach().float() * len(y), (logits.argmax(1) == y).sum(),
                                       torch.tensor(len(y), device=rt.device)]).double()
        seconds = time.perf_counter() - t0
        loss_sum, correct, count = _all_reduce(totals, rt).tolist()
        if count == 0:
            raise InputError(f"{train.name} yielded no batch in epoch {epoch + 1}; check the data and --batch-size")
        record = {"epoch": epoch + 1, "lr": lr, "loss": loss_sum / count, "top1": 100.0 * correct / count,
                  "samples": int(count), "seconds": round(seconds, 3), "images_per_s": round(count / seconds, 1)}
        if val is not None and ((epoch + 1) % cfg["eval_every"] == 0 or epoch + 1 == epochs):
            record.update(evaluate(net, val, cfg, rt))
        history.append(record)
        is_best = score in record and (best is None or record[score] > best.get(score, -1.0))
        if is_best:
            best = record
        if rt.main and run_dir is not None:
            ckpt = {"format": CHECKPOINT_FORMAT, **(meta or {}), "config": cfg, "epoch": epoch + 1,
                    "step": (epoch + 1) * steps, "steps_per_epoch": steps, "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(), "history": history,
                    "best": best, "versions": {"fractaldb": __version__, "torch": str(torch.__version__)}}
            _save(ckpt, run_dir / "last.pt")
            if is_best:
                _save(ckpt, run_dir / "best.pt")
            write_text(run_dir / "log.jsonl", "".join(json.dumps(r) + "\n" for r in history))
        if rt.main and on_epoch is not None:
            on_epoch(record)
    return {"history": history, "best": best, "last": history[-1] if history else None}


def write_text(path: Path, text: str) -> None:
    """Write ``text`` under a temporary name, then rename: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def format_record(r: dict) -> str:
    """One stdout line per epoch."""
    line = (f"epoch {r['epoch']:>3}  loss {r['loss']:.4f}  top1 {r['top1']:6.2f}%  lr {r['lr']:.5f}  "
            f"{r['images_per_s']:.0f} img/s")
    if "val_top1" in r:
        line += f"  val_loss {r['val_loss']:.4f}  val_top1 {r['val_top1']:6.2f}%"
    return line


# --------------------------------------------------------------------------------------------
# Commands: pretrain and finetune are short overrides around fit().
# --------------------------------------------------------------------------------------------

def _prepare_run_dir(out, resume: bool, cfg: dict) -> Path:
    out = Path(out)
    if not resume:
        _check_fresh_run_dir(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "config.json", json.dumps(cfg, indent=1) + "\n")
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc.strerror or exc}; choose a writable --out") from None
    return out


def _teardown(rt: Runtime) -> None:
    if rt.world > 1 and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def pretrain(cfg: dict, out, resume: bool = False, on_epoch=None, progress=None) -> dict:
    """``fractaldb pretrain``: train ``cfg['arch']`` on shards, an ImageFolder or on-the-fly data.

    Args:
        cfg: resolved ``pretrain`` configuration (with ``data``, or ``preset`` for on-the-fly data).
        out: run folder; gets ``config.json``, ``log.jsonl``, ``last.pt`` and ``best.pt``.
        resume: continue from ``out/last.pt`` (same data class count and settings).
        on_epoch, progress: see :func:`fit`.

    Returns:
        A summary: run folder, arch, classes, epochs done, last and best records, rank.

    Raises:
        FractalDBError: bad data, architecture, device, or run folder (nothing is written).
    """
    out = Path(out)
    if not resume:
        _check_fresh_run_dir(out)
    if bool(cfg["data"]) == bool(cfg["preset"]):
        raise ConfigError("give --data DIR_OR_URL, or --on-the-fly with --preset NAME (not both)")
    if cfg["batch_size"] % int(os.environ.get("WORLD_SIZE", "1")):
        raise ConfigError(f"--batch-size {cfg['batch_size']} must divide evenly across the "
                          f"{os.environ['WORLD_SIZE']} DDP processes")
    check_arch(cfg["arch"])
    rt = setup_runtime(cfg["device"], cfg["amp"])
    try:
        train = open_source(cfg["data"], cfg, rt) if cfg["data"] else _stream_source(cfg, rt)
        state = None
        if resume:
            state = _last_checkpoint(out, "pretrain")
            if state["num_classes"] != train.num_classes:
                raise ConfigError(f"{out / 'last.pt'} was trained on {state['num_classes']} classes but "
                                  f"{train.name} has {train.num_classes}; resume with the data it was trained "
                                  "on, or start a new --out")
        model = create_model(cfg["arch"], train.num_classes, cfg["seed"])
        if state is not None:
            model.load_state_dict(state["model"])
        run_dir = _prepare_run_dir(out, resume, cfg) if rt.main else None
        meta = {"kind": "pretrain", "arch": cfg["arch"], "num_classes": train.num_classes, "classes": train.classes}
        result = fit(cfg, rt, model, train, run_dir=run_dir, state=state, meta=meta,
                     on_epoch=on_epoch, progress=progress)
    finally:
        _teardown(rt)
    return {"out": str(out), "arch": cfg["arch"], "num_classes": train.num_classes, "rank": rt.rank,
            "epochs": len(result["history"]), "last": result["last"], "best": result["best"]}


def finetune(cfg: dict, out, resume: bool = False, on_epoch=None, progress=None) -> dict:
    """``fractaldb finetune``: load pretrained weights, new head, train on DATA/train, evaluate on DATA/val.

    Args:
        cfg: resolved ``finetune`` configuration: ``data`` (a folder with ``train/`` and ``val/``)
            and ``checkpoint`` (ours, or a plain state_dict with ``arch`` given); an empty
            ``checkpoint`` with ``arch`` trains from scratch (the baseline).
        out: run folder; gets what :func:`pretrain` writes plus ``results.json``.
        resume, on_epoch, progress: see :func:`pretrain`.

    Returns:
        The summary written to ``out/results.json`` (best and last top-1, epochs, classes).
    """
    out = Path(out)
    if not resume:
        _check_fresh_run_dir(out)
    if not cfg["data"]:
        raise ConfigError("give --data DIR with DIR/train and DIR/val")
    pre = load_checkpoint(cfg["checkpoint"]) if cfg["checkpoint"] else None
    arch = cfg["arch"] or (pre or {}).get("arch", "")
    if pre is not None and pre.get("arch") and cfg["arch"] and cfg["arch"] != pre["arch"]:
        raise ConfigError(f"--arch {cfg['arch']} differs from the checkpoint's {pre['arch']}; drop --arch")
    if not arch:
        raise ConfigError("give --arch: the checkpoint is a plain state_dict and does not name its architecture"
                          if pre is not None else "give --checkpoint CKPT (or --scratch with --arch NAME)")
    cfg = {**cfg, "arch": arch}
    check_arch(arch)
    rt = setup_runtime(cfg["device"], cfg["amp"])
    try:
        train, val = _finetune_sources(cfg["data"], cfg, rt)
        state = _last_checkpoint(out, "finetune") if resume else None
        if state is not None and state["num_classes"] != train.num_classes:
            raise ConfigError(f"{out / 'last.pt'} was trained on {state['num_classes']} classes but "
                              f"{train.name} has {train.num_classes}; resume with the same data, or a new --out")
        if pre is not None:
            pre_classes = pre.get("num_classes") or _head_classes(pre["model"])
            model = create_model(arch, pre_classes, cfg["seed"])
            try:
                model.load_state_dict(pre["model"])
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()[0]
                raise InputError(f"checkpoint {cfg['checkpoint']} does not fit {arch} ({first}); "
                                 "give the --arch it was trained with") from None
            reset_head(model, train.num_classes, cfg["seed"])
        else:
            model = create_model(arch, train.num_classes, cfg["seed"])
        if state is not None:
            model.load_state_dict(state["model"])
        if cfg["freeze"]:
            freeze_backbone(model)
        run_dir = _prepare_run_dir(out, resume, cfg) if rt.main else None
        meta = {"kind": "finetune", "arch": arch, "num_classes": train.num_classes, "classes": train.classes,
                "pretrained": cfg["checkpoint"] or None}
        result = fit(cfg, rt, model, train, val, run_dir=run_dir, state=state, meta=meta,
                     on_epoch=on_epoch, progress=progress)
    finally:
        _teardown(rt)
    best, last = result["best"], result["last"]
    summary = {"out": str(out), "arch": arch, "checkpoint": cfg["checkpoint"] or None, "data": cfg["data"],
               "num_classes": train.num_classes, "classes": train.classes, "epochs": len(result["history"]),
               "best_top1": best["val_top1"], "best_epoch": best["epoch"], "last_top1": last["val_top1"],
               "rank": rt.rank}
    if rt.main:
        write_text(out / "results.json", json.dumps(summary, indent=1) + "\n")
    return summary


def _head_classes(state_dict: dict) -> int:
    """Class count of a plain state_dict: rows of its last 2-D weight (the classifier)."""
    weights = [v for k, v in state_dict.items() if k.endswith("weight") and getattr(v, "ndim", 0) == 2]
    if not weights:
        raise InputError("the checkpoint has no classifier weight; is it a classification model?")
    return int(weights[-1].shape[0])


# --------------------------------------------------------------------------------------------
# The transfer check moved to fractaldb.experiments; its names stay reachable here.
# --------------------------------------------------------------------------------------------

_EXPERIMENT_NAMES = ("TRANSFER_SETTINGS", "ARMS", "PROTOCOLS", "transfer_experiment", "transfer_table")


def __getattr__(name: str):
    """``fractaldb.train.transfer_experiment`` and friends: imported from :mod:`fractaldb.experiments`
    on first use (it imports this module, so importing it here at the top would be a cycle)."""
    if name in _EXPERIMENT_NAMES:
        from . import experiments

        return getattr(experiments, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
