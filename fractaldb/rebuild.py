"""Rebuild a whole dataset from its manifest (``fractaldb generate --from-manifest``).

The manifest holds everything a shard depends on (the resolved config, every
class's parameters, the plan), so a dataset can be made again on another machine
without its category search and without the original folder: the shards come
out byte for byte, and each is checked against the manifest's sha256 before the
new manifest (the mark of a complete folder) is written.  Interrupted rebuilds
continue with ``resume``, as ``generate`` does.
"""

from __future__ import annotations

from .dataset import Dataset, generate, load_manifest
from .errors import InputError
from .keys import MANIFEST
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
            (other package versions); the new folder is then left without a
            manifest (incomplete), so ``verify`` and loaders refuse it.
    """
    manifest = read_manifest(source)
    ds = Dataset.from_manifest(manifest)
    if ds.plan.n_shards != len(manifest["shards"]):
        raise InputError(f"{source}: the manifest lists {len(manifest['shards'])} shards but its config makes "
                         f"{ds.plan.n_shards}; the manifest was edited or is damaged")
    new = generate(None, out, dataset=ds, **options)
    want = {e["name"]: e["sha256"] for e in manifest["shards"]}
    bad = [e["name"] for e in new["shards"] if want.get(e["name"]) != e["sha256"]]
    if bad:
        store = Store(out)
        store.remove(MANIFEST)  # the folder is not the dataset the manifest describes
        raise InputError(
            f"rebuilt {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''} ({len(bad)} of {len(want)} shards) "
            f"differ from {source}: it was made with {manifest.get('versions')}, this is {new['versions']}; "
            "install those versions to rebuild it")
    return new
