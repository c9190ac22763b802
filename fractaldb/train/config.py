"""The configuration of a run (recipe < command line -> one flat dict) and the learning-rate schedule.

Needs no PyTorch: the command line builds its options from :class:`TrainSettings`
without importing it.

The resolved dict is saved beside the outputs (``RUN_DIR/config.json``) and in
every checkpoint; a resumed run takes it back from ``last.pt``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ConfigError
from ..families.base import VIEW_SAMPLING
from ..gpu import AUTO_DEVICES
from ..safety import check_bytes, check_workers
from ..schema import coerce, defaults, setting, settings_of

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]

# Ids inside the "train" purpose: one stream per use, never renumbered.
_INIT, _SHUFFLE, _AUGMENT, _DROPOUT, _HEAD, _TIMM_AUGMENT = 0, 1, 2, 3, 4, 5


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
    # DeiT-Tiny on FractalDB-1k as published (Nakashima et al.; VARIANTS.md section 5): AdamW
    # 5e-4 x batch/512, wd 0.05, cosine with 5 warm-up epochs, RandAugment m9-mstd0.5-inc1,
    # Mixup 0.8 / CutMix 1.0, label smoothing 0.1, drop-path 0.1, random erasing 0.25, no
    # flips, mean/std 0.5.  Fine-tuning keeps the augmentation and shortens the schedule.
    "deit-tiny": {
        "pretrain": dict(arch="deit_tiny_patch16_224", epochs=300, batch_size=1024, lr=5e-4, lr_base_batch=512,
                         optimizer="adamw", weight_decay=0.05, schedule="cosine", warmup_epochs=5,
                         image_size=224, crop_ratio=224 / 256, hflip=False, mean=[0.5] * 3, std=[0.5] * 3,
                         randaugment="rand-m9-mstd0.5-inc1", mixup=0.8, cutmix=1.0, label_smoothing=0.1,
                         drop_path=0.1, random_erasing=0.25),
        "finetune": dict(epochs=100, batch_size=512, lr=5e-4, lr_base_batch=512, optimizer="adamw",
                         weight_decay=0.05, schedule="cosine", warmup_epochs=5, image_size=224,
                         crop_ratio=224 / 256, hflip=True, mean=[0.5] * 3, std=[0.5] * 3,
                         randaugment="rand-m9-mstd0.5-inc1", mixup=0.8, cutmix=1.0, label_smoothing=0.1,
                         drop_path=0.1, random_erasing=0.25),
    },
    # 1p-frac (Nakamura et al., ECCV'24; VARIANTS.md section 2): ViT-Tiny, AdamW 5e-4, wd 0.05,
    # cosine with 5 warm-up epochs, very many epochs of 1,000 images (80,000 epochs ~ 240k
    # iterations at batch 256 is theirs; set --epochs for your budget), RandAugment, random
    # erasing 0.5, Mixup 0.8 / CutMix 1.0 with label smoothing 0.1, flips.  The loss is the
    # paper's LPCE ("locally perturbed cross-entropy"): in the authors' code plain softmax
    # cross-entropy over the C perturbed copies of the one fractal (each its own class),
    # with soft Mixup/CutMix targets and label smoothing 0.1 -- so here loss=ce on the
    # 1p-frac data, with these mixup, cutmix and label_smoothing values.
    "1p-frac": {
        "pretrain": dict(arch="deit_tiny_patch16_224", epochs=80000, batch_size=256, lr=5e-4, lr_base_batch=0,
                         optimizer="adamw", weight_decay=0.05, schedule="cosine", warmup_epochs=5,
                         image_size=224, crop_ratio=224 / 256, hflip=True, mean=[0.5] * 3, std=[0.5] * 3,
                         randaugment="rand-m9-mstd0.5-inc1", mixup=0.8, cutmix=1.0, label_smoothing=0.1,
                         drop_path=0.1, random_erasing=0.5),
        "finetune": dict(epochs=100, batch_size=256, lr=5e-4, optimizer="adamw", weight_decay=0.05,
                         schedule="cosine", warmup_epochs=5, image_size=224, crop_ratio=224 / 256, hflip=True,
                         mean=[0.5] * 3, std=[0.5] * 3, randaugment="rand-m9-mstd0.5-inc1", mixup=0.8,
                         cutmix=1.0, label_smoothing=0.1, drop_path=0.1, random_erasing=0.25),
    },
    # 3-D OFDB (Nakamura et al., ICCV'23; ryoo-nakamura/OFDB pre-train.sh): ViT-Tiny, AdamW lr 1e-3
    # at batch 256 (32 x 8 GPUs), wd 0.05, cosine with 5 warm-up epochs, 80,000 epochs of 1,000
    # categories, RandAugment m9, random erasing 0.5, Mixup 0.8 / CutMix 1.0 with label
    # smoothing 0.1, drop-path 0.1, flips -- and the original's loader: one random view of
    # each category per visit (view_sampling=class; 12 views are stored).  Not reproduced:
    # its vertical flips and colour jitter 0.4 (no such keys).
    "3d-ofdb": {
        "pretrain": dict(arch="deit_tiny_patch16_224", epochs=80000, batch_size=256, lr=1e-3, lr_base_batch=0,
                         optimizer="adamw", weight_decay=0.05, schedule="cosine", warmup_epochs=5,
                         image_size=224, crop_ratio=224 / 256, hflip=True, mean=[0.5] * 3, std=[0.5] * 3,
                         randaugment="rand-m9-mstd0.5-inc1", mixup=0.8, cutmix=1.0, label_smoothing=0.1,
                         drop_path=0.1, random_erasing=0.5, view_sampling="class"),
        "finetune": dict(epochs=100, batch_size=256, lr=5e-4, optimizer="adamw", weight_decay=0.05,
                         schedule="cosine", warmup_epochs=5, image_size=224, crop_ratio=224 / 256, hflip=True,
                         mean=[0.5] * 3, std=[0.5] * 3, randaugment="rand-m9-mstd0.5-inc1", mixup=0.8,
                         cutmix=1.0, label_smoothing=0.1, drop_path=0.1, random_erasing=0.25),
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


@dataclass(frozen=True, kw_only=True)
class TrainSettings:
    """Every training key (``pretrain`` / ``finetune``): recipe < command line, one flat dict
    saved beside the outputs.  The command line's options are made from these fields
    (:func:`fractaldb.schema.option`)."""

    kind: str = setting("pretrain", "Pretraining or fine-tuning.", choices=("pretrain", "finetune"))
    recipe: str = setting("paper", "Defaults to start from: paper (ResNet-50, SGD), deit-tiny (ViT: AdamW, "
                          "RandAugment, Mixup/CutMix, label smoothing, drop-path, random erasing), 1p-frac (its "
                          "loss is the paper's LPCE), 3d-ofdb (one random view per class each epoch), or "
                          "cpu-sanity.", choices=tuple(RECIPES))
    arch: str = setting("", "A timm model name, e.g. resnet50, resnet18, deit_tiny_patch16_224.", "a timm model name",
                        bool)
    data: str = setting("", "A dataset folder or URL.", "a dataset folder or URL")
    preset: str = setting("", "Preset (name or YAML) to render on the fly.",
                          "a preset name or YAML file (on-the-fly data)")
    preset_set: list = setting([], "key=value overrides of the on-the-fly preset.",
                               "key=value overrides of the on-the-fly preset", kind=list)
    checkpoint: str = setting("", "Pretrained weights: a run's last.pt/best.pt, or a plain state_dict.",
                              "a checkpoint file")
    epochs: int = setting(90, "Epochs to train (in total, when resuming).", "an integer > 0", lambda v: v > 0)
    batch_size: int = setting(256, "Global batch (split across DDP processes).", "an integer > 0 (the global batch)",
                              lambda v: v > 0)
    lr: float = setting(0.01, "Base learning rate (paper: 0.01).", "a number > 0", lambda v: v > 0)
    momentum: float = setting(0.9, "SGD momentum (paper: 0.9).", "a number in [0, 1)", lambda v: 0 <= v < 1)
    weight_decay: float = setting(1e-4, "Weight decay (paper: 1e-4).", "a number >= 0", lambda v: v >= 0)
    schedule: str = setting("step", "LR schedule (paper: step, x0.1 at 1/3 and 2/3 of the run).",
                            choices=("step", "cosine", "constant"))
    milestones: list = setting([1 / 3, 2 / 3], "Step schedule milestones as fractions of the run "
                               "(paper: 0.3333,0.6667).", "fractions of the run in (0, 1)",
                               lambda v: all(isinstance(m, (int, float)) and 0 < m < 1 for m in v), kind=list)
    gamma: float = setting(0.1, "Step schedule factor.", "a number in (0, 1]", lambda v: 0 < v <= 1)
    warmup_epochs: int = setting(0, "Linear LR warm-up epochs.", "an integer >= 0", lambda v: v >= 0)
    image_size: int = setting(224, "Network input side (paper: 224).", "an integer in 8..4096",
                              lambda v: 8 <= v <= 4096)
    crop_ratio: float = setting(224 / 256, "Crop / resized side: images are resized to image-size/ratio, then "
                                "cropped (paper: 224/256).", "a number in (0, 1]", lambda v: 0 < v <= 1)
    hflip: bool = setting(False, "Random horizontal flips.", "true | false")
    mean: list = setting([0.2, 0.2, 0.2], "Normalisation mean (three numbers).", "three numbers", _floats(3),
                         kind=list)
    std: list = setting([0.5, 0.5, 0.5], "Normalisation std (three numbers).", "three numbers", _floats(3), kind=list)
    seed: int = setting(1, "Run seed: init, data order, crops.", "an integer in 0..2**32-1",
                        lambda v: 0 <= v < 2**32, bound=False)
    workers: int = setting(0, "DataLoader worker processes.", "an integer >= 0", lambda v: v >= 0)
    device: str = setting("auto", "Training device; auto: cuda if available.", choices=AUTO_DEVICES)
    render_device: str = setting("auto", "Where --on-the-fly data is rendered; auto: on the GPU when training on "
                                 "one and numba-cuda can use it (batches stay in GPU memory).", choices=AUTO_DEVICES)
    amp: str = setting("auto", "Mixed precision (torch.autocast); auto: bf16/fp16 on CUDA, off on CPU.",
                       choices=("auto", "bf16", "fp16", "off"))
    epoch_size: int = setting(0, "Samples per epoch for shards/on-the-fly (0: one pass).",
                              "an integer >= 0 (0: one pass over the data)", lambda v: v >= 0)
    shuffle: int = setting(1000, "Sample shuffle buffer.", "an integer >= 0", lambda v: v >= 0)
    eval_every: int = setting(1, "Evaluate on val/ every N epochs (and at the end).", "an integer > 0",
                              lambda v: v > 0)
    freeze: bool = setting(False, "Train only the new head (a linear probe); BatchNorm statistics still adapt.",
                           "true | false (train only the classifier head)")
    # The ViT-era recipe's pieces (fractaldb.train.augment; timm's implementations).
    optimizer: str = setting("sgd", "sgd (momentum, weight decay) or adamw (the ViT recipes).",
                             choices=("sgd", "adamw"))
    lr_base_batch: int = setting(0, "lr is given per this global batch (scaled linearly; 0: as given).",
                                 "an integer >= 0 (lr is per this batch; 0: as given)", lambda v: v >= 0)
    label_smoothing: float = setting(0.0, "Label smoothing.", "a number in [0, 1)", lambda v: 0 <= v < 1)
    mixup: float = setting(0.0, "Mixup alpha (0: off).", "a number >= 0 (Mixup alpha; 0: off)", lambda v: v >= 0)
    cutmix: float = setting(0.0, "CutMix alpha (0: off).", "a number >= 0 (CutMix alpha; 0: off)", lambda v: v >= 0)
    randaugment: str = setting("", "timm RandAugment policy, e.g. rand-m9-mstd0.5-inc1 ('' or none: off).",
                               "a timm RandAugment string such as rand-m9-mstd0.5-inc1, or '' (off)",
                               lambda v: v == "" or v.startswith("rand-"))
    random_erasing: float = setting(0.0, "Random erasing probability.", "a probability in [0, 1)",
                                    lambda v: 0 <= v < 1)
    drop_path: float = setting(0.0, "Stochastic depth rate (ViTs).", "a rate in [0, 1)", lambda v: 0 <= v < 1)
    loss: str = setting("ce", "ce (cross-entropy; soft targets with Mixup) or bce (multi-label data such as "
                        "multi-fractal-1k: one sigmoid per class).", "ce | bce (multi-label)", choices=("ce", "bce"))
    view_sampling: str = setting("all", "Multi-view data (3-D fractals): all (every stored view is a sample) or one "
                                 "random view per class or per instance each epoch (the 3-D OFDB loader: class).",
                                 choices=VIEW_SAMPLING)


#: key -> :class:`fractaldb.schema.Setting` of every training key (:class:`TrainSettings`).
TRAIN_KEYS = settings_of(TrainSettings)

#: Keys a resumed run may change: where it runs, how long, and where the data now lives.
RESUMABLE = ("epochs", "device", "render_device", "workers", "amp", "data", "eval_every")


def _check_value(key: str, value, source: str = "the command line"):
    if key not in TRAIN_KEYS:
        raise ConfigError(f"unknown training key {key!r}; known keys: {', '.join(TRAIN_KEYS)}")
    value = coerce(TRAIN_KEYS[key], value, f"{key.replace('_', '-')} from {source}")
    if key == "workers" and value:
        check_workers(value, f"--workers from {source}")
    return value


def _check_memory(cfg: dict) -> None:
    """One batch of float images must fit the memory bound (a typo in --batch-size
    would otherwise end in an out-of-memory kill)."""
    side = cfg["image_size"]
    check_bytes(f"a batch of {cfg['batch_size']} images of {side}x{side}", cfg["batch_size"] * side * side * 3 * 4,
                "lower --batch-size or --image-size")


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
        from .checkpoints import _last_checkpoint  # torch: only a resumed run reads a checkpoint

        ckpt = _last_checkpoint(resume_from, kind)
        cfg = {**defaults(TrainSettings), **ckpt["config"]}
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
    cfg = defaults(TrainSettings)
    cfg.update(RECIPES[recipe][kind])
    cfg.update(options)
    cfg["kind"], cfg["recipe"] = kind, recipe
    if cfg["schedule"] == "step" and not cfg["milestones"]:
        raise ConfigError("the step schedule needs milestones (fractions of the run, e.g. 0.33,0.67)")
    _check_memory(cfg)
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
    if cfg.get("lr_base_batch"):  # "5e-4 x batch / 512"
        base = base * cfg["batch_size"] / cfg["lr_base_batch"]
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
