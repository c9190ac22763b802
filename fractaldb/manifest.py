"""A manifest is untrusted input: read it bounded, check every field before any work.

:func:`fractaldb.dataset.load_manifest` is the one loader; it runs

1. :func:`parse`: at most :data:`MAX_MANIFEST_BYTES`, a regular file, valid JSON
   (nesting bounded), a known ``format``;
2. :func:`check_structure`: every field the commands use, with its type and range;
   its ``config`` goes through the same validation as a preset (so names are plain
   file names, sizes are bounded);
3. :func:`check_plan`: the shard list is exactly the one its own config plans
   (names, count, samples per shard), so no entry can name a file elsewhere.

Readers then check each shard's size and hash before trusting its bytes
(:func:`read_shard`), and open tars and images so that any corruption is one
:class:`~fractaldb.errors.InputError` naming the file (:func:`tar_members`).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile

from .errors import InputError
from .families import category_reader
from .folders import SHARDS, wrong_folder_hint
from .keys import MANIFEST
from .safety import check_plain_name, memory_budget

__all__ = ["MAX_MANIFEST_BYTES", "parse", "check_structure", "check_plan", "read_shard", "tar_members",
           "dumps", "corrupt"]

#: Largest manifest read (a 21k-class manifest is a few tens of MB).
MAX_MANIFEST_BYTES = 1 << 30
_SHA = re.compile(r"^[0-9a-f]{64}$")


def corrupt(where: str, why: str, url: str) -> InputError:
    return InputError(f"{where}: {why}; run 'fractaldb verify {url}' and regenerate what it names")


def parse(store, formats, name: str = MANIFEST) -> dict:
    """The JSON of ``store``'s manifest (file ``name``), bounded and of a known format."""
    if not store.exists(name):
        raise InputError(wrong_folder_hint(store.url, SHARDS, category_reader)
                         or f"{store.url} has no {name}; is it a 'fractaldb generate' output?")
    path = store.path(name)
    raw = store.read(name, max_bytes=min(MAX_MANIFEST_BYTES, memory_budget()))
    try:
        manifest = json.loads(raw)
    except (ValueError, RecursionError):
        raise InputError(f"{path} is not valid JSON (or is nested too deeply); regenerate the dataset") from None
    if not isinstance(manifest, dict) or manifest.get("format") not in formats:
        raise InputError(f"{path} is not a fractaldb manifest ({' or '.join(formats)})")
    return manifest


def _int(v, lo=0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo


def check_structure(manifest: dict, source: str) -> None:
    """Every field the commands read, with its type (see the module docstring)."""
    def bad(what):
        return InputError(f"{source}: {what}; the manifest was edited or damaged, regenerate the dataset")

    for key, kind in (("config", dict), ("plan", dict), ("categories", list), ("shards", list)):
        if not isinstance(manifest.get(key), kind):
            raise bad(f"'{key}' is missing or not a {kind.__name__}")
    plan = manifest["plan"]
    for key in ("samples", "shards", "classes"):
        if not _int(plan.get(key)):
            raise bad(f"plan.{key} is missing or not a non-negative integer")
    if not all(isinstance(c, dict) for c in manifest["categories"]):
        raise bad("a category is not a mapping")
    for i, e in enumerate(manifest["shards"]):
        if not isinstance(e, dict):
            raise bad(f"shard entry {i} is not a mapping")
        check_plain_name(e.get("name"), f"shard {i} name", source)
        if not (_int(e.get("samples")) and _int(e.get("bytes"))):
            raise bad(f"shard {i} has no non-negative samples and bytes")
        if not isinstance(e.get("sha256"), str) or not _SHA.match(e["sha256"]):
            raise bad(f"shard {i} has no sha256 of 64 hex digits")
    for key in ("versions", "records_by_shard", "degenerate_variants_by_shard"):
        if key in manifest and not isinstance(manifest[key], dict):
            raise bad(f"'{key}' is not a mapping")
    for key in ("records_by_shard", "degenerate_variants_by_shard"):
        if not all(isinstance(v, list) for v in manifest.get(key, {}).values()):
            raise bad(f"'{key}' holds a value that is not a list")


def check_plan(manifest: dict, ds, source: str) -> None:
    """The shard list, counts and classes are those the manifest's own config plans."""
    def bad(what):
        return InputError(f"{source}: {what}; the manifest was edited or damaged, regenerate the dataset")

    plan, shards = ds.plan, manifest["shards"]
    if len(shards) != plan.n_shards:
        raise bad(f"it lists {len(shards)} shards, its config plans {plan.n_shards}")
    given = manifest["plan"]
    for key, want in (("samples", plan.n_samples), ("shards", plan.n_shards), ("classes", ds.n_classes)):
        if given[key] != want:
            raise bad(f"plan.{key} is {given[key]}, its config plans {want}")
    labels = [c.get("label") for c in manifest["categories"]]
    if labels != list(range(ds.n_classes)):
        raise bad(f"its categories are not labelled 0..{ds.n_classes - 1} in order")
    for i, e in enumerate(shards):
        if e["name"] != ds.shard_name(i):
            raise bad(f"shard {i} is named {e['name']!r}, its config names it {ds.shard_name(i)!r}")
        if e["samples"] != plan.shard_length(i):
            raise bad(f"shard {i} has {e['samples']} samples, its config plans {plan.shard_length(i)}")


def read_shard(store, entry: dict) -> bytes:
    """The bytes of a shard, checked against its manifest entry (size before reading, then sha256)."""
    name = entry["name"]
    path = store.path(name)
    size = store.check_regular(name)
    if size != entry["bytes"]:
        raise corrupt(path, f"{size} bytes, the manifest says {entry['bytes']}", store.url)
    data = store.read(name, max_bytes=entry["bytes"])
    if len(data) != entry["bytes"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise corrupt(path, "its sha256 differs from the manifest", store.url)
    return data


def tar_members(data: bytes, where: str):
    """``(member name, bytes)`` of every file in a tar, or one :class:`InputError` naming ``where``."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                f = tar.extractfile(member)
                yield member.name, f.read()
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise InputError(f"{where} is not a readable tar ({type(exc).__name__}); regenerate it") from None


def dumps(obj) -> bytes:
    """The bytes of every JSON file fractaldb writes beside the shards: indented, keys sorted."""
    return (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode()
