"""The configuration of a run (recipe < command line -> one flat dict) and the learning-rate schedule.

The resolved dict is saved beside the outputs (``RUN_DIR/config.json``) and in
every checkpoint; a resumed run takes it back from ``last.pt``.
"""

from __future__ import annotations

import math

from ..errors import ConfigError
from ..safety import check_bound, check_bytes, check_workers
from .checkpoints import _last_checkpoint

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
    # erasing 0.5, Mixup 0.8 / CutMix 1.0 with label smoothing 0.1, flips.
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
    # The ViT-era recipe's pieces (fractaldb.train.augment; timm's implementations).
    "optimizer": (str, lambda v: v in ("sgd", "adamw"), "sgd | adamw", "sgd"),
    "lr_base_batch": (int, lambda v: v >= 0, "an integer >= 0 (lr is per this batch; 0: as given)", 0),
    "label_smoothing": (float, lambda v: 0 <= v < 1, "a number in [0, 1)", 0.0),
    "mixup": (float, lambda v: v >= 0, "a number >= 0 (Mixup alpha; 0: off)", 0.0),
    "cutmix": (float, lambda v: v >= 0, "a number >= 0 (CutMix alpha; 0: off)", 0.0),
    "randaugment": (str, lambda v: v == "" or v.startswith("rand-"), "a timm RandAugment string such as "
                    "rand-m9-mstd0.5-inc1, or '' (off)", ""),
    "random_erasing": (float, lambda v: 0 <= v < 1, "a probability in [0, 1)", 0.0),
    "drop_path": (float, lambda v: 0 <= v < 1, "a rate in [0, 1)", 0.0),
    "loss": (str, lambda v: v in ("ce", "bce"), "ce | bce (multi-label)", "ce"),
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
    if key == "workers" and value:
        check_workers(value, f"--workers from {source}")
    check_bound(key, value, f"--{key.replace('_', '-')} from {source}")
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
