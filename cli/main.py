"""``fractaldb``: parse, build a config, make one library call, print.

Every user error (ours or click's) ends as one line on stderr and exit code
2; nothing is half-written because the library writes under temporary names.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

import click

from fractaldb._version import __version__
from fractaldb.errors import FractalDBError

from fractaldb.console import progress_bar as _tqdm
from fractaldb.console import workers_option as _workers_option
from fractaldb.gpu import DEVICES

# Start-up is kept small (tests/test_startup.py): what a command needs is imported when it runs,
# and what only some commands show -- the index formats, the families' own commands and
# options, the training commands -- when first asked for, not when this module is imported.


def _indexes() -> dict:
    """The index formats (fractaldb.indexes; importing them imports the dataset card)."""
    from fractaldb.indexes.registry import indexes

    return indexes()


def _extra_indexes() -> tuple:
    """The indexes generate --index offers: those it does not write anyway."""
    return tuple(n for n, c in _indexes().items() if not c.at_generate)


class _LazyChoice(click.Choice):
    """A choice whose values come from ``values()``, called when first needed."""

    def __init__(self, values):
        self._values = values
        super().__init__(())

    @property
    def choices(self):
        return tuple(self._values())

    @choices.setter
    def choices(self, _):
        pass


class _LazyHelpOption(click.Option):
    """An option whose help text is made (by ``help_text()``) when help is shown."""

    def __init__(self, *args, help_text, **kwargs):
        super().__init__(*args, **kwargs)
        self._help_text = help_text

    def get_help_record(self, ctx):
        if self.help is None:
            self.help = self._help_text()
        return super().get_help_record(ctx)


class _Commands(click.Group):
    """``fractaldb``: the generic commands of this module, plus commands loaded when first
    listed or asked for -- ``preview`` (its options come from a family), each family's own
    (the fractal family's ``search`` and ``render``) and the training commands (cli/train.py)."""

    _loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        from fractaldb.families import get_family, list_families

        self.add_command(_preview_command())
        for family in list_families():
            for command in get_family(family).commands():
                self.add_command(command)
        from fractaldb.cli import train  # imports torch only when a training command runs

        train.register(self)

    def list_commands(self, ctx):
        self._load()
        return super().list_commands(ctx)

    def get_command(self, ctx, name):
        if name not in self.commands:
            self._load()
        return super().get_command(ctx, name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="fractaldb")
def cli():
    """Formula-driven pretraining data: FractalDB categories and instances."""


def _n(k: int, word: str) -> str:
    """``1 class``, ``2 classes``."""
    return f"{k} {word}" if k == 1 else f"{k} {word}{'es' if word.endswith('s') else 's'}"


def _params_options(f, params):
    opts = [click.option("--params", type=click.Path(), help="Category folder or CSV to render.")]
    f = params.render_options(f) if params is not None else f
    for opt in reversed(opts):
        f = opt(f)
    return f


def _preview_command():
    """``preview``, with the render options of the family that reads class-parameter
    files (``preview --params``), made when first asked for."""
    from fractaldb.families import get_family, list_families

    family = next((get_family(f).params_preview() for f in list_families() if get_family(f).params_preview()), None)

    def preview(**kwargs):
        return _preview(family, **kwargs)

    preview.__doc__ = _preview.__doc__
    f = _params_options(preview, family)
    for opt in reversed(_PREVIEW_OPTIONS):
        f = opt(f)
    return click.command("preview")(f)


_PREVIEW_OPTIONS = [
    click.argument("folder", required=False, type=click.Path()),
    click.option("--preset", help="A preset name or YAML file: search its first categories and render them."),
    click.option("--out", required=True, type=click.Path(), help="Contact sheet file (.png)."),
    click.option("--limit", type=int, default=36, show_default=True, help="Categories to show."),
    click.option("--per-category", type=int, default=1, show_default=True,
                 help="Weight variants per category (a row each)."),
]


def _preview(_params_family, folder, params, preset, out, limit, per_category, **options):
    """Write a contact sheet (from --params, --preset, a shard dataset or an ImageFolder).

    Render options apply to --params; a preset or a dataset brings its own settings.
    """
    from fractaldb.errors import ConfigError
    from fractaldb.preview import check_sheet_path, contact_sheet, preview_dataset, preview_folder, preview_shards, save_sheet

    check_sheet_path(out)
    given = [x for x in (folder, params, preset) if x]
    if len(given) != 1:
        raise ConfigError("give exactly one of FOLDER, --params or --preset")
    if limit <= 0 or per_category <= 0:
        raise ConfigError("--limit and --per-category must be positive integers")
    from fractaldb.preview import MAX_SHEET_IMAGES

    if limit * per_category > MAX_SHEET_IMAGES:
        raise ConfigError(f"--limit x --per-category is {limit * per_category}; a contact sheet shows at most "
                          f"{MAX_SHEET_IMAGES} images")
    if folder:
        from pathlib import Path

        from fractaldb.keys import MANIFEST

        if Path(folder, MANIFEST).is_file() or "://" in folder:
            sheet = preview_shards(folder, per_category=per_category, limit=limit)
        else:
            sheet = preview_folder(folder, limit=limit)
    elif params:
        images = _params_family.params_sheet(params, per_category, limit, **options)
        sheet = contact_sheet(images, columns=per_category if per_category > 1 else None)
    else:
        from fractaldb import config as fconf
        from fractaldb.dataset import Dataset
        resolved = fconf.first_classes(fconf.resolve(preset), limit)  # only the classes the sheet shows
        ds = Dataset.from_config(resolved)  # searches, or loads category_dir
        sheet = preview_dataset(ds, per_category=per_category, limit=limit)
    save_sheet(sheet, out)
    click.echo(f"contact sheet {sheet.shape[1]}x{sheet.shape[0]} -> {out}")


@cli.command()
@click.option("--preset", default=None, help="A preset name (see 'fractaldb presets list') or a YAML file.")
@click.option("--from-manifest", "from_manifest", default=None, metavar="PATH_OR_URL",
              help="Instead of --preset: rebuild the dataset a manifest.json (or its folder, or a URL) "
                   "describes, byte for byte, without its search.")
@click.option("--out", required=True, help="Output folder or fsspec URL (s3://bucket/path, file://...).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a preset key (repeatable): a dataset key such as seed=3, or a family's SECTION.KEY=VALUE "
                   "('fractaldb presets show NAME' lists them).")
@click.option("--classes", type=int, default=None,
              help="Keep only the first K classes (in label order) of the preset: try it small first.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run: keep shards that match, make the rest.")
@click.option("--executor", default="local", show_default=True,
              help="local (this machine: worker processes, or threads for a small job), processes, threads, "
                   "or dask (a local cluster, or --scheduler).")
@click.option("--scheduler", default=None, help="Address of a running Dask scheduler, e.g. tcp://host:8786.")
@click.option("--device", default=DEVICES[0], show_default=True,
              help=f"Render on {' or '.join(DEVICES)} (an NVIDIA GPU; the same bytes, encoding stays on the CPU).")
@click.option("--index", "readers", multiple=True, type=_LazyChoice(_extra_indexes),
              help="Also write these readers' index files at the end (repeatable; see 'fractaldb index').")
@click.option("--dry-run", "dry_run", is_flag=True,
              help="Print the plan, its size and time (measured on a few classes and images), write nothing.")
@_workers_option
def generate(preset, from_manifest, out, overrides, classes, resume, executor, scheduler, device, readers, dry_run,
             workers):
    """Generate a dataset as WebDataset shards plus a manifest (and its README.md card)."""
    import functools

    cfg = _generate_config(preset, from_manifest, overrides, classes, dry_run)
    if from_manifest is not None:
        from fractaldb.rebuild import rebuild

        run_generate = functools.partial(rebuild, from_manifest)
    else:
        from fractaldb.dataset import generate
    start = time.perf_counter()
    bars = {}

    def search_progress(family, accepted, tried, total):
        name = f"search {family}"
        if name not in bars:
            bars[name] = _tqdm(total=total, unit="class", desc=name)
        bars[name].update(accepted - bars[name].n)

    kept = {"samples": 0, "shards": 0}
    how = {"label": ""}  # what makes the shards: "2 processes", "2 threads", ...
    if from_manifest is None:
        told, how["told"] = _forecast(cfg, workers, device, search_progress, dry_run, out)
        if told is None:
            return
        run_generate = functools.partial(generate, cfg, dataset=told.dataset)

    def on_workers(label):
        how["label"] = label
        if how.get("told"):  # the estimate said before the search; now what makes the shards
            click.echo(f"shards on {label}", err=True)

    def on_plan(total, kept_samples, kept_shards):
        for bar in bars.values():
            bar.close()
        kept.update(samples=kept_samples, shards=kept_shards)
        # total, rate and ETA over this run's work; a resumed run starts at what it kept
        desc = f"generate ({how['label']})" if how["label"] else "generate"
        bars["gen"] = _tqdm(total=total, initial=kept_samples, unit="img", desc=desc, unit_scale=True)

    def on_dataset(ds):
        for bar in bars.values():
            bar.close()
        if from_manifest is None:
            return  # said before the search
        from fractaldb.estimate import estimate_dataset, worth_telling
        from fractaldb.parallel import default_workers

        est = estimate_dataset(ds, workers or default_workers(), device)
        if worth_telling(est):
            click.echo(f"{est.line()}; shards on {how['label']}" if how["label"] else est.line(), err=True)

    try:
        manifest = run_generate(out, workers=workers, resume=resume, progress=lambda n: bars["gen"].update(n),
                                search_progress=search_progress, executor=executor, scheduler=scheduler,
                                device=device, on_plan=on_plan, on_dataset=on_dataset, on_workers=on_workers)
    finally:
        for bar in bars.values():
            bar.close()
    if readers:
        from fractaldb.indexes import write_indexes

        write_indexes(out, readers)
    dt = time.perf_counter() - start
    plan = manifest["plan"]
    made = plan["samples"] - kept["samples"]
    resumed = (f" (kept {kept['samples']} images in {kept['shards']} shards of an earlier run; made {made})"
               if kept["shards"] else "")
    click.echo(f"{_n(plan['samples'], 'image')} of {_n(plan['classes'], 'class')} in {_n(plan['shards'], 'shard')} "
               f"in {dt:.1f} s ({made / dt:.0f} images/s){resumed} -> {out}")


def _generate_config(preset, from_manifest, overrides, classes, dry_run):
    """The config ``generate`` makes (None for a rebuild), its options checked; ``--classes``
    cuts every family and says when one has fewer."""
    from fractaldb import config as fconf
    from fractaldb.errors import ConfigError

    if (preset is None) == (from_manifest is None):
        raise ConfigError("give exactly one of --preset or --from-manifest")
    if from_manifest is not None:
        if overrides or classes is not None:
            raise ConfigError("--set and --classes change the dataset; --from-manifest rebuilds it as it is")
        if dry_run:
            raise ConfigError("--dry-run plans a --preset; a --from-manifest rebuild is its manifest's plan")
        return None
    cfg = fconf.resolve(preset, overrides)
    if classes is not None:
        cfg, note = fconf.classes_per_family(cfg, classes)
        if note:
            click.echo(f"note: {note}", err=True)
    return cfg


def _forecast(cfg, workers, device, search_progress, dry_run, out):
    """Say the plan, size and time before the search (it may be long too; a small search is
    the probe itself): ``(forecast, whether its line was said)``; ``(None, True)`` after a dry
    run's plan."""
    from fractaldb.estimate import worth_telling
    from fractaldb.forecast import forecast
    from fractaldb.parallel import default_workers

    told = forecast(cfg, workers or default_workers(), device, search_progress)
    if dry_run:
        click.echo("\n".join(told.plan_lines() + [told.estimate.line(), f"dry run: nothing written to {out}"]))
        return None, True
    said = worth_telling(told.estimate)
    if said:
        click.echo(told.estimate.line(), err=True)
    return told, said


@cli.command()
@click.argument("dataset")
def verify(dataset):
    """Re-hash every shard of DATASET against its manifest (exit 0 only if all match)."""
    from fractaldb.dataset import load_manifest
    from fractaldb.dataset import verify as run_verify
    from fractaldb.storage import Store

    store = Store(dataset)
    manifest = load_manifest(store) if store.exists() else None
    total = manifest["plan"]["samples"] if manifest else None
    with _tqdm(total=total, unit="img", desc="verify", unit_scale=True) as bar:
        problems = run_verify(dataset, progress=bar.update)
    if problems:
        for p in problems:
            click.echo(f"error: {p}", err=True)
        index = {e["name"]: i for i, e in enumerate(manifest["shards"])}
        bad = [index[p.split(":", 1)[0]] for p in problems if p.split(":", 1)[0] in index]
        if bad:
            fix = "; ".join(f"fractaldb regenerate {dataset} --shard {i}" for i in bad[:3])
            more = f" (and {len(bad) - 3} more: the same for each)" if len(bad) > 3 else ""
            click.echo(f"error: {len(bad)} shard(s) do not match the manifest; run {fix}{more}", err=True)
        if len(bad) < len(problems):
            import re

            rebuild = sorted(set(re.findall(r"'(fractaldb index [^']+)'", "\n".join(problems))))
            strays = [p for p in problems if "does not list" in p]
            fixes = ([f"write the derived files again: {'; '.join(rebuild)}"] if rebuild else []) + \
                (["move the stray shard files away"] if strays else [])
            click.echo(f"error: {len(problems) - len(bad)} other file(s) do not match the manifest (see above); "
                       f"{'; '.join(fixes) or 'regenerate the dataset into a new --out'}", err=True)
        sys.exit(1)
    click.echo(f"ok: every shard of {dataset} matches its manifest")


@cli.command()
@click.argument("dataset")
@click.option("--shard", type=int, required=True, help="Shard index to rebuild.")
@click.option("--device", default=DEVICES[0], show_default=True,
              help=f"Render on {' or '.join(DEVICES)} (the same bytes).")
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
    from fractaldb.dataset import load_manifest
    from fractaldb.export import export_imagefolder
    from fractaldb.storage import Store

    total = load_manifest(Store(dataset))["plan"]["samples"]
    with _tqdm(total=total, unit="img", desc="export") as bar:
        n = export_imagefolder(dataset, out, overwrite=overwrite, progress=bar.update)
    click.echo(f"{n} images -> {out}")


@cli.command()
@click.argument("dataset")
@click.option("--for", "readers", multiple=True, required=True, type=_LazyChoice(lambda: tuple(_indexes())),
              cls=_LazyHelpOption, help_text=lambda: "Reader to index for (repeatable): " + "; ".join(
                  f"{n}: {c.help}" for n, c in _indexes().items()) + ".")
def index(dataset, readers):
    """Write the index files other readers need beside DATASET's shards."""
    from fractaldb.dataset import load_manifest
    from fractaldb.indexes import write_indexes
    from fractaldb.storage import Store

    store = Store(dataset)
    total = load_manifest(store)["plan"]["samples"] if store.exists() else None
    # only indexes of the shards' bytes read them; the others are written from the manifest
    with _tqdm(total=total, unit="img", desc="index", unit_scale=True,
               disable=not any(_indexes()[r].reads_shards for r in readers) or None) as bar:
        written = write_indexes(dataset, readers, progress=bar.update)
    click.echo(f"{len(written)} index files for {', '.join(dict.fromkeys(readers))} -> {dataset}")


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

    class _Dumper(yaml.SafeDumper):
        pass

    # Sections as blocks, [low, high] pairs and family lists inline.
    _Dumper.add_representer(list, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))
    click.echo(yaml.dump(resolve(name), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000).rstrip())



def main(argv=None) -> int:
    """Entry point: one-line errors, exit code 2 for bad input."""
    try:
        from fractaldb._jit import announce_compiles, skip_blas_probe
        from fractaldb.signals import install

        install()  # SIGTERM and SIGHUP clean up as Ctrl-C does
        skip_blas_probe()  # this process compiles no kernel that needs SciPy's BLAS
        announce_compiles(lambda text: click.echo(text, err=True))  # a first run's compile is not silent
        _notes()
        with _warnings_as_notes():
            rv = cli.main(args=argv, prog_name="fractaldb", standalone_mode=False)
    except FractalDBError as exc:
        click.echo(f"error: {_one_line(exc)}", err=True)
        sys.exit(2)
    except (OSError, MemoryError) as exc:  # a fault no check foresaw: still one line
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else (str(exc) or type(exc).__name__)
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        click.echo(f"error: {_one_line(why + where)}", err=True)
        sys.exit(2)
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        click.echo(f"error: {_one_line(exc.format_message())}{hint}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"error: {_one_line(exc.format_message())}", err=True)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, click.Abort) as exc:
        from fractaldb.signals import Interrupted

        cause = exc.__cause__ if isinstance(exc, click.Abort) else exc  # click wraps Ctrl-C in Abort
        click.echo(f"interrupted: {cause}" if isinstance(cause, Interrupted) else "interrupted", err=True)
        from fractaldb.signals import abandon_workers

        if argv is None and abandon_workers():  # the real process, threads still running: do not wait
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        sys.exit(130)
    sys.exit(rv or 0)


@contextlib.contextmanager
def _warnings_as_notes():
    """Python warnings raised during a command (a library's RuntimeWarning, say) as one
    ``note: ...`` line each when it succeeds; dropped when it fails, so the ``error: ...``
    line is all that a failure prints."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        yield
    seen = set()
    for w in caught:
        line = f"{w.category.__name__}: {_one_line(w.message)}"
        if line not in seen:
            seen.add(line)
            click.echo(f"note: {line}", err=True)


def _one_line(exc) -> str:
    """The message of an error on one line (an error re-raised by a DataLoader worker
    carries the worker's traceback: its last line is the message)."""
    text = str(exc)
    if "Traceback (most recent call last)" not in text:  # a newline in a path, say: shown escaped
        return text.replace("\r", "\\r").replace("\n", "\\n") or type(exc).__name__
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    last = lines[-1]
    return last.split(": ", 1)[1] if last.split(": ", 1)[0].rsplit(".", 1)[-1].endswith("Error") else last


def _notes() -> None:
    """The library's notes (stale temporaries removed, a lock taken over) as 'note: ...' lines."""
    import logging

    class _Note(logging.Handler):
        def emit(self, record):
            click.echo(f"note: {record.getMessage()}", err=True)  # the stderr of the moment

    log = logging.getLogger("fractaldb")
    if not any(type(h).__name__ == "_Note" for h in log.handlers):
        log.addHandler(_Note())
        log.setLevel(logging.WARNING)
        log.propagate = False
    # Other libraries' log records (asyncio's report of a storage request abandoned when the server
    # went away -- "Task exception was never retrieved", with a traceback --, urllib3's retries) would
    # reach stderr through logging's last-resort handler, beside the one-line error that already names
    # the fault. A handler on the root logger keeps them off it: stderr carries our lines only.
    root = logging.getLogger()
    if not any(isinstance(h, logging.NullHandler) for h in root.handlers):
        root.addHandler(logging.NullHandler())


if __name__ == "__main__":  # pragma: no cover
    main()
