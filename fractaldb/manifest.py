"""A manifest is untrusted input: read it bounded, check every field before any work.

:func:`fractaldb.dataset.load_manifest` is the one loader; it runs

1. :func:`parse`: at most :data:`MAX_MANIFEST_BYTES`, a regular file, valid JSON
   (nesting bounded), a known ``format``;
2. :func:`check_structure`: every field the commands use, with its type and range;
   its ``config`` goes through the same validation as a preset (so names are plain
   file names, sizes are bounded);
3. :func:`check_plan`: the shard list is exactly the one its own config plans
   (names, count, samples per shard), so no entry can name a file elsewhere, and its
   ``name`` is its config's (a dataset name: what the card, ``data_files`` and the
   Energon/DALI indexes quote).

Its ``versions`` are version strings (:func:`check_versions`).  Readers then check each
shard's size and hash before trusting its bytes (:func:`read_shard`), and open tars so
that any corruption is one :class:`~fractaldb.errors.InputError` naming the file
(:func:`tar_members`).  Every sample a command reads comes through :func:`shard_samples`:
member names checked, its ``.cls`` and ``.json`` checked against the manifest's classes
and families (:mod:`fractaldb.inputs`), its image present -- a dataset that verifies ok
but was tampered with (its hashes made to match) is one line, never a traceback.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile

from dataclasses import dataclass

from .errors import InputError
from .families import category_reader
from .folders import SHARDS, wrong_folder_hint
from .inputs import check_label, sample_meta
from .keys import LABEL_EXT, MANIFEST, META_EXT
from .safety import check_plain_name, memory_budget

__all__ = ["MAX_MANIFEST_BYTES", "parse", "check_structure", "check_plan", "check_versions", "read_shard",
           "tar_members", "shard_samples", "Sample", "member_name_ok", "dumps", "corrupt"]

#: Largest manifest read (a 21k-class manifest is a few tens of MB).
MAX_MANIFEST_BYTES = 1 << 30
_SHA = re.compile(r"^[0-9a-f]{64}$")
#: A package name and its version as a manifest's ``versions`` records them (``numpy``: ``2.4.6``,
#: ``deflate``: ``isal-0123456789ab``).
_PACKAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_!-]{0,63}$")
#: A tar member name of a shard: ``<key>.<ext>``, printable, no spaces, no folders.
_MEMBER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,199}$")


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
    if "name" in manifest and not isinstance(manifest["name"], str):
        raise bad("'name' is not text")
    if not isinstance(manifest.get("records", []), list) or not all(isinstance(r, dict) for r in manifest.get(
            "records", [])):
        raise bad("'records' is not a list of mappings")
    for key in ("versions", "records_by_shard", "degenerate_variants_by_shard"):
        if key in manifest and not isinstance(manifest[key], dict):
            raise bad(f"'{key}' is not a mapping")
    if "versions" in manifest:
        check_versions(manifest["versions"], source)
    for key in ("records_by_shard", "degenerate_variants_by_shard"):
        if not all(isinstance(v, list) for v in manifest.get(key, {}).values()):
            raise bad(f"'{key}' holds a value that is not a list")


def check_versions(versions, source: str) -> dict:
    """``versions`` (package -> version) if every entry is a package name and a version string."""
    if not isinstance(versions, dict) or len(versions) > 64:
        raise InputError(f"{source}: 'versions' is not a mapping of at most 64 packages; the manifest was edited "
                         "or damaged, regenerate the dataset")
    for k, v in versions.items():
        if not (isinstance(k, str) and _PACKAGE.match(k) and isinstance(v, str) and _VERSION.match(v)):
            raise InputError(f"{source}: versions holds {str(k)[:40]!r}: {str(v)[:40]!r}, not a package name and a "
                             "version string; the manifest was edited or damaged, regenerate the dataset")
    return versions


def check_plan(manifest: dict, ds, source: str) -> None:
    """The shard list, counts and classes are those the manifest's own config plans;
    its ``name`` is its config's."""
    def bad(what):
        return InputError(f"{source}: {what}; the manifest was edited or damaged, regenerate the dataset")

    if manifest.get("name", ds.config["name"]) != ds.config["name"]:
        raise bad(f"its name {str(manifest['name'])[:60]!r} is not its config's {ds.config['name']!r}")
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


def member_name_ok(name) -> bool:
    """Whether ``name`` is a shard member name fractaldb writes (``<key>.<ext>``: no folder,
    no space, nothing a reader's index format or a file system would take apart)."""
    return isinstance(name, str) and bool(_MEMBER.match(name)) and ".." not in name


@dataclass
class Sample:
    """One sample of a shard, checked (:func:`shard_samples`): its key, label, metadata,
    family, image member (extension and bytes) and every member by extension."""

    key: str
    label: int
    meta: dict
    family: str
    image_ext: str
    image: bytes
    members: dict


def shard_samples(store, entry: dict, ds, default_family: str | None = None):
    """The samples of one shard, in order, each checked before it is yielded.

    The shard is read through :func:`read_shard` (size, then sha256); every member name
    must be a plain ``<key>.<ext>`` (:func:`member_name_ok`); every sample needs an image,
    a ``.json`` that is a bounded JSON object whose ``label`` is a class of the manifest
    and whose ``family`` (if any) is one of its families, and a ``.cls`` (when present)
    equal to that label.  ``ds`` is the manifest's :class:`~fractaldb.dataset.Dataset`;
    samples that name no family (fractaldb 0.1) are ``default_family``'s.
    """
    from .encode import FORMATS

    where = store.path(entry["name"])
    fix = "regenerate it from a manifest you trust"
    families = list(ds.parts)
    n_classes = ds.n_classes
    groups: dict = {}
    for name, data in tar_members(read_shard(store, entry), where):
        if not member_name_ok(name):
            raise InputError(f"{where} holds a member named {name[:60]!r}, not a fractaldb sample member; {fix}")
        key, _, ext = name.partition(".")
        groups.setdefault(key, {})[ext] = data
    for key, members in groups.items():
        at = f"{where}: sample {key}"
        if META_EXT not in members:
            raise InputError(f"{at} has no .{META_EXT} member; {fix}")
        meta = sample_meta(members[META_EXT], f"{at} .{META_EXT}", n_classes, families, fix)
        label = meta["label"]
        if LABEL_EXT in members and check_label(members[LABEL_EXT], n_classes, f"{at} .{LABEL_EXT}", fix) != label:
            raise InputError(f"{at}: its .{LABEL_EXT} and .{META_EXT} give different labels; {fix}")
        ext = next((e for e in FORMATS if e in members), None)
        if ext is None:
            raise InputError(f"{at} has no image; {fix}")
        family = meta.get("family", default_family)
        yield Sample(key, label, meta, family, ext, members[ext], members)


def dumps(obj) -> bytes:
    """The bytes of every JSON file fractaldb writes beside the shards: indented, keys sorted."""
    return (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode()
