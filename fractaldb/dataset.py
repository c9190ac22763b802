"""Datasets as WebDataset shards: generate, verify, regenerate, resume.

``generate`` turns a resolved configuration into shards plus a manifest::

    config -> categories (search, or a category folder) -> plan
           -> per shard: render -> encode -> tar -> atomic write
           -> manifest.json, wids-index.json, _info.json

Shard ``i`` is a pure function of (config, i), so shards can be made in any
order on any number of workers and the output folder is byte-identical.
While a run is in progress, a hidden ``.fractaldb-progress/`` folder records
each finished shard (name, size, sha256); ``--resume`` uses it (or the
manifest of a finished run) to skip shards that are already right.  The
progress folder is removed when the manifest is written, last.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import threading
from dataclasses import dataclass, field

from . import config as fconfig
from . import executors
from . import manifest as fmanifest
from ._version import __version__
from .encode import DEFLATE, LEGACY_ENCODER
from .errors import ConfigError, FractalDBError, InputError, OutputError
from .families import get_family, legacy_default_family
from .gpu import DEVICES
from .gpu import check_device as _known_device
from .families.base import BoundFamily, cpu_only
from .labels import dataset_kind
from .indexes.registry import check_at_generate, write_at_generate, write_missing_at_generate
from .keys import MANIFEST, PROGRESS_DIR, SHARD_SUFFIX, shard_name
from .parallel import default_workers
from .plan import Plan
from .safety import check_workers
from .shards import build_shard, pack_rendered, render_shards
from .storage import Store

log = logging.getLogger("fractaldb")

__all__ = ["generate", "verify", "regenerate", "Dataset", "Part", "load_manifest", "ShardMismatch", "manifest_config",
           "MANIFEST_FORMAT", "MANIFEST_FORMATS", "DEVICES", "check_device"]

#: Format of the manifests this version writes: v2 has sectioned configs
#: (``families`` and one section per family) and plan segments.
MANIFEST_FORMAT = "fractaldb-webdataset-v2"
#: Formats this version reads (v1: fractaldb 0.1, flat configs).
MANIFEST_FORMATS = ("fractaldb-webdataset-v1", MANIFEST_FORMAT)


def _versions() -> dict:
    import numba
    import numpy

    return {"fractaldb": __version__, "numpy": numpy.__version__, "numba": numba.__version__, "deflate": DEFLATE}


_dumps = fmanifest.dumps


#: One family of a dataset: the family bound to its settings and classes (0.2's name).
Part = BoundFamily


class Dataset:
    """Everything a shard depends on, resolved once: the config and, per family,
    the family bound to its settings and classes (labels follow the family order)."""

    def __init__(self, config, classes: dict):
        self.config = config = fconfig.resolve(config)  # a resolved Config is kept as it is
        self.classes = classes
        self.parts = {name: get_family(name).bind(config.settings(name), classes[name]) for name in config.families}
        self.label_kind = dataset_kind(p.family.label_kind for p in self.parts.values())
        self.label_kind.check(self.n_classes)

    def part(self, name: str) -> BoundFamily:
        return self.parts[name]

    @property
    def seed(self) -> int:
        return self.config["seed"]

    @functools.cached_property
    def plan(self) -> Plan:
        """Computed once per Dataset (the block permutation is O(blocks))."""
        return Plan.build([(name, p.rows, p.blocks_per_class, p.images_per_block, p.n_classes)
                           for name, p in self.parts.items()], self.config["shard_size"], self.config["seed"])

    @property
    def n_classes(self) -> int:
        return sum(p.n_classes for p in self.parts.values())

    def shard_name(self, index: int) -> str:
        return shard_name(self.config["name"], index)

    def categories_doc(self) -> list:
        """Every class: its label, family and parameters (the manifest's ``categories``)."""
        out = []
        for seg in self.plan.segments:
            p = self.parts[seg.family]
            out += [{"label": seg.label_offset + j, "family": seg.family, **doc} for j, doc in enumerate(p.class_docs())]
        return out

    def fingerprint(self) -> str:
        """Hash of what the shards depend on (config and class parameters)."""
        doc = {"config": self.config, "categories": self.categories_doc(), "versions": _versions()}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    def renderers(self, device: str = "cpu") -> dict:
        """One renderer per family for the calling thread (cached per thread, settings and device)."""
        return {name: _renderer(p, device) for name, p in self.parts.items()}

    @classmethod
    def from_config(cls, cfg, workers: int | None = None, progress=None) -> "Dataset":
        """Search (or load) every family's classes of ``cfg`` (a preset name, mapping or
        resolved :class:`~fractaldb.config.Config`; resolved once).

        ``progress(family, accepted, tried, total)`` follows the searches.
        """
        cfg = fconfig.resolve(cfg)
        classes, counts = {}, {}
        for name in cfg.families:
            fam = get_family(name)
            total = cfg[name][fam.count_key]
            cb = (lambda a, t, n=name, total=total: progress(n, a, t, total)) if progress is not None else None
            classes[name] = fam.find_classes(cfg.settings(name), workers or default_workers(), cb)
            if len(classes[name]) != total:  # a category folder may hold fewer
                counts[name] = len(classes[name])
        if counts:
            cfg = fconfig.resolve(dict(cfg), [(f"{n}.{get_family(n).count_key}", c) for n, c in counts.items()])
        return cls(cfg, classes)

    @classmethod
    def from_manifest(cls, manifest: dict) -> "Dataset":
        """The dataset a manifest describes (v1 or v2), with no search.

        A config that names no ``encoder`` was written before there was a choice:
        its PNGs are ``png1``'s (:data:`fractaldb.encode.LEGACY_ENCODER`).  Likewise a
        family section that lacks a key the family added later gets the value that
        meant (:attr:`Family.absent_means <fractaldb.families.base.Family.absent_means>`),
        not today's default."""
        cfg = fconfig.resolve(manifest_config(manifest["config"]))
        docs: dict = {}
        default = None
        for c in manifest["categories"]:
            if "family" not in c and default is None:
                default = legacy_default_family()  # fractaldb 0.1 named none
            docs.setdefault(c.get("family", default), []).append(c)
        classes = {name: get_family(name).classes_from_docs(docs.get(name, [])) for name in fconfig.families(cfg)}
        return cls(cfg, classes)


def manifest_config(raw):
    """A manifest's config as it was meant when written: ``encoder`` absent means ``png1``,
    and each family section gets its family's :attr:`~fractaldb.families.base.Family.absent_means`
    for the keys it lacks.  Anything that is not a mapping is returned as it is (the
    config's own checks report it)."""
    if not isinstance(raw, dict):
        return raw
    cfg = fconfig.normalise(raw, "the config")
    if "encoder" not in raw:
        cfg["encoder"] = LEGACY_ENCODER
    for name in cfg["families"]:
        cfg[name] = {**get_family(name).absent_means, **cfg[name]}
    return cfg


def load_manifest(store: Store, name: str = MANIFEST) -> dict:
    """The manifest of ``store`` (file ``name``), validated completely before any work (it is
    untrusted input, see :mod:`fractaldb.manifest`): fields and types, its config as a preset's,
    and the shard list against the plan its own config makes."""
    manifest = fmanifest.parse(store, MANIFEST_FORMATS, name)
    source = store.path(name)
    fmanifest.check_structure(manifest, source)
    try:
        ds = Dataset.from_manifest(manifest)
        ds.plan
    except (KeyError, TypeError, IndexError, AttributeError, ValueError, RecursionError) as exc:
        if isinstance(exc, InputError):
            raise
        why = str(exc).split("\n")[0] if isinstance(exc, ValueError) else f"a malformed entry ({type(exc).__name__})"
        raise InputError(f"{source}: {why}; the manifest was edited or damaged, regenerate the dataset") from None
    fmanifest.check_plan(manifest, ds, source)
    return manifest


_LOCAL = threading.local()


def _renderer(part: Part, device: str):
    """One renderer per (thread, family, settings, device): renderers own scratch buffers."""
    cache = getattr(_LOCAL, "renderers", None)
    if cache is None:
        cache = _LOCAL.renderers = {}
    key = (part.name, repr(part.settings), device)
    if key not in cache:
        cache[key] = part.renderer(device)
    return cache[key]


def _make_shard(ds: Dataset, index: int, device: str = "cpu") -> tuple:
    """Render and pack shard ``index`` (on ``device``: the same bytes)."""
    return _entry(ds, index, *build_shard(ds, index, ds.renderers(device)))


def _entry(ds: Dataset, index: int, data: bytes, n: int, records: list) -> tuple:
    entry = {"name": ds.shard_name(index), "samples": n, "bytes": len(data),
             "sha256": hashlib.sha256(data).hexdigest()}
    return data, entry, records


class ShardMismatch(InputError):
    """A shard made for ``generate(expect=...)`` (a rebuild) that does not hash to the value
    expected of it: nothing of it was written.  ``args``: (message, shard name)."""

    def __init__(self, message: str, name: str = ""):
        super().__init__(message, name)
        self.name = name

    def __str__(self) -> str:
        return str(self.args[0])


def _keep(store: Store, data: bytes, entry: dict, records: list, expect: dict | None = None) -> tuple:
    """Write a finished shard atomically and record it as finished; with ``expect`` (shard
    name -> sha256), a shard that hashes otherwise raises :class:`ShardMismatch` first."""
    if expect is not None and expect.get(entry["name"]) != entry["sha256"]:
        raise ShardMismatch(f"{entry['name']} does not hash to the expected sha256", entry["name"])
    store.write(entry["name"], data)
    store.write(f"{PROGRESS_DIR}/{entry['name']}.json", _dumps({"entry": entry, "records": records}))
    return entry, records


def shard_task(ds: Dataset, store: Store, index: int, device: str = "cpu", expect: dict | None = None) -> tuple:
    """Make shard ``index``, write it atomically, record it as finished.

    A pure function of its arguments (all picklable), so any executor can
    run it anywhere, retry it, or run it twice: the bytes are the same
    (also on either ``device``).  With ``expect`` (shard name -> sha256), a shard
    that hashes otherwise raises :class:`ShardMismatch` before anything is written.
    """
    return _keep(store, *_make_shard(ds, index, device), expect=expect)


def render_task(ds: Dataset, device: str, indices: list, slots, slot_of: dict) -> list:
    """The GPU pipeline's first half (the process that owns the GPU): render shards
    ``indices`` together into their shared slots (:func:`fractaldb.shards.render_shards`)."""
    return render_shards(ds, indices, ds.renderers(device), slots, slot_of)


def pack_task(ds: Dataset, store: Store, shard, expect: dict | None = None) -> tuple:
    """The GPU pipeline's second half (a worker process): encode and pack a rendered
    shard from its shared slot, write it and record it, as :func:`shard_task` does."""
    from .parallel import slot_view

    data, n, records = pack_rendered(ds, shard, slot_view(shard.slot, shard.size))
    return _keep(store, *_entry(ds, shard.index, data, n, records), expect=expect)


def check_device(device: str, locally: bool = True) -> None:
    """Fail early, with one line, on an unknown device or (``locally``) a missing GPU.

    Tasks that run elsewhere (``--scheduler``) check on their own machine.
    """
    _known_device(device)
    if device == "cuda" and locally:
        from .gpu import gpu_start

        gpu_start(1)  # ConfigError without numba-cuda or a usable GPU


def _finished(store: Store, ds: Dataset) -> dict:
    """Shards of an earlier run of the same dataset that are complete and intact."""
    known = {}
    if store.exists(MANIFEST):
        manifest = load_manifest(store)
        if manifest.get("versions") != _versions():
            raise ConfigError(f"{store.url} was made with other package versions ({manifest.get('versions')}); "
                              "use a new --out")
        old = Dataset.from_manifest(manifest)
        if old.fingerprint() != ds.fingerprint():
            raise ConfigError(f"{store.url} holds a dataset made with other settings "
                              f"({_difference(old.config, ds.config, old.categories_doc(), ds.categories_doc())}); "
                              "use a new --out, or the same settings to resume")
        by_shard = manifest.get("records_by_shard", manifest.get("degenerate_variants_by_shard", {}))
        known = {e["name"]: (e, by_shard.get(e["name"], [])) for e in manifest["shards"]}
    elif store.exists(PROGRESS_DIR):
        try:
            head = json.loads(store.read(f"{PROGRESS_DIR}/run.json", max_bytes=1 << 26))
        except (InputError, ValueError, RecursionError):
            head = {}
        head = head if isinstance(head, dict) else {}
        if head.get("fingerprint") != ds.fingerprint():
            what = (_difference(head["config"], ds.config) if isinstance(head.get("config"), dict)
                    else "settings not recorded")
            raise ConfigError(f"{store.url} holds a partial run with other settings ({what}); use a new --out, "
                              "or the same settings to resume")
        planned = {ds.shard_name(i) for i in range(ds.plan.n_shards)}
        for name in store.listdir(PROGRESS_DIR):
            base = name.rstrip("/").rsplit("/", 1)[-1]
            if base.endswith(".tar.json") and base[:-5] in planned:
                try:  # a damaged record only means that shard is made again
                    rec = json.loads(store.read(f"{PROGRESS_DIR}/{base}", max_bytes=1 << 26))
                    entry, recs = rec["entry"], rec["records"]
                    if entry["name"] == base[:-5] and isinstance(recs, list):
                        fmanifest.check_structure({"config": {}, "plan": {"samples": 0, "shards": 0, "classes": 0},
                                                   "categories": [], "shards": [entry]}, base)
                        known[entry["name"]] = (entry, recs)
                except (InputError, ValueError, KeyError, TypeError, RecursionError):
                    continue
    done = {}
    for name, (entry, records) in known.items():
        try:
            fmanifest.read_shard(store, entry)
        except InputError:
            continue
        done[name] = (entry, records)
    return done


def _difference(there: dict, here: dict, there_classes=None, here_classes=None) -> str:
    """The settings that differ between two resolved configs, as ``key: X there, Y here``
    (the first three), or what else differs (class parameters, package versions)."""
    a, b = fconfig.flat_keys(there), fconfig.flat_keys(here)
    missing = object()
    diffs = [f"{k}: {a.get(k, 'unset')} there, {b.get(k, 'unset')} here"
             for k in sorted(set(a) | set(b), key=lambda k: (k.count("."), k))
             if a.get(k, missing) != b.get(k, missing) and k != "description"]
    if diffs:
        return "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")
    if there_classes is not None and there_classes != here_classes:
        return "the same settings but other class parameters: the category search gave other classes"
    return "other package versions or class parameters"


def generate(cfg: dict, out: str, workers: int | None = None, resume: bool = False,
             progress=None, search_progress=None, executor: str = "local", scheduler: str | None = None,
             device: str = "cpu", on_plan=None, card: bool = True, dataset: "Dataset | None" = None,
             on_dataset=None, on_workers=None, expect: dict | None = None) -> dict:
    """Generate the dataset described by the resolved ``cfg`` into ``out``.

    Args:
        cfg: a resolved configuration (:func:`fractaldb.config.resolve`).
        out: a folder or fsspec URL.
        workers: worker processes or threads (default: all cores); the output does not depend on it.
        resume: skip shards an interrupted or finished run already wrote correctly.
        progress: optional ``progress(n_samples)`` callback per shard made in this run.
        on_plan: optional ``on_plan(total_samples, kept_samples, kept_shards)``, called once
            the plan is known and (``resume``) the intact shards of an earlier run are counted.
        search_progress: optional callback of the category search.
        executor: ``local`` (this machine: worker processes, or threads for a small job),
            ``processes``, ``threads`` or ``dask`` (see :mod:`fractaldb.executors`); the
            output does not depend on it.
        scheduler: address of an existing Dask scheduler (``dask`` only).
        device: where images are rendered: ``cpu``, or ``cuda`` (an NVIDIA
            GPU on every machine that runs tasks; encoding stays on the CPU: with
            processes, this process renders on the GPU while the workers encode and
            pack); the output does not depend on it.
        on_dataset: optional ``on_dataset(ds)``, called with the :class:`Dataset` once its
            classes are known, before any shard (the CLI prints an estimate there).
        on_workers: optional ``on_workers(label)``, called before ``on_dataset`` with what
            will run the shards (``"2 processes"``, ``"2 threads"``, ``"GPU + 16 processes"``).
        card: write the dataset card (``README.md`` and its contact sheet, :mod:`fractaldb.card`).
        dataset: the :class:`Dataset` to write (``--from-manifest``: no search); ``cfg`` is then
            ignored.
        expect: shard name -> sha256 every shard must hash to (a rebuild): a shard that does
            not raises :class:`ShardMismatch` before it is written, and no manifest or
            derived file is written.

    Returns:
        The manifest.
    """
    if workers is not None:
        check_workers(workers)
    check_device(device, locally=not scheduler)  # an embedded LocalCluster runs here too
    cfg = dataset.config if dataset is not None else fconfig.resolve(cfg)
    if device == "cuda":
        for name in cfg.families:
            fam = get_family(name)
            if fam.cuda_renderer is None:
                raise cpu_only(name)
            note = fam.device_note(fconfig.family_settings(cfg, name), device)
            if note:
                log.warning("%s", note)
    job = _Job(cfg, Store(out), out, workers or default_workers(), resume, executor, scheduler, device, card,
               dataset, progress, search_progress, on_plan, on_dataset, on_workers, expect)
    job.store.check_writable()
    with job.store.lock():  # one writer per folder
        return job.run()


@dataclass
class _Job:
    """One ``generate`` run: what it writes, where, how, and whom it tells (see :func:`generate`)."""

    cfg: object
    store: Store
    out: str
    workers: int
    resume: bool
    executor: str
    scheduler: str | None
    device: str
    card: bool
    dataset: "Dataset | None"
    progress: object = None
    search_progress: object = None
    on_plan: object = None
    on_dataset: object = None
    on_workers: object = None
    expect: dict | None = None
    #: Whether the folder held a progress record before this run (an earlier run's: always kept).
    had_progress: bool = False
    #: Whether shard tasks were started (from then on what they wrote is kept for --resume).
    launched: bool = False
    #: Finished shards, name -> manifest entry (kept ones and this run's): an interrupt says how many.
    entries: dict = field(default_factory=dict)
    records: dict = field(default_factory=dict)

    def run(self) -> dict:
        names = self.store.names()
        self.had_progress = PROGRESS_DIR in names
        existing = [n for n in names if n != PROGRESS_DIR and not n.startswith(".")]
        if existing and not self.resume:
            raise OutputError(f"output {self.out} is not empty; use --resume to continue a run, or a new --out")
        if self.resume and existing and MANIFEST not in names and PROGRESS_DIR not in names:
            raise OutputError(f"output {self.out} holds files but no {MANIFEST} or {PROGRESS_DIR}: it is not a "
                              "fractaldb output, so --resume will not write into it; use a new --out")
        try:
            return self._finish(self._shards())
        except KeyboardInterrupt:
            from .signals import Interrupted

            raise Interrupted(f"kept {len(self.entries)} finished shard(s) in {self.out}; run the same command "
                              "with --resume to continue") from None
        except FractalDBError:
            if not self.launched and not self.had_progress:  # refused before any shard began: nothing to resume
                with contextlib.suppress(OSError, FractalDBError):
                    self.store.remove(PROGRESS_DIR)
            raise

    def _shards(self) -> "Dataset":
        """Search (or take) the classes, then make every shard an earlier run did not leave intact."""
        store = self.store
        # Start (or reach) the executor first: a wrong scheduler address fails
        # before the search runs and before anything is written.
        with executors.executor(self.executor, self.workers, self.scheduler) as ex:
            ds = self.dataset if self.dataset is not None else Dataset.from_config(
                self.cfg, self.workers, progress=self.search_progress)
            fconfig.val_shard_count(ds.config, ds.plan.n_shards)  # a split asked of one shard: refused now
            how = ex.decide(ds.plan.n_shards, ds.plan.n_samples, self.device)
            if self.on_workers is not None:
                self.on_workers(how)
            if self.on_dataset is not None:
                self.on_dataset(ds)
            store.makedirs()
            store.clean_temporaries()
            done = _finished(store, ds) if self.resume else {}
            store.write(f"{PROGRESS_DIR}/run.json", _dumps({"fingerprint": ds.fingerprint(), "config": ds.config}))
            for name, (entry, recs) in done.items():
                self.entries[name], self.records[name] = entry, recs
            if self.on_plan is not None:
                self.on_plan(ds.plan.n_samples, sum(e["samples"] for e in self.entries.values()), len(self.entries))
            todo = [i for i in range(ds.plan.n_shards) if ds.shard_name(i) not in done]
            self.launched = True
            if ex.mode == "processes" and self.device == "cuda":  # render here, encode and pack there
                results = ex.pipeline(functools.partial(render_task, ds, self.device),
                                      functools.partial(pack_task, ds, store, expect=self.expect), todo)
            else:
                results = ex.run(functools.partial(shard_task, ds, store, device=self.device, expect=self.expect),
                                 todo)
            try:
                for entry, recs in results:
                    self.entries[entry["name"]], self.records[entry["name"]] = entry, recs
                    if self.progress is not None:
                        self.progress(entry["samples"])
            finally:  # stop the workers now, not when the interrupt's traceback is freed
                getattr(results, "close", lambda: None)()
        return ds

    def _finish(self, ds: "Dataset") -> dict:
        """The manifest and the derived files, written last (the manifest's presence means "complete")."""
        store, plan, records = self.store, ds.plan, self.records
        store.clean_temporaries()  # orphans of a worker killed mid-write
        names = [ds.shard_name(i) for i in range(plan.n_shards)]
        manifest = {
            "format": MANIFEST_FORMAT,
            "name": ds.config["name"],
            "config": ds.config,
            "versions": _versions(),
            "plan": {"samples": plan.n_samples, "shards": plan.n_shards, "shard_size": plan.shard_size,
                     "classes": ds.n_classes, "segments": [seg.doc() for seg in plan.segments]},
            "categories": ds.categories_doc(),
            "shards": [self.entries[n] for n in names],
            # What the renderers noted of single blocks (e.g. degenerate fractal weight variants).
            "records": _dedupe([r for n in names for r in records[n]]),
            "records_by_shard": {n: records[n] for n in names if records[n]},
        }
        if self.expect is not None:  # kept shards of a resumed rebuild too: nothing derived before this holds
            wrong = [n for n in names if self.expect.get(n) != self.entries[n]["sha256"]]
            if wrong:
                raise ShardMismatch(f"{wrong[0]} does not hash to the expected sha256", wrong[0])
        write_at_generate(store, manifest, ds, card=self.card)  # wids-index.json, _info.json, the card
        store.write(MANIFEST, _dumps(manifest))  # last: its presence means "complete"
        store.remove(PROGRESS_DIR)
        return manifest


def _dedupe(records):
    """Each record once (a block can feed several shards), in a fixed order."""
    unique = {json.dumps(r, sort_keys=True): r for r in records}
    return [unique[k] for k in sorted(unique)]


def verify(out: str, progress=None) -> list:
    """Re-hash every shard; returns the problems (empty when all match).

    ``progress(n_samples)`` is called after each shard is checked.
    """
    store = Store(out)
    if not store.exists():
        raise InputError(f"{out} does not exist; pass the folder 'fractaldb generate' wrote")
    manifest = load_manifest(store)  # checked against its own plan: no short or empty lists
    problems = []
    for e in manifest["shards"]:
        name = e["name"]
        if not store.exists(name):
            problems.append(f"{name}: missing")
            if progress is not None:
                progress(e["samples"])
            continue
        try:
            size = store.check_regular(name)  # never reads a FIFO or a device; None: a server did not say
            if size is not None and size != e["bytes"]:
                problems.append(f"{name}: {size} bytes, manifest says {e['bytes']}")
            elif hashlib.sha256(store.read(name, max_bytes=e["bytes"])).hexdigest() != e["sha256"]:
                problems.append(f"{name}: sha256 differs from the manifest")
        except InputError as exc:
            problems.append(f"{name}: {str(exc).split(': ', 1)[-1] if ': ' in str(exc) else exc}")
        if progress is not None:
            progress(e["samples"])
    listed = {e["name"] for e in manifest["shards"]}
    problems += [f"{n}: a shard file the manifest does not list; move it away"
                 for n in store.names() if n.endswith(SHARD_SUFFIX) and n not in listed]
    problems += check_at_generate(store, manifest)
    return problems


def regenerate(out: str, index: int, device: str = "cpu") -> dict:
    """Rebuild shard ``index`` from the manifest alone (rendering on ``device``) and rewrite it;
    the derived files ``generate`` writes (``wids-index.json``, ``_info.json``, the card) are
    written too where they are missing (a folder rebuilt shard by shard from a manifest).

    Raises:
        InputError: the index is out of range, or the rebuilt shard does not
            hash to the manifest's value (then nothing is written).
    """
    store = Store(out)
    if not store.exists():
        raise InputError(f"{out} does not exist; pass the folder 'fractaldb generate' wrote")
    manifest = load_manifest(store)
    ds = Dataset.from_manifest(manifest)
    n = len(manifest["shards"])
    if not 0 <= index < n:
        raise InputError(f"shard {index} is out of range; {out} has shards 0..{n - 1}")
    check_device(device)
    data, entry, _ = _make_shard(ds, index, device)
    expected = manifest["shards"][index]
    if entry["sha256"] != expected["sha256"]:
        raise InputError(
            f"regenerated {entry['name']} does not match the manifest (versions: manifest "
            f"{manifest.get('versions')}, here {_versions()}); nothing was written"
        )
    with store.lock():
        store.write(entry["name"], data)
        write_missing_at_generate(store, manifest, ds)  # wids-index.json, _info.json, the card: if missing
    return entry


def __getattr__(name):
    if name == "export_imagefolder":  # 0.2's home of fractaldb.export.export_imagefolder
        import importlib
        import warnings

        warnings.warn("fractaldb.dataset.export_imagefolder moved to fractaldb.export.export_imagefolder",
                      DeprecationWarning, stacklevel=2)
        return importlib.import_module("fractaldb.export").export_imagefolder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
