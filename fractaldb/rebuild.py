"""Rebuild a whole dataset from its manifest (``fractaldb generate --from-manifest``).

The manifest holds everything a shard depends on (the resolved config, every
class's parameters, the plan), so a dataset can be made again on another machine
without its category search and without the original folder: the shards come
out byte for byte, and each is checked against the manifest's sha256 *before it is
written*: a shard that differs is never written, and neither are the manifest and
the derived files (``README.md``, ``wids-index.json``, ...) that loaders read, so a
rejected rebuild leaves nothing a reader could mistake for the dataset (a new
folder is removed again; the source manifest is never touched, even when ``out``
holds it).  Interrupted rebuilds continue with ``resume``, as ``generate`` does.
"""

from __future__ import annotations

import contextlib

from .dataset import Dataset, ShardMismatch, _versions, generate, load_manifest
from .errors import FractalDBError, InputError
from .keys import MANIFEST, PROGRESS_DIR
from .storage import Store

__all__ = ["read_manifest", "rebuild"]


def read_manifest(source: str) -> dict:
    """The manifest at ``source``: a ``manifest.json`` (any name ending in ``.json``), or
    the dataset folder holding one; a local path or an fsspec URL (``https://``, ``s3://``)."""
    source = str(source)
    if source.endswith(".json"):
        folder, _, name = source.rstrip("/").rpartition("/")
        store = Store(folder or ".")
        if not store.exists(name):
            raise InputError(f"{source} does not exist; give a manifest.json or the folder that holds one")
        return load_manifest(store, name)
    store = Store(source)
    if not store.exists():
        raise InputError(f"{source} does not exist; give a manifest.json or the folder that holds one")
    return load_manifest(store, MANIFEST)


def rebuild(source: str, out: str, **options) -> dict:
    """Make the dataset ``source``'s manifest describes into ``out``, byte for byte.

    ``options`` are :func:`fractaldb.dataset.generate`'s (``workers``, ``resume``,
    ``progress``, ``on_plan``, ``executor``, ``scheduler``, ``device``).

    Raises:
        InputError: a rebuilt shard does not hash to the source manifest's value
            (other package versions, or an edited manifest); it is not written, nor is
            any manifest or derived file, and a folder this call created is removed.
    """
    manifest = read_manifest(source)
    ds = Dataset.from_manifest(manifest)
    if ds.plan.n_shards != len(manifest["shards"]):
        raise InputError(f"{source}: the manifest lists {len(manifest['shards'])} shards but its config makes "
                         f"{ds.plan.n_shards}; the manifest was edited or is damaged")
    want = {e["name"]: e["sha256"] for e in manifest["shards"]}
    store = Store(out)
    fresh = not store.names()
    try:
        return generate(None, out, dataset=ds, expect=want, **options)
    except ShardMismatch as exc:
        if fresh:  # nothing of a rejected rebuild stays in a folder it made
            _remove_made(store, ds)
        raise InputError(f"rebuilt {exc.name} differs from {source}: {_why(manifest.get('versions'))}") from None


def _why(there) -> str:
    """Why a rebuilt shard can differ: the package versions that differ (order does not
    matter), or, when they are the same, an edited manifest."""
    here = _versions()
    if not isinstance(there, dict):
        return f"the manifest records no package versions (this is {_list(here)}); rebuild it with the versions " \
               "that made it"
    diff = sorted(k for k in set(there) | set(here) if there.get(k) != here.get(k))
    if not diff:
        return (f"it was made with the versions installed here ({_list(here)}), so its shard hashes or class "
                "parameters were edited; rebuild from a manifest you trust")
    return (f"it was made with {_list({k: there.get(k, 'none') for k in diff})}, this is "
            f"{_list({k: here.get(k, 'none') for k in diff})}; install those versions to rebuild it")


def _list(versions: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))


def _remove_made(store: Store, ds: Dataset) -> None:
    """Remove what a rejected rebuild wrote into a folder it created (its shards, its progress
    record), then the folder itself if nothing else is in it."""
    import os

    for name in [ds.shard_name(i) for i in range(ds.plan.n_shards)] + [PROGRESS_DIR]:
        with contextlib.suppress(OSError, FractalDBError):
            store.remove(name)
    if store.local:
        with contextlib.suppress(OSError):
            os.rmdir(store.root)  # only if empty
