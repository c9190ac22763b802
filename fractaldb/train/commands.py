"""The commands ``pretrain`` and ``finetune``: short overrides around :func:`~.loop.fit`; their run folders."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import ConfigError, InputError, OutputError
from ..outputs import claim_dir
from .checkpoints import _last_checkpoint, load_checkpoint, write_text
from .loop import fit
from .model import _head_classes, check_arch, create_model, freeze_backbone, reset_head
from .runtime import _teardown, setup_runtime
from .sources import _finetune_sources, _stream_source, open_source


def _check_fresh_run_dir(out: Path) -> None:
    if (out / "last.pt").exists():
        raise OutputError(f"{out} already holds a run (last.pt); add --resume to continue it, or use a new --out")
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file; give a folder")
    if out.is_dir() and not os.path.islink(out) and any(out.iterdir()) and not (out / "config.json").is_file():
        raise OutputError(f"{out} holds files but no config.json: it is not a training run folder, so fractaldb "
                          "will not write into it; choose a new --out")


def _prepare_run_dir(out, resume: bool, cfg: dict) -> Path:
    out = Path(out)
    if not resume:
        _check_fresh_run_dir(out)
    try:
        claim_dir(out, "config.json", "a training run folder")
        write_text(out / "config.json", json.dumps(cfg, indent=1) + "\n")
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc.strerror or exc}; choose a writable --out") from None
    return out


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
        model = create_model(cfg["arch"], train.num_classes, cfg["seed"], **_model_options(cfg))
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
            model = create_model(arch, pre_classes, cfg["seed"], **_model_options(cfg))
            try:
                model.load_state_dict(pre["model"])
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()[0]
                raise InputError(f"checkpoint {cfg['checkpoint']} does not fit {arch} ({first}); "
                                 "give the --arch it was trained with") from None
            reset_head(model, train.num_classes, cfg["seed"])
        else:
            model = create_model(arch, train.num_classes, cfg["seed"], **_model_options(cfg))
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


def _model_options(cfg: dict) -> dict:
    """timm model options from the run config (stochastic depth when the recipe asks for it)."""
    return {"drop_path_rate": cfg["drop_path"]} if cfg.get("drop_path") else {}
