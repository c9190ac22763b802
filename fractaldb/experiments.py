"""Experiments that check the data pretrains a network: ``fractaldb experiment transfer``.

The transfer check (docs/training.md): pretrain a small timm network on
fractals and on Perlin noise, train it few-shot on scikit-learn's digits, and
compare with the same network trained from scratch.  It is a client of the
training library (:mod:`fractaldb.train`) and of the generator
(:func:`fractaldb.dataset.generate`); training never imports this module.

Needs PyTorch, timm and scikit-learn (``pip install 'fractaldb[torch]'``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError("fractaldb.experiments needs PyTorch: pip install 'fractaldb[torch]'") from exc

from ._version import __version__
from .errors import ConfigError, OutputError
from .seeds import generator
from .train import (SquareUint8, create_model, fit, freeze_backbone, load_size, reset_head, resolve_config,
                    setup_runtime, tensor_source, write_text)

__all__ = ["TRANSFER_SETTINGS", "ARMS", "PROTOCOLS", "transfer_experiment", "transfer_table"]

# --------------------------------------------------------------------------------------------
# fractaldb experiment transfer: does formula-driven pretraining help on real few-shot data?
# --------------------------------------------------------------------------------------------

#: Settings of the transfer check.  ``quick`` takes 4-6 minutes on a 2-core CPU (measured 262-321 s),
#: leaving room under 10 minutes when the machine is shared; docs/training.md says how they were chosen.
TRANSFER_SETTINGS = {
    "quick": {
        "arch": "test_resnet", "image_size": 32, "crop_ratio": 0.8, "seeds": 5, "shots": 10,
        "pretrain": dict(epochs=20, batch_size=64, lr=0.1, momentum=0.9, weight_decay=1e-4,
                         schedule="cosine", warmup_epochs=1, hflip=True, mean=[0.5] * 3, std=[0.5] * 3),
        "finetune": dict(epochs=50, batch_size=20, lr=0.1, momentum=0.9, weight_decay=1e-4,
                         schedule="cosine", warmup_epochs=0, hflip=False, mean=[0.5] * 3, std=[0.5] * 3),
        "arms": {
            "fractaldb": ("tiny", ["categories=32", "image_size=40", "points=20000", "weights=0.4",
                                   "patches=1", "flips=4", "shard_size=500"]),
            "perlin": ("perlin-tiny", ["perlin_classes=32", "perlin_instances=100", "image_size=40",
                                       "shard_size=500"]),
        },
    },
    "full": {
        "arch": "resnet18", "image_size": 32, "crop_ratio": 0.8, "seeds": 5, "shots": 10,
        "pretrain": dict(epochs=40, batch_size=128, lr=0.1, momentum=0.9, weight_decay=1e-4,
                         schedule="cosine", warmup_epochs=2, hflip=True, mean=[0.5] * 3, std=[0.5] * 3),
        "finetune": dict(epochs=50, batch_size=20, lr=0.1, momentum=0.9, weight_decay=1e-4,
                         schedule="cosine", warmup_epochs=0, hflip=False, mean=[0.5] * 3, std=[0.5] * 3),
        "arms": {
            "fractaldb": ("tiny", ["categories=100", "image_size=40", "points=20000", "weights=0.4",
                                   "patches=2", "flips=4", "shard_size=1000"]),
            "perlin": ("perlin-tiny", ["perlin_classes=100", "perlin_instances=200", "image_size=40",
                                       "shard_size=1000"]),
        },
    },
}

ARMS = ("scratch", "fractaldb", "perlin")
#: The two ways a pretrained network is evaluated: every weight trained, or only a new head.
PROTOCOLS = {"finetune": False, "linear_probe": True}


def _digits(size: int) -> tuple:
    """scikit-learn's 8x8 digits as ``uint8 (N, 3, size, size)`` and labels (no download)."""
    from sklearn.datasets import load_digits
    from torchvision.transforms.v2 import functional as F

    d = load_digits()
    x = torch.from_numpy((d.images * (255.0 / 16.0)).round().astype("uint8"))[:, None]
    x = F.resize(x, [size, size], interpolation=F.InterpolationMode.BILINEAR, antialias=True)
    return x.expand(-1, 3, -1, -1).contiguous(), torch.from_numpy(d.target).long()


def _few_shot_split(labels: "torch.Tensor", shots: int, seed: int) -> tuple:
    """``shots`` training examples per class, drawn from (seed, ``experiment``); the rest is the test set."""
    rng = generator(seed, "experiment", 0)
    train = []
    for c in range(int(labels.max()) + 1):
        idx = (labels == c).nonzero().flatten().numpy()
        train.extend(rng.choice(idx, size=shots, replace=False).tolist())
    mask = torch.ones(len(labels), dtype=torch.bool)
    mask[train] = False
    return torch.tensor(sorted(train)), mask.nonzero().flatten()


def _load_all(folder: str, size: int) -> tuple:
    """Every sample of a ``fractaldb generate`` output as ``uint8 (N, 3, size, size)`` and labels."""
    from .data import shard_dataset

    images, labels = [], []
    for img, label in shard_dataset(folder, resampled=False, shuffle=0, transform=SquareUint8(size)):
        images.append(img)
        labels.append(label)
    return torch.stack(images), torch.tensor(labels)


def _summary(per_seed: dict) -> dict:
    """Mean and std over seeds per arm, and each arm's paired difference to scratch (same splits)."""
    import statistics

    def stats(v):
        return statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else 0.0

    out = {arm: stats(v)[0] for arm, v in per_seed.items()}
    out["std"] = {arm: stats(v)[1] for arm, v in per_seed.items()}
    out["per_seed"] = per_seed
    if "scratch" in per_seed:
        out["vs_scratch"] = {arm: dict(zip(("mean", "std"), stats([a - b for a, b in zip(v, per_seed["scratch"])])))
                             for arm, v in per_seed.items() if arm != "scratch"}
    return out


def transfer_experiment(out, quick: bool = True, seeds: int | None = None, arms=ARMS,
                        on_step=None) -> dict:
    """Pretrain a small network on fractals (and Perlin noise), train it few-shot on
    scikit-learn's digits, and compare with the same network from scratch.

    Each pretraining arm generates its preset (with the overrides in
    :data:`TRANSFER_SETTINGS`) into a temporary folder, loads it into memory and
    pretrains once (seed 0).  Then, for each seed, a few-shot split of the digits
    (``shots`` per class for training, the rest for testing) is drawn and every arm
    is trained on it with the same recipe, in two protocols: ``finetune`` (every
    weight trained) and ``linear_probe`` (only a new head; BatchNorm statistics still
    adapt).  The score is the test top-1 after the last epoch.

    Args:
        out: folder for ``results.json`` and ``results.md``.
        quick: the ``quick`` settings (CPU minutes) instead of ``full``.
        seeds: number of few-shot seeds (default: the settings').
        arms: any of ``scratch``, ``fractaldb``, ``perlin``; a pretraining arm whose
            preset does not exist is an error, never skipped.
        on_step: ``on_step(message)`` before each generation and training run.

    Returns:
        ``{"scratch": mean, "fractaldb": mean, "perlin": mean, "std": {...}, "per_seed": {...},
        "linear_probe": {same keys}, "config": {...}, "seconds": ...}`` for the arms run
        (the top level is the fine-tuning protocol).
    """
    import tempfile

    from . import config as fconfig
    from .dataset import generate

    t0 = time.perf_counter()
    settings = TRANSFER_SETTINGS["quick" if quick else "full"]
    seeds = settings["seeds"] if seeds is None else seeds
    if seeds <= 0:
        raise ConfigError(f"--seeds must be a positive integer, got {seeds}")
    arms = list(dict.fromkeys(arms))
    for arm in arms:
        if arm not in ARMS:
            raise ConfigError(f"unknown arm {arm!r}; choose from {', '.join(ARMS)}")
    presets = {}
    for arm in arms:  # resolve every preset before any work: a missing one fails now, clearly
        if arm == "scratch":
            continue
        name, overrides = settings["arms"][arm]
        try:
            presets[arm] = fconfig.resolve(name, overrides)
        except ConfigError as exc:
            raise ConfigError(f"arm {arm!r} needs preset {name!r}: {exc}") from None
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {out}: {exc.strerror or exc}; choose a writable --out") from None

    rt = setup_runtime("cpu", "off")
    common = dict(arch=settings["arch"], image_size=settings["image_size"], crop_ratio=settings["crop_ratio"],
                  workers=0, device="cpu", amp="off")
    pre_cfg = resolve_config("pretrain", "cpu-sanity", {**common, **settings["pretrain"], "seed": 0})
    ft_base = resolve_config("finetune", "cpu-sanity", {**common, **settings["finetune"]})
    side = load_size(ft_base)

    # 1. pretrain once per pretraining arm
    pretrained = {}
    for arm, dcfg in presets.items():
        with tempfile.TemporaryDirectory(prefix=f"fractaldb-{arm}-") as tmp:
            if on_step:
                on_step(f"generate {arm}")
            generate(dcfg, tmp)
            images, labels = _load_all(tmp, side)
        if on_step:
            on_step(f"pretrain {arm}")
        src = tensor_source(images, labels, pre_cfg, rt, True, name=arm)
        model = create_model(pre_cfg["arch"], src.num_classes, pre_cfg["seed"])
        res = fit(pre_cfg, rt, model, src)
        pretrained[arm] = {"state": model.state_dict(), "classes": src.num_classes, "images": len(labels),
                           "final_top1": res["last"]["top1"], "final_loss": res["last"]["loss"]}

    # 2. few-shot training on the digits: every arm and protocol on the same split per seed
    digits, targets = _digits(side)
    per_seed = {proto: {arm: [] for arm in arms} for proto in PROTOCOLS}
    for s in range(seeds):
        train_idx, test_idx = _few_shot_split(targets, settings["shots"], s)
        ft_cfg = {**ft_base, "seed": s, "eval_every": ft_base["epochs"]}
        train = tensor_source(digits[train_idx], targets[train_idx], ft_cfg, rt, True, "digits-train", 10)
        test = tensor_source(digits[test_idx], targets[test_idx], ft_cfg, rt, False, "digits-test", 10)
        for proto, frozen in PROTOCOLS.items():
            for arm in arms:
                if on_step:
                    on_step(f"{proto} {arm} seed {s}")
                if arm == "scratch":
                    model = create_model(ft_cfg["arch"], 10, s)
                else:
                    model = create_model(ft_cfg["arch"], pretrained[arm]["classes"], 0)
                    model.load_state_dict(pretrained[arm]["state"])
                    reset_head(model, 10, s)
                if frozen:
                    freeze_backbone(model)
                per_seed[proto][arm].append(fit({**ft_cfg, "freeze": frozen}, rt, model, train, test)
                                            ["last"]["val_top1"])

    results = {**_summary(per_seed["finetune"]), "linear_probe": _summary(per_seed["linear_probe"])}
    results["config"] = {
        "settings": "quick" if quick else "full", "seeds": seeds, "shots": settings["shots"],
        "arch": settings["arch"], "image_size": settings["image_size"], "load_size": side,
        "protocols": {"finetune": "every weight trained", "linear_probe": "backbone frozen, new head trained"},
        "pretrain": {k: pre_cfg[k] for k in settings["pretrain"]},
        "finetune": {k: ft_base[k] for k in settings["finetune"]},
        "pretraining_data": {arm: {"preset": settings["arms"][arm][0], "overrides": settings["arms"][arm][1],
                                   "images": p["images"], "classes": p["classes"],
                                   "final_train_top1": p["final_top1"]} for arm, p in pretrained.items()},
        "digits": {"train": 10 * settings["shots"], "test": len(targets) - 10 * settings["shots"]},
        "torch_threads": torch.get_num_threads(),
        "versions": {"fractaldb": __version__, "torch": str(torch.__version__)},
    }
    results["seconds"] = round(time.perf_counter() - t0, 1)
    write_text(out / "results.json", json.dumps(results, indent=1) + "\n")
    write_text(out / "results.md", transfer_table(results) + "\n")
    return results


def transfer_table(results: dict) -> str:
    """The Markdown table of a transfer run: test top-1 (%) mean ± std over seeds, per protocol."""
    cfg = results["config"]
    lines = [f"Few-shot digits: {cfg['shots']} training images per class, {cfg['digits']['test']} test images; "
             f"{cfg['arch']} at {cfg['image_size']} px; {cfg['seeds']} seeds; {results['seconds']:.0f} s",
             "", "| pretraining | fine-tune top-1 % | Δ vs scratch | linear probe top-1 % | Δ vs scratch "
             "| fine-tune per seed | linear probe per seed |",
             "|---|---|---|---|---|---|---|"]
    probe = results["linear_probe"]

    def delta(summary, arm):
        d = summary.get("vs_scratch", {}).get(arm)
        return f"{d['mean']:+.2f} ± {d['std']:.2f}" if d else "–"

    for arm in results["per_seed"]:
        lines.append(f"| {arm} | {results[arm]:.2f} ± {results['std'][arm]:.2f} | {delta(results, arm)} | "
                     f"{probe[arm]:.2f} ± {probe['std'][arm]:.2f} | {delta(probe, arm)} | "
                     f"{', '.join(f'{v:.1f}' for v in results['per_seed'][arm])} | "
                     f"{', '.join(f'{v:.1f}' for v in probe['per_seed'][arm])} |")
    lines += ["", "mean ± std over seeds; Δ: paired difference to scratch on the same splits (percentage points)"]
    return "\n".join(lines)
