"""``fractaldb export``: a shard dataset unpacked into an ImageFolder.

Each family names its files (``Family.export_path``): FractalDB samples get the
original names (``<cat>/<cat>_<ww>_count_<k>_flip<t>.<ext>``), for training scripts
written for the original folders.  ImageFolder readers number the class folders in
sorted order, so when the families' own folder names would not sort in label order
(e.g. ``families: [perlin, fractal]``) every folder gets its label as a prefix
(``000002-00000``); ``classes.json`` beside the folders maps each folder to its label.

A segmentation dataset (label kind ``mask``, :mod:`fractaldb.labels`) is written as
two trees of the same relative paths: ``images/...`` and ``masks/...`` (each mask a
PNG, pixel = label + 1, 0 = background); its folders are the families' own, since its
images are not one class each.  Everything is assembled under a temporary name and
renamed into place.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import manifest as fmanifest
from .dataset import Dataset, load_manifest
from .encode import FORMATS
from .errors import FractalDBError, InputError
from .families import get_family, legacy_default_family
from .keys import CLASSES_INDEX
from .labels import MASK, MASK_EXT
from .safety import check_plain_name
from .storage import Store, staged_dir

__all__ = ["export_imagefolder", "IMAGES", "MASKS"]

#: The two trees of a segmentation export.
IMAGES, MASKS = "images", "masks"


class _Exporter:
    """Writes one dataset's samples under ``root``, shard after shard."""

    def __init__(self, out: str, manifest: dict, root: Path):
        self.out, self.root = out, root
        self.masks = Dataset.from_manifest(manifest).label_kind is MASK
        self.folders: dict = {}  # class folder -> label (ImageFolder layout)
        self.default = None      # the family of samples that name none (fractaldb 0.1)
        self.count = 0

    def shard(self, store: Store, entry: dict) -> None:
        metas, files = {}, {}
        where = store.path(entry["name"])
        for name, data in fmanifest.tar_members(fmanifest.read_shard(store, entry), where):
            key, _, ext = name.partition(".")
            if ext == "json":
                metas[key] = json.loads(data)
            elif ext in FORMATS or ext == MASK_EXT:
                files[(key, ext)] = data
        for key, meta in metas.items():
            self.sample(key, meta, files, where)

    def _path(self, key: str, meta: dict, files: dict, where: str) -> tuple:
        """``(relative path, image ext, image bytes)`` of a sample, its metadata checked."""
        try:
            ext = next(e for e in FORMATS if (key, e) in files)
            if "family" not in meta and self.default is None:
                self.default = legacy_default_family()
            rel = get_family(meta.get("family", self.default)).export_path(meta, ext)
            for part in rel.split("/"):
                check_plain_name(part, "an exported file name", where)
            return rel, ext, files[(key, ext)]
        except (StopIteration, KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, FractalDBError):
                raise
            raise InputError(f"{where}: sample {key} has malformed metadata ({type(exc).__name__}); "
                             "regenerate the shard") from None

    def sample(self, key: str, meta: dict, files: dict, where: str) -> None:
        rel, ext, data = self._path(key, meta, files, where)
        if self.masks:
            mask = files.get((key, MASK_EXT))
            if mask is None:
                raise InputError(f"{where}: sample {key} has no {MASK_EXT}; regenerate the shard")
            self._write(f"{IMAGES}/{rel}", data)
            self._write(f"{MASKS}/{rel[: -len(ext)]}png", mask)
        else:
            folder = rel.split("/", 1)[0]
            if self.folders.setdefault(folder, meta["label"]) != meta["label"]:
                raise InputError(f"{self.out}: labels {self.folders[folder]} and {meta['label']} would share the "
                                 f"folder {folder}; the manifest or shards are inconsistent, regenerate the dataset")
            self._write(rel, data)
        self.count += 1

    def _write(self, rel: str, data: bytes) -> None:
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def finish(self) -> None:
        """Label prefixes where the folders would not sort in label order; ``classes.json``."""
        folders = self.folders
        if [folders[f] for f in sorted(folders)] != sorted(folders.values()):
            for folder, label in list(folders.items()):
                new = f"{label:06d}-{folder}"
                (self.root / folder).rename(self.root / new)
                folders[new] = folders.pop(folder)
        if not self.masks:
            (self.root / CLASSES_INDEX).write_text(json.dumps(folders, indent=1, sort_keys=True) + "\n")


def export_imagefolder(out: str, dest, overwrite: bool = False, progress=None) -> int:
    """Unpack the shard dataset ``out`` into the folder ``dest`` (see the module's text);
    returns the number of images.  ``progress(n_samples)`` follows the shards."""
    store = Store(out)
    manifest = load_manifest(store)
    with staged_dir(Path(dest), overwrite, inputs=[out]) as tmp:
        exporter = _Exporter(out, manifest, tmp)
        for entry in manifest["shards"]:
            exporter.shard(store, entry)
            if progress is not None:
                progress(entry["samples"])
        exporter.finish()
    return exporter.count
