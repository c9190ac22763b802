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

import dataclasses
import functools
import hashlib
import json
import threading
from dataclasses import dataclass

from . import __version__
from . import config as fconfig
from . import executors
from .encode import DEFLATE
from .errors import ConfigError, InputError, OutputError
from .ifs import IFS, load_categories
from .keys import MANIFEST, PROGRESS_DIR, TIMM_INFO, WIDS_INDEX, shard_name
from .plan import Plan
from .render import create_renderer
from .search import default_workers, search
from .shards import PerlinPart, build_shard
from .storage import Store

__all__ = ["generate", "verify", "regenerate", "export_imagefolder", "Dataset", "load_manifest", "MANIFEST_FORMAT",
           "DEVICES", "check_device"]

MANIFEST_FORMAT = "fractaldb-webdataset-v1"
#: Where images are rendered; the bytes are the same on both.
DEVICES = ("cpu", "cuda")


def _versions() -> dict:
    import numba
    import numpy

    return {"fractaldb": __version__, "numpy": numpy.__version__, "numba": numba.__version__, "deflate": DEFLATE}


def _dumps(obj) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode()


@dataclass
class Dataset:
    """Everything a shard depends on, resolved once.

    ``systems`` / ``category_ids`` are the fractal categories (labels
    ``0..K-1``); ``perlin_classes`` the Perlin classes (labels ``K..``).
    """

    config: dict
    category_ids: list
    systems: list
    perlin_classes: list = dataclasses.field(default_factory=list)

    @property
    def render_config(self):
        return fconfig.render_config(self.config)

    @property
    def perlin_render_config(self):
        return fconfig.perlin_render_config(self.config)

    @functools.cached_property
    def plan(self) -> Plan:
        """Computed once per Dataset (the block permutation is O(blocks))."""
        rc = self.render_config
        return Plan(n_categories=len(self.systems), n_weights=len(rc.weight_table()), draws=rc.draws,
                    flips=rc.flips, shard_size=self.config["shard_size"], seed=self.config["seed"],
                    perlin_classes=len(self.perlin_classes),
                    perlin_instances=self.config["perlin_instances"] if self.perlin_classes else 0)

    @property
    def n_classes(self) -> int:
        return len(self.systems) + len(self.perlin_classes)

    def shard_name(self, index: int) -> str:
        return shard_name(self.config["name"], index)

    def categories_doc(self) -> list:
        """Every class: its label, family and parameters (the manifest's ``categories``)."""
        k = len(self.systems)
        return ([{"label": i, "family": "fractal", "id": int(cid), "rows": ifs.rows().tolist()}
                 for i, (cid, ifs) in enumerate(zip(self.category_ids, self.systems))]
                + [{"label": k + j, "family": "perlin", "class": j, "params": pc.to_dict()}
                   for j, pc in enumerate(self.perlin_classes)])

    def fingerprint(self) -> str:
        """Hash of what the shards depend on (config and class parameters)."""
        doc = {"config": self.config, "categories": self.categories_doc(), "versions": _versions()}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    @classmethod
    def from_config(cls, cfg: dict, workers: int | None = None, progress=None) -> "Dataset":
        ids, systems, perlin = [], [], []
        if fconfig.has_fractals(cfg):
            if cfg.get("category_dir"):
                ids, systems = load_categories(cfg["category_dir"])
                if cfg["categories"] < len(systems):
                    ids, systems = ids[: cfg["categories"]], systems[: cfg["categories"]]
                cfg = {**cfg, "categories": len(systems)}
            else:
                result = search(fconfig.search_config(cfg, workers), progress=progress)
                ids, systems = list(range(len(result.categories))), result.categories
        if fconfig.has_perlin(cfg):
            from .perlin import search_classes

            perlin = search_classes(fconfig.perlin_search_config(cfg))
        return cls(cfg, ids, systems, perlin)

    @classmethod
    def from_manifest(cls, manifest: dict) -> "Dataset":
        cats = manifest["categories"]
        fractal = [c for c in cats if c.get("family", "fractal") == "fractal"]
        perlin = [c for c in cats if c.get("family") == "perlin"]
        classes = []
        if perlin:
            from .perlin import PerlinClass

            classes = [PerlinClass.from_dict(c["params"]) for c in perlin]
        return cls(manifest["config"], [c["id"] for c in fractal], [IFS.from_rows(c["rows"]) for c in fractal],
                   classes)


def load_manifest(store: Store) -> dict:
    if not store.exists(MANIFEST):
        raise InputError(f"{store.url} has no {MANIFEST}; is it a 'fractaldb generate' output?")
    try:
        manifest = json.loads(store.read(MANIFEST))
    except ValueError:
        raise InputError(f"{store.path(MANIFEST)} is not valid JSON; regenerate the dataset") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise InputError(f"{store.path(MANIFEST)} is not a fractaldb manifest ({MANIFEST_FORMAT})")
    return manifest


_LOCAL = threading.local()


def _renderer(cfg, device: str, make):
    """One renderer per (thread, settings, device): they own scratch buffers."""
    cache = getattr(_LOCAL, "renderers", None)
    if cache is None:
        cache = _LOCAL.renderers = {}
    if (cfg, device) not in cache:
        cache[(cfg, device)] = make(cfg, device)
    return cache[(cfg, device)]


def _make_shard(ds: Dataset, index: int, device: str = "cpu") -> tuple:
    """Render and pack shard ``index`` (on ``device``: the same bytes)."""
    rc = ds.render_config
    perlin = None
    if ds.perlin_classes:
        from .perlin import create_perlin_renderer

        prc = ds.perlin_render_config
        perlin = PerlinPart(ds.perlin_classes, _renderer(prc, device, create_perlin_renderer), ds.config["seed"],
                            ds.config["perlin_image_format"])
    renderer = _renderer(rc, device, create_renderer) if ds.systems else None
    data, n, records = build_shard(ds.plan, index, ds.systems, ds.category_ids, rc,
                                   renderer, ds.config["image_format"], perlin=perlin)
    entry = {"name": ds.shard_name(index), "samples": n, "bytes": len(data),
             "sha256": hashlib.sha256(data).hexdigest()}
    return data, entry, records


def shard_task(ds: Dataset, store: Store, index: int, device: str = "cpu") -> tuple:
    """Make shard ``index``, write it atomically, record it as finished.

    A pure function of its arguments (all picklable), so any executor can
    run it anywhere, retry it, or run it twice: the bytes are the same
    (also on either ``device``).
    """
    data, entry, records = _make_shard(ds, index, device)
    store.write(entry["name"], data)
    store.write(f"{PROGRESS_DIR}/{entry['name']}.json", _dumps({"entry": entry, "records": records}))
    return entry, records


def check_device(device: str, locally: bool = True) -> None:
    """Fail early, with one line, on an unknown device or (``locally``) a missing GPU.

    Tasks that run elsewhere (``--scheduler``) check on their own machine.
    """
    if device not in DEVICES:
        raise ConfigError(f"unknown device {device!r}; choose cpu or cuda")
    if device == "cuda" and locally:
        from .render_cuda import gpu_start

        gpu_start(1)  # ConfigError without numba-cuda or a usable GPU


def _finished(store: Store, ds: Dataset) -> dict:
    """Shards of an earlier run of the same dataset that are complete and intact."""
    known = {}
    if store.exists(MANIFEST):
        manifest = load_manifest(store)
        if manifest.get("versions") != _versions():
            raise ConfigError(f"{store.url} was made with other package versions ({manifest.get('versions')}); "
                              "use a new --out")
        if Dataset.from_manifest(manifest).fingerprint() != ds.fingerprint():
            raise ConfigError(f"{store.url} holds a dataset made with other settings; use a new --out")
        known = {e["name"]: (e, manifest.get("degenerate_variants_by_shard", {}).get(e["name"], []))
                 for e in manifest["shards"]}
    elif store.exists(PROGRESS_DIR):
        try:
            head = json.loads(store.read(f"{PROGRESS_DIR}/run.json"))
        except (InputError, ValueError):
            head = {}
        if head.get("fingerprint") != ds.fingerprint():
            raise ConfigError(f"{store.url} holds a partial run with other settings; use a new --out")
        for name in store.fs.ls(store.path(PROGRESS_DIR), detail=False):
            base = name.rstrip("/").rsplit("/", 1)[-1]
            if base.endswith(".tar.json"):
                rec = json.loads(store.fs.cat_file(name))
                known[rec["entry"]["name"]] = (rec["entry"], rec["records"])
    done = {}
    for name, (entry, records) in known.items():
        if store.exists(name) and store.size(name) == entry["bytes"] \
                and hashlib.sha256(store.read(name)).hexdigest() == entry["sha256"]:
            done[name] = (entry, records)
    return done


def generate(cfg: dict, out: str, workers: int | None = None, resume: bool = False,
             progress=None, search_progress=None, executor: str = "local", scheduler: str | None = None,
             device: str = "cpu") -> dict:
    """Generate the dataset described by the resolved ``cfg`` into ``out``.

    Args:
        cfg: a resolved configuration (:func:`fractaldb.config.resolve`).
        out: a folder or fsspec URL.
        workers: threads (default: all cores); the output does not depend on it.
        resume: skip shards an interrupted or finished run already wrote correctly.
        progress: optional ``progress(n_samples)`` callback per finished shard.
        search_progress: optional callback of the category search.
        executor: ``local`` (threads on this machine) or ``dask`` (see
            :mod:`fractaldb.executors`); the output does not depend on it.
        scheduler: address of an existing Dask scheduler (``dask`` only).
        device: where images are rendered: ``cpu``, or ``cuda`` (an NVIDIA
            GPU on every machine that runs tasks; encoding stays on the CPU
            threads); the output does not depend on it.

    Returns:
        The manifest.
    """
    if workers is not None and (not isinstance(workers, int) or workers <= 0):
        raise ConfigError(f"workers must be a positive integer, got {workers}")
    workers = workers or default_workers()
    check_device(device, locally=not scheduler)  # an embedded LocalCluster runs here too
    store = Store(out)
    store.check_writable()
    existing = [n for n in store.names() if n != PROGRESS_DIR and not n.startswith(".")]
    if existing and not resume:
        raise OutputError(f"output {out} is not empty; use --resume to continue a run, or a new --out")
    # Start (or reach) the executor first: a wrong scheduler address fails
    # before the search runs and before anything is written.
    with executors.executor(executor, workers, scheduler) as run:
        ds = Dataset.from_config(cfg, workers, progress=search_progress)
        plan = ds.plan
        store.makedirs()
        store.clean_temporaries()
        done = _finished(store, ds) if resume else {}
        store.write(f"{PROGRESS_DIR}/run.json", _dumps({"fingerprint": ds.fingerprint()}))
        entries, records = {}, {}
        for name, (entry, recs) in done.items():
            entries[name] = entry
            records[name] = recs
            if progress is not None:
                progress(entry["samples"])
        todo = [i for i in range(plan.n_shards) if ds.shard_name(i) not in done]
        for entry, recs in run(functools.partial(shard_task, ds, store, device=device), todo):
            entries[entry["name"]] = entry
            records[entry["name"]] = recs
            if progress is not None:
                progress(entry["samples"])

    store.clean_temporaries()  # orphans of a worker killed mid-write
    names = [ds.shard_name(i) for i in range(plan.n_shards)]
    shards = [entries[n] for n in names]
    manifest = {
        "format": MANIFEST_FORMAT,
        "name": ds.config["name"],
        "config": ds.config,
        "versions": _versions(),
        "plan": {"samples": plan.n_samples, "shards": plan.n_shards, "shard_size": plan.shard_size,
                 "images_per_block": plan.images_per_block, "weights": plan.n_weights,
                 "classes": ds.n_classes, "fractal_classes": len(ds.systems),
                 "perlin_classes": len(ds.perlin_classes)},
        "categories": ds.categories_doc(),
        "shards": shards,
        "degenerate_variants": _dedupe([r for n in names for r in records[n]]),
        "degenerate_variants_by_shard": {n: records[n] for n in names if records[n]},
    }
    store.write(WIDS_INDEX, _dumps({
        "__kind__": "wids-shard-index-v1", "wids_version": 1, "name": ds.config["name"],
        "shardlist": [{"url": e["name"], "nsamples": e["samples"], "filesize": e["bytes"]} for e in shards],
    }))
    store.write(TIMM_INFO, _dumps({
        "name": ds.config["name"], "num_classes": ds.n_classes,
        "splits": {"train": {"name": "train", "num_samples": plan.n_samples,
                             "filenames": names, "shard_lengths": [e["samples"] for e in shards]}},
    }))
    store.write(MANIFEST, _dumps(manifest))  # last: its presence means "complete"
    store.remove(PROGRESS_DIR)
    return manifest


def _dedupe(records):
    seen, out = set(), []
    for r in records:
        k = (r["category"], r["weight"])
        if k not in seen:
            seen.add(k)
            out.append(r)
    return sorted(out, key=lambda r: (r["category"], r["weight"]))


def verify(out: str) -> list:
    """Re-hash every shard; returns the problems (empty when all match)."""
    store = Store(out)
    if not store.exists():
        raise InputError(f"{out} does not exist; pass the folder 'fractaldb generate' wrote")
    manifest = load_manifest(store)
    problems = []
    for e in manifest["shards"]:
        name = e["name"]
        if not store.exists(name):
            problems.append(f"{name}: missing")
            continue
        data = store.read(name)
        if len(data) != e["bytes"]:
            problems.append(f"{name}: {len(data)} bytes, manifest says {e['bytes']}")
        elif hashlib.sha256(data).hexdigest() != e["sha256"]:
            problems.append(f"{name}: sha256 differs from the manifest")
    return problems


def regenerate(out: str, index: int, device: str = "cpu") -> dict:
    """Rebuild shard ``index`` from the manifest alone (rendering on ``device``) and rewrite it.

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
    store.write(entry["name"], data)
    return entry


def export_imagefolder(out: str, dest, overwrite: bool = False, progress=None) -> int:
    """Unpack a shard dataset into an ImageFolder with the original file names.

    ``dest/<cat>/<cat>_<ww>_count_<k>_flip<t>.<ext>``, for training scripts
    written for the original FractalDB folders.  Assembled under a temporary
    name and renamed into place.  Returns the number of images.
    """
    import io
    import tarfile
    from pathlib import Path

    from .render import image_name
    from .storage import staged_dir

    store = Store(out)
    manifest = load_manifest(store)
    count = 0
    with staged_dir(Path(dest), overwrite) as tmp:
        for entry in manifest["shards"]:
            metas, images = {}, {}
            with tarfile.open(fileobj=io.BytesIO(store.read(entry["name"]))) as tar:
                for member in tar:
                    key, _, ext = member.name.partition(".")
                    data = tar.extractfile(member).read()
                    if ext == "json":
                        metas[key] = json.loads(data)
                    elif ext in ("png", "jpg", "webp"):
                        images[key] = (ext, data)
            for key, meta in metas.items():
                ext, data = images[key]
                folder = tmp / f"{meta['category']:05d}"
                folder.mkdir(parents=True, exist_ok=True)
                name = image_name(meta["category"], meta["weight"], meta["draw"], meta["flip"])
                (folder / f"{name}.{ext}").write_bytes(data)
                count += 1
            if progress is not None:
                progress(entry["samples"])
    return count
