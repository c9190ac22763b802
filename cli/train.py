"""``fractaldb pretrain | finetune | experiment transfer``: parse, build a config, one library call, print.

PyTorch stays optional: this module imports neither torch nor
``fractaldb.train`` nor ``fractaldb.experiments`` at import time (``fractaldb
presets list`` must not pay for them); each command imports the library when it
runs and turns a missing PyTorch into a one-line error.
"""

from __future__ import annotations

import importlib
import time

import click

from fractaldb.console import progress_bar as tqdm_bar
from fractaldb.errors import ConfigError
from fractaldb.schema import option
from fractaldb.train.config import TRAIN_KEYS  # the schema: no torch

def _key(name: str, **kw):
    """The option of training key ``name``, made from the schema (type, choices, help, the
    default shown); None when not given, so the recipe decides."""
    return option(TRAIN_KEYS[name], **kw)


def _library(module: str = "train"):
    """``fractaldb.train`` (or ``fractaldb.experiments``), a missing PyTorch as a one-line error."""
    try:
        lib = importlib.import_module(f"fractaldb.{module}")
        if module == "train":
            lib.require_torch()
        return lib
    except ImportError as exc:
        cause = exc.__cause__ or exc  # fractaldb.train re-raises torch's own ImportError
        raise ConfigError(f"training needs PyTorch and timm ({cause}); pip install 'fractaldb[torch]'") from None


def _progress():
    """A tqdm bar (stderr) around an epoch's batches."""

    def wrap(iterable, total, desc):
        return tqdm_bar(iterable=iterable, total=total, desc=desc, unit="batch", leave=False)

    return wrap


def _floats(ctx, param, value):
    if value is None:
        return None
    try:
        return [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--{param.name.replace('_', '-')} must be comma-separated numbers, got {value!r}") from None


#: The options pretrain and finetune share, by training key.
_COMMON = ("recipe", "epochs", "batch_size", "lr", "momentum", "weight_decay", "schedule", "milestones",
           "warmup_epochs", "image_size", "crop_ratio", "hflip", "seed", "workers", "device", "amp", "epoch_size",
           "eval_every", "optimizer", "lr_base_batch", "label_smoothing", "mixup", "cutmix", "randaugment",
           "random_erasing", "drop_path", "loss")


def _common_options(f):
    """Options shared by pretrain and finetune (None = not given: the recipe decides), each made
    from its training key; ``--out`` and ``--resume`` besides."""
    opts = []
    for key in _COMMON:
        extra = {"callback": _floats, "metavar": "F,F", "type": None} if key == "milestones" else {}
        opts.append(_key(key, **extra))
    opts += [
        click.option("--out", required=True, type=click.Path(),
                     help="Run folder (config.json, log.jsonl, last.pt, best.pt)."),
        click.option("--resume", is_flag=True, help="Continue the run in --out from last.pt (settings come from it)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _options(kw: dict) -> dict:
    """Command-line values by training key (click names match the keys)."""
    return {k: v for k, v in kw.items() if k not in ("recipe", "out", "resume", "on_the_fly", "scratch")}


def _on_epoch(record):
    from fractaldb.train import format_record

    click.echo(format_record(record))


def register(cli) -> None:
    """Add ``pretrain``, ``finetune`` and ``experiment transfer`` to the ``fractaldb`` group."""
    cli.add_command(pretrain)
    cli.add_command(finetune)
    cli.add_command(experiment)
    from fractaldb.cli.report import report  # no torch: fractaldb.report reads shards itself

    cli.add_command(report)


@click.command()
@click.option("--data", default=None, help="A 'fractaldb generate' output (folder or URL) or an ImageFolder.")
@click.option("--on-the-fly", is_flag=True, help="Render the data while training (with --preset), no disk.")
@click.option("--preset", default=None, help="Preset (name or YAML) to render with --on-the-fly.")
@click.option("--set", "preset_set", multiple=True, metavar="KEY=VALUE",
              help="Override a key of --preset (repeatable).")
@_key("arch")
@_key("render_device")
@_key("view_sampling")
@_common_options
def pretrain(data, on_the_fly, preset, preset_set, arch, recipe, out, resume, **kw):
    """Pretrain a timm model on FractalDB shards, an ImageFolder, or on-the-fly renders.

    Multi-GPU: torchrun --nproc_per_node N -m fractaldb.cli.main pretrain ...
    """
    if on_the_fly != bool(preset):
        raise ConfigError("--on-the-fly and --preset NAME go together (or give --data)")
    train = _library()
    options = {**_options(kw), "data": data, "arch": arch, "preset": preset,
               "preset_set": list(preset_set) or None}
    cfg = train.resolve_config("pretrain", recipe, options, resume_from=out if resume else None)
    start = time.perf_counter()
    summary = train.pretrain(cfg, out, resume=resume, on_epoch=_on_epoch, progress=_progress())
    if summary["rank"] == 0:
        last = summary["last"]
        click.echo(f"{summary['arch']} on {summary['num_classes']} classes: {summary['epochs']} epochs, "
                   f"final loss {last['loss']:.4f}, top1 {last['top1']:.2f}% in {time.perf_counter() - start:.1f} s "
                   f"-> {out}/last.pt")


@click.command()
@_key("checkpoint", type=click.Path())
@click.option("--scratch", is_flag=True, help="No pretrained weights: the from-scratch baseline (needs --arch).")
@click.option("--data", default=None,
              help="Folder with train/ and val/ (ImageFolders or 'fractaldb generate' outputs).")
@click.option("--arch", default=None, help="timm model name (only for a plain state_dict, or with --scratch).")
@_key("freeze")
@_common_options
def finetune(checkpoint, scratch, data, arch, recipe, out, resume, **kw):
    """Fine-tune pretrained weights on DATA/train (new head), evaluate on DATA/val."""
    if scratch == bool(checkpoint) and not resume:
        raise ConfigError("give --checkpoint CKPT, or --scratch for the from-scratch baseline (not both)")
    train = _library()
    options = {**_options(kw), "data": data, "arch": arch, "checkpoint": checkpoint}
    cfg = train.resolve_config("finetune", recipe, options, resume_from=out if resume else None)
    summary = train.finetune(cfg, out, resume=resume, on_epoch=_on_epoch, progress=_progress())
    if summary["rank"] == 0:
        click.echo(f"best val top1 {summary['best_top1']:.2f}% (epoch {summary['best_epoch']}), "
                   f"last {summary['last_top1']:.2f}% -> {out}/results.json")


@click.group()
def experiment():
    """Experiments that check the data pretrains a network."""


@experiment.command()
@click.option("--quick", is_flag=True,
              help="v2: the smoke test (10 shots; scratch, the primary arm and the pixel baselines; 1 pretraining "
                   "seed, 2 fine-tuning seeds; the full grids and test set); without it: the whole protocol "
                   "(CPU-hours: split it with --arms/--shots and --merge). v1: its quick setting (10 and 100 shots, "
                   "scratch, the primary arm and the arms marked quick, 5 seeds).")
@click.option("--target", default="fashion-mnist", show_default=True,
              help="fashion-mnist (the IDX files of dataset-fashion-mnist), digits (scikit-learn) or "
                   "imagefolder:PATH (PATH/train + PATH/test class folders, or one ImageFolder split 80/20).")
@click.option("--target-dir", default=None, type=click.Path(),
              help="Folder with the four Fashion-MNIST IDX files (.gz or raw) [default: /usr/share/datasets/fashion-mnist].")
@click.option("--out", required=True, type=click.Path(), help="Folder for results.json, results.md and the plots.")
@click.option("--seeds", type=int, default=None, help="Fine-tuning seeds at 10 and 100 shots (default: v2 10, v1 5).")
@click.option("--arms", default=None,
              help="Comma-separated arms (scratch is always run); every family brings its own (a wrong name lists "
                   "them; docs/training.md describes them) [default: the setting's].")
@click.option("--shots", default=None, help="Comma-separated shots per class, e.g. 10,100,1000,all [default: the setting's].")
@click.option("--no-scaling", is_flag=True, help="Skip the scaling study (categories, epochs) of the full setting.")
@click.option("--threads", type=int, default=None, help="PyTorch CPU threads [default: 1].")
@click.option("--cached-only", is_flag=True,
              help="Train nothing: the tables and plots of the runs already finished in --out (a partial study).")
@click.option("--merge", "merge", multiple=True, type=click.Path(),
              help="Copy the finished runs of another --out folder of the same study into --out first "
                   "(repeatable; e.g. arms run as separate processes).")
@click.option("--protocol", type=click.Choice(["v2", "v1"]), default="v2", show_default=True,
              help="v2: docs/training.md's protocol v2 (steps x lr on validation, baselines, 3 pretraining x 10 "
                   "fine-tuning seeds, the full test set; --quick: its smoke test); v1: the superseded protocol, "
                   "to reproduce its records.")
def transfer(quick, target, target_dir, out, seeds, arms, shots, no_scaling, threads, cached_only, merge, protocol):
    """Pretrain on each formula-driven arm, learn a real target from few labels, compare with scratch."""
    experiments = _library("experiments")
    start = time.perf_counter()
    arm_list = [a.strip() for a in arms.split(",") if a.strip()] if arms else None
    shot_list = None
    if shots:
        shot_list = []
        for s in (x.strip() for x in shots.split(",") if x.strip()):
            if s != "all" and not s.isdigit():
                raise ConfigError(f"--shots takes positive integers or 'all', got {s!r}")
            shot_list.append(s if s == "all" else int(s))
    with tqdm_bar(unit="task", desc="transfer") as bar:
        def on_step(message):
            bar.set_description(message)
            bar.update(1)

        if protocol == "v2":
            if no_scaling:
                raise ConfigError("--no-scaling belongs to protocol v1 (v2 has no scaling study); drop it")
            results = experiments.transfer_v2(out, target=target, quick=quick, target_dir=target_dir, arms=arm_list,
                                              shots=shot_list, seeds=seeds, threads=threads,
                                              cached_only=cached_only, on_step=on_step, merge=merge)
            click.echo(experiments.v2_markdown(results))
            click.echo(f"({time.perf_counter() - start:.0f} s) -> {out}/results.json, {out}/results.md")
            return
        results = experiments.transfer_experiment(out, quick=quick, target=target, target_dir=target_dir,
                                                  seeds=seeds, arms=arm_list, shots=shot_list,
                                                  scaling=False if no_scaling else None, threads=threads, cached_only=cached_only,
                                                  on_step=on_step, merge=merge)
    click.echo(experiments.transfer_table(results))
    click.echo(f"({time.perf_counter() - start:.0f} s) -> {out}/results.json, {out}/results.md")
