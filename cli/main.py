"""``fractaldb``: parse, build a config, make one library call, print.

Every user error (ours or click's) ends as one line on stderr and exit code
2; nothing is half-written because the library writes under temporary names.
"""

from __future__ import annotations

import dataclasses
import sys
import time

import click

from fractaldb import __version__
from fractaldb.errors import FractalDBError

_PROGRESS = dict(file=sys.stderr, dynamic_ncols=True, disable=None, mininterval=0.5)


def _tqdm(**kw):
    from tqdm import tqdm

    return tqdm(**{**_PROGRESS, **kw})


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="fractaldb")
def cli():
    """Formula-driven pretraining data: FractalDB categories and instances."""


def _check_workers(ctx, param, value):
    if value is not None and value <= 0:
        from fractaldb.errors import ConfigError

        raise ConfigError(f"workers must be a positive integer, got {value}")
    return value


def _workers_option(f):
    return click.option("--workers", type=int, default=None, callback=_check_workers,
                        help="Threads to use (default: all cores). Results do not depend on it.")(f)


@cli.command()
@click.option("--sampler", default="official", show_default=True,
              help="official (replays the original loop), modern (seeded per candidate) or svd "
                   "(sigma-factor: every candidate accepted, --fill-rate not applied).")
@click.option("--categories", type=int, default=1000, show_default=True, help="Categories to accept.")
@click.option("--seed", type=int, default=1, show_default=True, help="Search seed (1 gives the published FractalDB).")
@click.option("--out", required=True, type=click.Path(), help="Output folder for 00000.csv ... and categories.json.")
@click.option("--fill-rate", type=float, default=0.2, show_default=True, help="Acceptance threshold in (0, 1].")
@click.option("--points", type=int, default=100_000, show_default=True, help="Chaos-game points per candidate.")
@click.option("--size", type=int, default=512, show_default=True, help="Raster side used for the fill rate.")
@click.option("--overwrite", is_flag=True, help="Replace an existing non-empty --out.")
@_workers_option
def search(sampler, categories, seed, out, fill_rate, points, size, overwrite, workers):
    """Search IFS categories with the fill-rate gate (writes the official CSV format)."""
    from pathlib import Path

    from fractaldb.search import SearchConfig, check_output_dir, default_workers, write_categories
    from fractaldb.search import search as run_search

    cfg = SearchConfig(sampler=sampler, categories=categories, seed=seed, fill_rate=fill_rate,
                       points=points, size=size, workers=workers or default_workers())
    check_output_dir(Path(out), overwrite)
    start = time.perf_counter()
    with _tqdm(total=categories, unit="cat", desc="search") as bar:
        def progress(accepted, tried):
            bar.update(accepted - bar.n)
            bar.set_postfix(tried=tried, rate=f"{accepted / max(tried, 1):.1%}", refresh=False)

        result = run_search(cfg, progress=progress)
    write_categories(result, out, overwrite=overwrite)
    click.echo(f"{len(result.categories)} categories from {result.candidates_tried} candidates "
               f"({result.acceptance_rate:.2%} accepted) in {time.perf_counter() - start:.1f} s -> {out}")


def _render_options(f):
    opts = [
        click.option("--compat", default="modern", show_default=True,
                     help="official: the original renderer's streams and semantics; modern: keyed streams."),
        click.option("--mode", default="patch", show_default=True, help="point or patch."),
        click.option("--color", default="gray", show_default=True, help="gray or color."),
        click.option("--size", type=int, default=362, show_default=True, help="Image side in pixels."),
        click.option("--points", type=int, default=200_000, show_default=True, help="Chaos-game points per image."),
        click.option("--pad", type=int, default=6, show_default=True, help="Border in pixels."),
        click.option("--weights", default="0.4", show_default=True,
                     help="Weight table: a step (0.4), factors (0.2,0.6,1.4,1.8) or none."),
        click.option("--patches", type=int, default=10, show_default=True, help="Patch re-draws per weight."),
        click.option("--flips", type=int, default=4, show_default=True, help="Orientations per draw (1..4)."),
        click.option("--seed", type=int, default=1, show_default=True,
                     help="Seed of the point and mask streams (1, as the presets)."),
        click.option("--degenerate", default="replace", show_default=True,
                     help="Near-empty weight variants (modern mode): replace, record or keep."),
        click.option("--device", default="cpu", show_default=True, help="Render device."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _render_config(compat, mode, color, size, points, pad, weights, patches, flips, seed, degenerate, **_):
    from fractaldb.render import RenderConfig

    return RenderConfig(mode=mode, color=color, size=size, points=points, pad=pad, weights=weights,
                        patches=patches, flips=flips, compat=compat, seed=seed,
                        degenerate="keep" if compat == "official" else degenerate)


@cli.command()
@click.option("--params", required=True, type=click.Path(), help="Category folder or one category CSV.")
@click.option("--out", required=True, type=click.Path(), help="Output ImageFolder.")
@click.option("--format", "image_format", default="png", show_default=True, help="png, jpg or webp.")
@click.option("--overwrite", is_flag=True, help="Replace an existing non-empty --out.")
@_render_options
@_workers_option
def render(params, out, image_format, overwrite, workers, **options):
    """Render categories into an ImageFolder with the original file names."""
    from pathlib import Path

    from fractaldb.encode import FORMATS
    from fractaldb.errors import ConfigError
    from fractaldb.ifs import load_categories
    from fractaldb.imagefolder import write_imagefolder
    from fractaldb.render import create_renderer
    from fractaldb.search import check_output_dir, default_workers

    cfg = _render_config(**options)
    create_renderer(cfg, options["device"])  # fails early on an unavailable device
    if image_format not in FORMATS:
        raise ConfigError(f"unknown format {image_format!r}; choose png, jpg or webp")
    check_output_dir(Path(out), overwrite)
    ids, systems = load_categories(params)
    total = len(ids) * len(cfg.weight_table()) * cfg.images_per_block
    start = time.perf_counter()
    with _tqdm(total=total, unit="img", desc="render") as bar:
        summary = write_imagefolder(ids, systems, cfg, out, workers=workers or default_workers(),
                                    overwrite=overwrite, image_format=image_format, progress=bar.update,
                                    device=options["device"])
    dt = time.perf_counter() - start
    extra = f", {len(summary['degenerate_variants'])} degenerate weight variants handled" \
        if summary["degenerate_variants"] else ""
    click.echo(f"{summary['images']} images of {len(ids)} categories in {dt:.1f} s "
               f"({summary['images'] / dt:.0f} images/s){extra} -> {out}")


@cli.command()
@click.argument("folder", required=False, type=click.Path())
@click.option("--params", type=click.Path(), help="Category folder or CSV to render.")
@click.option("--preset", help="A preset name or YAML file: search its first categories and render them.")
@click.option("--out", required=True, type=click.Path(), help="Contact sheet file (.png).")
@click.option("--limit", type=int, default=36, show_default=True, help="Categories to show.")
@click.option("--per-category", type=int, default=1, show_default=True, help="Weight variants per category (a row each).")
@_render_options
def preview(folder, params, preset, out, limit, per_category, **options):
    """Write a contact sheet (from --params, --preset, a shard dataset or an ImageFolder).

    Render options apply to --params; a preset or a dataset brings its own settings.
    """
    from fractaldb.errors import ConfigError
    from fractaldb.preview import (check_sheet_path, preview_categories, preview_dataset, preview_folder,
                                   preview_shards, save_sheet)

    check_sheet_path(out)
    given = [x for x in (folder, params, preset) if x]
    if len(given) != 1:
        raise ConfigError("give exactly one of FOLDER, --params or --preset")
    if limit <= 0 or per_category <= 0:
        raise ConfigError("--limit and --per-category must be positive integers")
    if folder:
        from pathlib import Path

        if Path(folder, "manifest.json").is_file() or "://" in folder:
            sheet = preview_shards(folder, per_category=per_category, limit=limit)
        else:
            sheet = preview_folder(folder, limit=limit)
    elif params:
        from fractaldb.ifs import load_categories

        cfg = dataclasses.replace(_render_config(**options), patches=1, flips=1)
        ids, systems = load_categories(params)
        sheet = preview_categories(ids, systems, cfg, per_category=per_category, limit=limit)
    else:
        from fractaldb import config as fconf
        from fractaldb.dataset import Dataset

        resolved = fconf.resolve(preset)
        resolved["categories"] = min(resolved["categories"], limit)
        resolved["perlin_classes"] = min(resolved["perlin_classes"], limit)
        ds = Dataset.from_config(resolved)  # searches, or loads category_dir
        sheet = preview_dataset(ds, per_category=per_category, limit=limit)
    save_sheet(sheet, out)
    click.echo(f"contact sheet {sheet.shape[1]}x{sheet.shape[0]} -> {out}")


@cli.command()
@click.option("--preset", required=True, help="A preset name (see 'fractaldb presets list') or a YAML file.")
@click.option("--out", required=True, help="Output folder or fsspec URL (s3://bucket/path, file://...).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a preset key (repeatable).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run: keep shards that match, make the rest.")
@click.option("--executor", default="local", show_default=True,
              help="local (this machine's cores) or dask (a local cluster, or --scheduler).")
@click.option("--scheduler", default=None, help="Address of a running Dask scheduler, e.g. tcp://host:8786.")
@click.option("--device", default="cpu", show_default=True,
              help="Render on cpu or cuda (an NVIDIA GPU; the same bytes, encoding stays on the CPU).")
@_workers_option
def generate(preset, out, overrides, resume, executor, scheduler, device, workers):
    """Generate a dataset as WebDataset shards plus a manifest."""
    from fractaldb import config as fconf
    from fractaldb.dataset import generate as run_generate
    cfg = fconf.resolve(preset, overrides)
    start = time.perf_counter()
    bars = {}

    def search_progress(accepted, tried):
        if "search" not in bars:
            bars["search"] = _tqdm(total=cfg["categories"], unit="cat", desc="search")
        bars["search"].update(accepted - bars["search"].n)

    def progress(n):
        if "gen" not in bars:
            if "search" in bars:
                bars["search"].close()
            bars["gen"] = _tqdm(unit="img", desc="generate", unit_scale=True)
        bars["gen"].update(n)

    try:
        manifest = run_generate(cfg, out, workers=workers, resume=resume, progress=progress,
                                search_progress=search_progress, executor=executor, scheduler=scheduler,
                                    device=device)
    finally:
        for bar in bars.values():
            bar.close()
    dt = time.perf_counter() - start
    plan = manifest["plan"]
    click.echo(f"{plan['samples']} images of {plan['classes']} classes in {plan['shards']} shards "
               f"in {dt:.1f} s ({plan['samples'] / dt:.0f} images/s) -> {out}")


@cli.command()
@click.argument("dataset")
def verify(dataset):
    """Re-hash every shard of DATASET against its manifest (exit 0 only if all match)."""
    from fractaldb.dataset import verify as run_verify

    problems = run_verify(dataset)
    if problems:
        for p in problems:
            click.echo(f"error: {p}", err=True)
        click.echo(f"error: {len(problems)} shard(s) do not match the manifest; "
                   f"run 'fractaldb regenerate {dataset} --shard I' for each", err=True)
        sys.exit(1)
    click.echo(f"ok: every shard of {dataset} matches its manifest")


@cli.command()
@click.argument("dataset")
@click.option("--shard", type=int, required=True, help="Shard index to rebuild.")
@click.option("--device", default="cpu", show_default=True, help="Render on cpu or cuda (the same bytes).")
def regenerate(dataset, shard, device):
    """Rebuild shard I of DATASET from the manifest; it must hash to the recorded value."""
    from fractaldb.dataset import regenerate as run_regenerate

    entry = run_regenerate(dataset, shard, device)
    click.echo(f"{entry['name']}: {entry['samples']} samples, sha256 {entry['sha256'][:16]}... matches the manifest")


@cli.command()
@click.argument("dataset")
@click.option("--out", required=True, type=click.Path(), help="Destination ImageFolder.")
@click.option("--overwrite", is_flag=True, help="Replace an existing non-empty --out.")
def export(dataset, out, overwrite):
    """Unpack DATASET's shards into an ImageFolder with the original file names."""
    from fractaldb.dataset import export_imagefolder, load_manifest
    from fractaldb.storage import Store

    total = load_manifest(Store(dataset))["plan"]["samples"]
    with _tqdm(total=total, unit="img", desc="export") as bar:
        n = export_imagefolder(dataset, out, overwrite=overwrite, progress=bar.update)
    click.echo(f"{n} images -> {out}")


@cli.group()
def presets():
    """List or show the built-in presets."""


@presets.command("list")
def presets_list():
    """Names and descriptions of the built-in presets."""
    from fractaldb.config import list_presets, load_preset

    for name in list_presets():
        click.echo(f"{name:<20} {load_preset(name).get('description', '')}")


@presets.command("show")
@click.argument("name")
def presets_show(name):
    """The resolved settings of preset NAME (or a YAML file), as YAML."""
    import yaml

    from fractaldb.config import resolve

    click.echo(yaml.safe_dump(resolve(name), sort_keys=False, default_flow_style=None).rstrip())


# Training commands live in cli/train.py; they import torch only when they run.
from fractaldb.cli import train as _train  # noqa: E402

_train.register(cli)


def main(argv=None) -> int:
    """Entry point: one-line errors, exit code 2 for bad input."""
    try:
        rv = cli.main(args=argv, prog_name="fractaldb", standalone_mode=False)
    except FractalDBError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, click.Abort):
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(rv or 0)


if __name__ == "__main__":  # pragma: no cover
    main()
