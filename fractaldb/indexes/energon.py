"""``energon``: Megatron-Energon's metadata, as ``energon prepare`` writes it for an
image-classification webdataset: ``.nv-meta/dataset.yaml`` (sample type
``ImageClassificationSample``, ``field_map`` image -> the image member, label ->
``cls``), ``.nv-meta/split.yaml`` (every shard in ``train``; with a ``val_fraction``, its split in ``val``
and an empty ``test``: the parts energon's lint checks by default), ``.nv-meta/.info.json``
and ``.info.yaml`` (samples per shard), ``.nv-meta/index.sqlite`` (tables ``samples``
and ``sample_parts``: each sample's byte range and each member's data range),
``.nv-meta/index.uuid`` and one ``<shard>.tar.idx`` per shard (little-endian uint64
byte offsets of each sample's first header, then of the archive's end).
``index.sqlite`` is rebuilt from scratch each time; ``index.uuid`` is derived from the
shards' sha256, so the same dataset gives the same files.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import struct
import tempfile
import uuid

import yaml

from ..config import val_shard_count
from ..errors import InputError
from ..keys import LABEL_EXT, SHARD_SUFFIX
from .registry import Index, register_index
from .tar import image_ext, samples_of, split_name, tar_members

__all__ = ["ENERGON_DIR", "energon_tar_index", "EnergonIndex"]

ENERGON_DIR = ".nv-meta"


def energon_tar_index(data: bytes) -> bytes:
    """Energon's ``<shard>.tar.idx``: each sample's first header offset, then the end, as uint64."""
    members, end = tar_members(data)
    offsets = [g[0][1] for _, g in samples_of(members)] + [end]
    return struct.pack(f"<{len(offsets)}Q", *offsets)


@register_index
class EnergonIndex(Index):
    """Energon's files, shard after shard (``index.sqlite`` grows in a temporary folder)."""

    name = "energon"
    help = f"Megatron-Energon ({ENERGON_DIR}/ and .tar.idx per shard)"
    reads_shards = True

    def __init__(self, store, manifest: dict, dataset=None, asked: bool = False):
        super().__init__(store, manifest, dataset, asked)
        self.tmp = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.tmp.name, "index.sqlite")
        self.db = sqlite3.connect(self.path)
        self.db.execute("CREATE TABLE samples (tar_file_id INTEGER NOT NULL, sample_key TEXT NOT NULL UNIQUE, "
                        "sample_index INTEGER NOT NULL, byte_offset INTEGER, byte_size INTEGER)")
        self.db.execute("CREATE TABLE sample_parts (tar_file_id INTEGER, sample_index INTEGER, part_name TEXT, "
                        "content_byte_offset INTEGER, content_byte_size INTEGER)")
        self.image_ext = None

    def add_shard(self, tar_id, name, data):
        members, end = tar_members(data)
        groups = samples_of(members)
        starts = [g[0][1] for _, g in groups] + [end]
        rows = [(tar_id, key, i, starts[i], starts[i + 1] - starts[i]) for i, (key, _) in enumerate(groups)]
        parts = [(tar_id, i, split_name(m[0])[1], m[2], m[3]) for i, (_, group) in enumerate(groups) for m in group]
        try:
            self.db.executemany("INSERT INTO samples VALUES (?, ?, ?, ?, ?)", rows)
        except sqlite3.IntegrityError:
            raise InputError(f"{self.store.url}: two samples share a key; these shards are not a fractaldb "
                             "dataset's, run 'fractaldb verify'") from None
        self.db.executemany("INSERT INTO sample_parts VALUES (?, ?, ?, ?, ?)", parts)
        self.put(f"{name}.idx", struct.pack(f"<{len(starts)}Q", *starts))
        if self.image_ext is None:
            self.image_ext = image_ext(name, data)

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
        n, k = len(names), val_shard_count(manifest["config"], len(names))

        def collapsed(lo, hi):  # shards lo..hi-1 as energon's brace range (one name: itself)
            if hi - lo > 1:
                return [f"{manifest['name']}-{{{lo:06d}..{hi - 1:06d}}}{SHARD_SUFFIX}"]
            return names[lo:hi]

        # no split asked: what `energon prepare --split-parts train:...` writes, byte for byte (its lint then
        # needs --split-parts train); a val_fraction split: every part its lint checks by default (train,
        # val, test), the empty test part skipped there
        parts = {"train": collapsed(0, n - k), "val": collapsed(n - k, n), "test": []} if k else \
            {"train": collapsed(0, n)}
        files = {
            "index.sqlite": sqlite_bytes,
            # a fixed identity for this dataset (energon writes a random one per prepare)
            "index.uuid": str(uuid.UUID(hashlib.sha256("".join(e["sha256"] for e in manifest["shards"])
                                                       .encode()).hexdigest()[:32])).encode(),
            ".info.json": json.dumps(info, indent=2).encode(),
            ".info.yaml": yaml.safe_dump(info, sort_keys=False).encode(),
            "split.yaml": yaml.safe_dump({"split_parts": parts, "exclude": []},
                                         sort_keys=False).encode(),
            "dataset.yaml": yaml.safe_dump({
                "sample_type": {"__module__": "megatron.energon", "__class__": "ImageClassificationSample"},
                "field_map": {"image": self.image_ext, "label": LABEL_EXT},
            }, sort_keys=False).encode(),
        }
        for fname, data in files.items():
            self.put(f"{ENERGON_DIR}/{fname}", data)
        return self.flush()
