"""The training loop, :func:`fit`, that every command runs; :func:`evaluate`; the per-epoch line."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from .._version import __version__
from ..errors import InputError
from ..seeds import int_seed
from .checkpoints import CHECKPOINT_FORMAT, _save, write_text
from .augment import BatchAugment, loss_and_hits, make_optimizer
from .config import _AUGMENT, _DROPOUT, _TIMM_AUGMENT, learning_rate
from .runtime import Runtime, _all_reduce
from .sources import Source, prepare_batch


def evaluate(model, source: Source, cfg: dict, rt: Runtime) -> dict:
    """Loss and top-1 accuracy (%) of ``model`` on every sample of ``source``."""
    model.eval()
    totals = torch.zeros(3, dtype=torch.float64, device=rt.device)  # loss sum, correct, count
    with torch.no_grad(), torch.autocast(rt.device.type, dtype=rt.amp_dtype, enabled=rt.amp_dtype is not None):
        for images, labels in source.batches(0):
            x, y = prepare_batch(images, cfg, rt), labels.to(rt.device)
            logits = model(x).float()
            loss, hits = loss_and_hits(logits, y, {"loss": cfg.get("loss", "ce")})
            totals += torch.stack([loss * len(y), hits, torch.tensor(len(y), device=rt.device)]).double()
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
    epochs, steps = cfg["epochs"], train.steps
    model.to(rt.device)
    if rt.device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]  # all but a frozen backbone
    optimizer = make_optimizer(params, cfg)
    augment = BatchAugment(cfg, train.num_classes)
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
        loss_sum, correct, count, lr, seconds = _train_epoch(net, optimizer, scaler, augment, train, cfg, rt, epoch,
                                                             progress)
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


def _train_epoch(net, optimizer, scaler, augment, train: Source, cfg: dict, rt: Runtime, epoch: int,
                 progress=None) -> tuple:
    """One epoch of optimizer steps; ``(loss sum, correct, count, last lr, seconds)`` over every
    process.  Everything random in it is a function of (seed, epoch): crops and flips,
    timm's augmentations, dropout."""
    seed, steps = cfg["seed"], train.steps
    gen = torch.Generator().manual_seed(int_seed(seed, "train", _AUGMENT, epoch))
    net.train()
    totals = torch.zeros(3, dtype=torch.float64, device=rt.device)  # loss sum, correct, count
    batches = train.batches(epoch)
    if progress is not None and rt.main:
        batches = progress(batches, steps, f"epoch {epoch + 1}/{cfg['epochs']}")
    t0 = time.perf_counter()
    lr = None
    with torch.random.fork_rng(devices=[rt.device] if rt.device.type == "cuda" else []):
        torch.manual_seed(int_seed(seed, "train", _DROPOUT, epoch, rt.rank))
        for i, (images, labels) in enumerate(batches):
            lr = learning_rate(cfg, epoch * steps + i, steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if augment.active:
                k = int_seed(seed, "train", _TIMM_AUGMENT, epoch, rt.rank, i)
                images = augment.images(images, k)
            x, y = prepare_batch(images, cfg, rt, gen), labels.to(rt.device, non_blocking=True)
            if augment.active:
                x, y = augment.batch(x, y, k + 1)
            if rt.device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(rt.device.type, dtype=rt.amp_dtype, enabled=rt.amp_dtype is not None):
                logits = net(x)
                loss, hits = loss_and_hits(logits, y, cfg)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            totals += torch.stack([loss.detach().float() * len(y), hits,
                                   torch.tensor(len(y), device=rt.device)]).double()
    seconds = time.perf_counter() - t0
    loss_sum, correct, count = _all_reduce(totals, rt).tolist()
    return loss_sum, correct, count, lr, seconds


def format_record(r: dict) -> str:
    """One stdout line per epoch."""
    line = (f"epoch {r['epoch']:>3}  loss {r['loss']:.4f}  top1 {r['top1']:6.2f}%  lr {r['lr']:.5f}  "
            f"{r['images_per_s']:.0f} img/s")
    if "val_top1" in r:
        line += f"  val_loss {r['val_loss']:.4f}  val_top1 {r['val_top1']:6.2f}%"
    return line
