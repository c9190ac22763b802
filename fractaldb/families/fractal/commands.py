"""The fractal family's own commands: ``fractaldb search`` (the category search,
in the original CSV format) and ``fractaldb render`` (an ImageFolder with the
original file names), and the ``--params`` source of ``fractaldb preview``.

The CLI adds them through :meth:`FractalFamily.commands
<fractaldb.families.fractal.FractalFamily.commands>`; they follow its rules:
parse, build a config, one library call, print; errors are
:class:`~fractaldb.errors.FractalDBError` (one line, exit 2).
"""

from __future__ import annotations

import dataclasses
import time

import click

from ...console import progress_bar, workers_option
from ...encode import FORMATS
from ...errors import ConfigError
from ...gpu import DEVICES
from ...ifs import constants as C
from ...ifs.render import RenderConfig
from ...schema import coerce, option, settings_of

__all__ = ["search", "render", "render_options", "render_config", "params_sheet"]


def _search_option(key: str, flag: str | None = None, help: str | None = None, dest: str | None = None):
    """A ``search`` option from the family's settings schema (its default is the schema's)."""
    from .settings import FractalSettings

    s = settings_of(FractalSettings)[key]
    return option(s, flag=flag, default=s.default, help=help, dest=dest)


@click.command()
@_search_option("sampler", help="official (replays the original loop), modern (seeded per candidate) or svd "
                                "(sigma-factor: every candidate accepted, --fill-rate not applied).")
@_search_option("categories", help="Categories to accept.")
@click.option("--seed", type=int, default=C.SEARCH_SEED, show_default=True,
              help=f"Search seed ({C.SEARCH_SEED} gives the published FractalDB).")
@click.option("--out", required=True, type=click.Path(), help="Output folder for 00000.csv ... and categories.json.")
@_search_option("fill_rate")
@_search_option("search_points", flag="--points", dest="points")
@click.option("--size", type=int, default=C.SEARCH_SIZE, show_default=True, help="Raster side used for the fill rate.")
@click.option("--max-candidates", type=int, default=None,
              help="Give up (one line, exit 2) after this many candidates [default: 1000 per category, "
                   "at least 100000].")
@click.option("--overwrite", is_flag=True, help="Replace an existing non-empty --out.")
@workers_option
def search(sampler, categories, seed, out, fill_rate, points, size, max_candidates, overwrite, workers):
    """Search IFS categories with the fill-rate gate (writes the official CSV format)."""
    from pathlib import Path

    from ...parallel import default_workers
    from ...storage import check_output_dir
    from .search import SearchConfig, write_categories
    from .search import search as run_search

    cfg = SearchConfig(sampler=sampler, categories=categories, seed=seed, fill_rate=fill_rate,
                       points=points, size=size, workers=workers or default_workers(), max_candidates=max_candidates)
    check_output_dir(Path(out), overwrite)
    start = time.perf_counter()
    with progress_bar(total=categories, unit="cat", desc="search") as bar:
        def progress(accepted, tried):
            bar.update(accepted - bar.n)
            bar.set_postfix(tried=tried, rate=f"{accepted / max(tried, 1):.1%}", refresh=False)

        result = run_search(cfg, progress=progress)
    write_categories(result, out, overwrite=overwrite)
    n = len(result.categories)
    click.echo(f"{n} {'category' if n == 1 else 'categories'} from {result.candidates_tried} candidates "
               f"({result.acceptance_rate:.2%} accepted) in {time.perf_counter() - start:.1f} s -> {out}")


def render_options(f):
    """The fractal renderer's settings as options: defaults, help and allowed values
    come from :class:`~fractaldb.ifs.render.RenderConfig`."""
    opts = []
    for name, s in settings_of(RenderConfig).items():
        kind = s.kind if s.kind in (int, float) else str
        opts.append(click.option(f"--{name.replace('_', '-')}", type=kind, default=s.default, show_default=True,
                                 help=f"{s.help} ({s.allowed})"))
    opts.append(click.option("--device", default=DEVICES[0], show_default=True,
                             help=f"Render device: {' or '.join(DEVICES)} (the same images on each)."))
    for opt in reversed(opts):
        f = opt(f)
    return f


def render_config(**options) -> RenderConfig:
    """The render options as a :class:`RenderConfig`, each checked against the range its
    ``--help`` shows (official mode keeps degenerate variants)."""
    values = {name: coerce(s, options[name], f"--{name.replace('_', '-')}")
              for name, s in settings_of(RenderConfig).items()}
    if values["compat"] == "official":
        values["degenerate"] = "keep"
    return RenderConfig(**values)


@click.command()
@click.option("--params", required=True, type=click.Path(), help="Category folder or one category CSV.")
@click.option("--out", required=True, type=click.Path(), help="Output ImageFolder.")
@click.option("--format", "image_format", default=FORMATS[0], show_default=True, help=" | ".join(FORMATS) + ".")
@click.option("--overwrite", is_flag=True, help="Replace an existing non-empty --out.")
@click.option("--resume", is_flag=True, help="Continue an interrupted render of --out (the same command): "
                                             "keep its finished blocks, render the rest.")
@render_options
@workers_option
def render(params, out, image_format, overwrite, resume, workers, **options):
    """Render categories into an ImageFolder with the original file names."""
    from pathlib import Path

    from ...estimate import estimate_blocks, worth_telling
    from ...parallel import default_workers
    from ...storage import check_output_dir
    from ...ifs.system import load_categories
    from .imagefolder import create_renderer, partial_dir, write_imagefolder

    cfg = render_config(**options)
    create_renderer(cfg, options["device"])  # fails early on an unknown device or without a GPU
    if image_format not in FORMATS:
        raise ConfigError(f"unknown format {image_format!r}; choose {', '.join(FORMATS)}")
    check_output_dir(Path(out), overwrite, inputs=[params])
    ids, systems = load_categories(params)
    total = len(ids) * len(cfg.weight_table()) * cfg.images_per_block
    workers = workers or default_workers()
    renderer = create_renderer(cfg, "cpu")
    est = estimate_blocks(lambda: renderer.render_block(ids[0], systems[0], 0).images.copy(), total, image_format,
                          workers)
    if worth_telling(est):
        click.echo(f"{est.line()}; for jobs this large 'fractaldb generate' (shards: verifiable, resumable, "
                   "rebuildable) then 'fractaldb export' gives the same ImageFolder layout", err=True)
    start = time.perf_counter()
    bar = progress_bar(total=total, unit="img", desc="render")
    try:
        summary = write_imagefolder(ids, systems, cfg, out, workers=workers, overwrite=overwrite,
                                    image_format=image_format, progress=bar.update, device=options["device"],
                                    resume=resume, on_start=lambda kept: bar.update(kept))
    except KeyboardInterrupt:
        bar.close()
        from ...signals import Interrupted

        raise Interrupted(f"the finished blocks are kept in {partial_dir(out)}; run the same command "
                          "with --resume to continue") from None
    finally:
        bar.close()
    dt = time.perf_counter() - start
    extra = f", {len(summary['degenerate_variants'])} degenerate weight variants handled" \
        if summary["degenerate_variants"] else ""
    click.echo(f"{summary['images']} images of {len(ids)} {'category' if len(ids) == 1 else 'categories'} in {dt:.1f} s "
               f"({summary['images'] / dt:.0f} images/s){extra} -> {out}")




def params_sheet(params, per_category: int, limit: int, **options) -> list:
    """``fractaldb preview --params``: contact-sheet images of a category folder or CSV
    (the identity weight, then more weights), drawn with the render options: a flat list
    (``per_category`` 1) or one row per category (never wrapped across rows when the
    weight table has fewer variants than asked)."""
    from ...ifs.system import Categories, load_categories
    from ...ifs.render import render_previews

    cfg = dataclasses.replace(render_config(**options), patches=1, flips=1)
    ids, systems = load_categories(params)
    images = render_previews(cfg, Categories(ids, systems), per_category, limit)
    if per_category == 1:
        return images
    shown = min(limit, len(ids))
    per = len(images) // shown
    return [images[i:i + per] for i in range(0, len(images), per)]
