"""Index files other readers need beside the shards (``fractaldb index DIR --for ...``).

- ``energon``: Megatron-Energon's metadata, as ``energon prepare`` writes it for an
  image-classification webdataset: ``.nv-meta/dataset.yaml`` (sample type
  ``ImageClassificationSample``, ``field_map`` image -> the image member, label ->
  ``cls``), ``.nv-meta/split.yaml`` (every shard in ``train``), ``.nv-meta/.info.json``
  and ``.info.yaml`` (samples per shard), ``.nv-meta/index.sqlite`` (tables ``samples``
  and ``sample_parts``: each sample's byte range and each member's data range),
  ``.nv-meta/index.uuid`` and one ``<shard>.tar.idx`` per shard (little-endian uint64
  byte offsets of each sample's first header, then of the archive's end).
- ``dali``: one ``<shard stem>.idx`` per shard in the format of DALI's ``wds2idx``
  (``v1.2 <samples>``, then per sample ``ext data_offset size member_name`` for each
  member, space separated), for ``fn.readers.webdataset(index_paths=...)``.
- ``wids``: ``wids-index.json`` (``generate`` writes it too).
- ``hf``: the dataset card and its contact sheet (:mod:`fractaldb.card`).

Every index is a function of the shards' bytes and the manifest: the same dataset
gives the same index files (``index.sqlite`` is rebuilt from scratch each time, its
``index.uuid`` is derived from the shards' sha256).  None is listed in the manifest.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import struct
import tarfile
import tempfile
import uuid

import yaml

from .card import write_card
from .dataset import Dataset, load_manifest
from .errors import ConfigError, InputError
from .keys import LABEL_EXT, SHARD_SUFFIX, WIDS_INDEX
from .storage import Store

__all__ = ["READERS", "write_indexes", "tar_members", "dali_index", "energon_tar_index", "ENERGON_DIR"]

#: The readers ``fractaldb index --for`` knows.
READERS = ("energon", "dali", "wids", "hf")
ENERGON_DIR = ".nv-meta"


def tar_members(data: bytes) -> tuple:
    """``([(name, header_offset, data_offset, size), ...], end)`` of a shard's regular files,
    in archive order; ``end`` is the offset just past the last member (its padding included)."""
    out = []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for m in tar:
                if m.isreg():
                    out.append((m.name, m.offset, m.offset_data, m.size))
            end = tar.offset
    except tarfile.TarError as exc:
        raise InputError(f"a shard is not a valid tar file ({exc}); run 'fractaldb verify' on the dataset") from None
    return out, end


def _split(name: str) -> tuple:
    """``(key, ext)`` at the first dot of the base name (as every WebDataset reader splits)."""
    slash = name.rfind("/") + 1
    dot = name.find(".", slash)
    return (name, "") if dot < 0 else (name[:dot], name[dot + 1:])


def _samples(members) -> list:
    """Consecutive members with one key, grouped: ``[(key, [member, ...]), ...]``."""
    groups = []
    for m in members:
        key, _ = _split(m[0])
        if groups and groups[-1][0] == key:
            groups[-1][1].append(m)
        else:
            groups.append((key, [m]))
    return groups


def dali_index(data: bytes) -> bytes:
    """DALI's ``wds2idx`` index (format ``v1.2``) of one shard."""
    members, _ = tar_members(data)
    groups = [(k, g) for k, g in _samples(members) if k and not k.endswith("/")]
    lines = [f"v1.2 {len(groups)}"]
    for _, group in groups:
        lines.append(" ".join(f"{_split(name)[1]} {data_off} {size} {name}" for name, _, data_off, size in group))
    return ("\n".join(lines) + "\n").encode()


def energon_tar_index(data: bytes) -> bytes:
    """Energon's ``<shard>.tar.idx``: each sample's first header offset, then the end, as uint64."""
    members, end = tar_members(data)
    offsets = [g[0][1] for _, g in _samples(members)] + [end]
    return struct.pack(f"<{len(offsets)}Q", *offsets)


def _image_ext(name: str, data: bytes) -> str:
    from .encode import FORMATS

    for member, *_ in tar_members(data)[0]:
        ext = _split(member)[1]
        if ext in FORMATS:
            return ext
    raise InputError(f"{name} holds no image; run 'fractaldb verify' on the dataset")


class _Energon:
    """Energon's files, shard after shard (``index.sqlite`` grows in a temporary folder)."""

    def __init__(self, store: Store, manifest: dict):
        self.store, self.manifest = store, manifest
        self.tmp = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.tmp.name, "index.sqlite")
        self.db = sqlite3.connect(self.path)
        self.db.execute("CREATE TABLE samples (tar_file_id INTEGER NOT NULL, sample_key TEXT NOT NULL UNIQUE, "
                        "sample_index INTEGER NOT NULL, byte_offset INTEGER, byte_size INTEGER)")
        self.db.execute("CREATE TABLE sample_parts (tar_file_id INTEGER, sample_index INTEGER, part_name TEXT, "
                        "content_byte_offset INTEGER, content_byte_size INTEGER)")
        self.image_ext = None
        self.written = []

    def add(self, tar_id: int, name: str, data: bytes) -> None:
        members, end = tar_members(data)
        groups = _samples(members)
        starts = [g[0][1] for _, g in groups] + [end]
        rows = [(tar_id, key, i, starts[i], starts[i + 1] - starts[i]) for i, (key, _) in enumerate(groups)]
        parts = [(tar_id, i, _split(m[0])[1], m[2], m[3]) for i, (_, group) in enumerate(groups) for m in group]
        try:
            self.db.executemany("INSERT INTO samples VALUES (?, ?, ?, ?, ?)", rows)
        except sqlite3.IntegrityError:
            raise InputError(f"{self.store.url}: two samples share a key; these shards are not a fractaldb "
                             "dataset's, run 'fractaldb verify'") from None
        self.db.executemany("INSERT INTO sample_parts VALUES (?, ?, ?, ?, ?)", parts)
        self.store.write(f"{name}.idx", struct.pack(f"<{len(starts)}Q", *starts))
        self.written.append(f"{name}.idx")
        if self.image_ext is None:
            self.image_ext = _image_ext(name, data)

    def finish(self) -> list:
        db = self.db
        db.execute("CREATE INDEX idx_samples_by_tar_and_idx ON samples(tar_file_id, sample_index)")
        db.execute("CREATE INDEX idx_sample_parts_seq ON sample_parts(tar_file_id, sample_index, "
                   "content_byte_offset)")
        db.execute("CREATE INDEX idx_sample_parts_full ON sample_parts(tar_file_id, sample_index, part_name, "
                   "content_byte_offset, content_byte_size)")
        db.commit()
        db.close()
        with open(self.path, "rb") as f:
            sqlite_bytes = f.read()
        self.tmp.cleanup()
        manifest = self.manifest
        names = [e["name"] for e in manifest["shards"]]
        info = {"energon_version": None, "shard_counts": {e["name"]: e["samples"] for e in manifest["shards"]}}
        n = len(names)
        collapsed = [f"{manifest['name']}-{{{0:06d}..{n - 1:06d}}}{SHARD_SUFFIX}"] if n > 1 else names
        files = {
            "index.sqlite": sqlite_bytes,
            # a fixed identity for this dataset (energon writes a random one per prepare)
            "index.uuid": str(uuid.UUID(hashlib.sha256("".join(e["sha256"] for e in manifest["shards"])
                                                       .encode()).hexdigest()[:32])).encode(),
            ".info.json": json.dumps(info, indent=2).encode(),
            ".info.yaml": yaml.safe_dump(info, sort_keys=False).encode(),
            "split.yaml": yaml.safe_dump({"split_parts": {"train": collapsed}, "exclude": []},
                                         sort_keys=False).encode(),
            "dataset.yaml": yaml.safe_dump({
                "sample_type": {"__module__": "megatron.energon", "__class__": "ImageClassificationSample"},
                "field_map": {"image": self.image_ext, "label": LABEL_EXT},
            }, sort_keys=False).encode(),
        }
        for fname, data in files.items():
            self.store.write(f"{ENERGON_DIR}/{fname}", data)
            self.written.append(f"{ENERGON_DIR}/{fname}")
        return self.written


def _dali_name(shard: str) -> str:
    """``name-000003.tar`` -> ``name-000003.idx`` (what ``wds2idx`` names it)."""
    return shard[: -len(SHARD_SUFFIX)] + ".idx" if shard.endswith(SHARD_SUFFIX) else shard + ".idx"


def _wids(store: Store, manifest: dict) -> list:
    store.write(WIDS_INDEX, (json.dumps({
        "__kind__": "wids-shard-index-v1", "wids_version": 1, "name": manifest["name"],
        "shardlist": [{"url": e["name"], "nsamples": e["samples"], "filesize": e["bytes"]}
                      for e in manifest["shards"]],
    }, indent=1, sort_keys=True) + "\n").encode())
    return [WIDS_INDEX]


def write_indexes(out: str, readers, progress=None) -> list:
    """Write the index files of ``readers`` (see :data:`READERS`) beside ``out``'s shards.

    The shards are checked against the manifest's sha256 first (an index of
    damaged shards would point readers at the wrong bytes).  Returns the names
    written.  ``progress(n_samples)`` follows the shards read.
    """
    readers = list(dict.fromkeys(readers))
    for r in readers:
        if r not in READERS:
            raise ConfigError(f"unknown reader {r!r}; choose from {', '.join(READERS)}")
    store = Store(out)
    if not store.exists():
        raise InputError(f"{out} does not exist; pass the folder 'fractaldb generate' wrote")
    manifest = load_manifest(store)
    written = []
    if {"energon", "dali"} & set(readers):
        energon = _Energon(store, manifest) if "energon" in readers else None
        for tar_id, e in enumerate(manifest["shards"]):
            if not store.exists(e["name"]):
                raise InputError(f"{e['name']} is missing; run 'fractaldb verify {out}', then index again")
            data = store.read(e["name"])
            if hashlib.sha256(data).hexdigest() != e["sha256"]:
                raise InputError(f"{e['name']} does not match the manifest; run 'fractaldb verify {out}', "
                                 "then index again")
            if energon is not None:
                energon.add(tar_id, e["name"], data)
            if "dali" in readers:
                store.write(_dali_name(e["name"]), dali_index(data))
                written.append(_dali_name(e["name"]))
            if progress is not None:
                progress(e["samples"])
        if energon is not None:
            written += energon.finish()
    for r in readers:
        if r == "wids":
            written += _wids(store, manifest)
        elif r == "hf":
            written += write_card(store, manifest, Dataset.from_manifest(manifest))
    return written
