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

One module per concern; each imports only those listed before it:

    checkpoints  checkpoint files (save, load, the run's last.pt) and text files written whole
    config       recipes, TRAIN_KEYS, resolve_config, the learning-rate schedule
    runtime      device, AMP, DDP (torchrun): setup, all-reduce, teardown
    sources      shards, ImageFolder, on-the-fly stream, tensors -> uint8 batches; prepare_batch
    model        timm models: create, new head, freeze; class count of a plain state_dict
    loop         fit (the one training loop), evaluate, the per-epoch line
    commands     pretrain and finetune, and their run folders

Training needs PyTorch and timm (``pip install 'fractaldb[torch]'``);
nothing imported by ``import fractaldb`` or by the generator imports it, and
importing this package (or :mod:`.config`) does not import it either.  The
transfer check lives in :mod:`fractaldb.experiments`, a client of this package
(``fractaldb.train.transfer_experiment`` of 0.1 is
``fractaldb.experiments.transfer_experiment``).
"""

from __future__ import annotations

import importlib

#: Every public name of the single-module fractaldb.train of 0.1, and where it lives now.
#: Imported on first use: ``fractaldb.train.config`` (the recipes and the schema the
#: command line is built from) needs no PyTorch; everything else does.
_NAMES = {
    "checkpoints": ("CHECKPOINT_FORMAT", "load_checkpoint", "write_text"),
    "commands": ("finetune", "pretrain"),
    "config": ("IMAGENET_MEAN", "IMAGENET_STD", "RECIPES", "RESUMABLE", "TRAIN_KEYS", "TrainSettings",
               "learning_rate", "resolve_config"),
    "loop": ("evaluate", "fit", "format_record"),
    "model": ("check_arch", "create_model", "freeze_backbone", "reset_head"),
    "runtime": ("Runtime", "setup_runtime"),
    "sources": ("Source", "SquareUint8", "load_size", "open_source", "prepare_batch", "render_device",
                "tensor_source"),
}
_HOME = {name: module for module, names in _NAMES.items() for name in names}

__all__ = ["RECIPES", "TRAIN_KEYS", "resolve_config", "learning_rate", "create_model", "fit",
           "pretrain", "finetune", "load_checkpoint", "render_device"]


def require_torch() -> None:
    """Import PyTorch (and check it), or raise ImportError naming the install command."""
    try:
        import torch  # noqa: F401
        import torch.nn.functional  # noqa: F401 - the loop's import, checked here too
    except ImportError as exc:  # pragma: no cover - exercised only without torch
        raise ImportError("fractaldb.train needs PyTorch: pip install 'fractaldb[torch]'") from exc


def __getattr__(name: str):
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if module != "config":
        require_torch()
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_HOME))
