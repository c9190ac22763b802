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
renamed into place (:func:`fractaldb.storage.staged_dir`; an interrupt removes it); every
shard is checked against the manifest and every sample validated on the one reader path
(:func:`fractaldb.manifest.shard_samples`: labels among the manifest's classes, bounded
metadata, an image header within the pixel bound), and every file is written through
:func:`fractaldb.storage.write_file`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from . import manifest as fmanifest
from .dataset import Dataset, load_manifest
from .errors import FractalDBError, InputError
from .families import get_family, legacy_default_family
from .inputs import image_size
from .keys import CLASSES_INDEX
from .labels import MASK, MASK_EXT
from .safety import check_plain_name
from .storage import Store, staged_dir, write_file

__all__ = ["export_imagefolder", "IMAGES", "MASKS"]

_FIX = "regenerate the shard from a manifest you trust"
#: The two trees of a segmentation export.
IMAGES, MASKS = "images", "masks"


class _Exporter:
    """Writes one dataset's samples under ``root``, shard after shard."""

    def __init__(self, out: str, manifest: dict, root: Path):
        self.out, self.root = out, root
        self.ds = Dataset.from_manifest(manifest)
        self.masks = self.ds.label_kind is MASK
        self.default = None if all("family" in c for c in manifest["categories"]) else legacy_default_family()
        self.folders: dict = {}  # class folder -> label (ImageFolder layout)
        self.made: set = set()   # relative folders created
        self.count = 0

    def shard(self, store: Store, entry: dict) -> None:
        where = store.path(entry["name"])
        for sample in fmanifest.shard_samples(store, entry, self.ds, self.default):
            self.sample(sample, where)

    def _path(self, sample, where: str) -> str:
        """The relative path of a sample, from its (validated) metadata, every part a plain name."""
        try:
            rel = get_family(sample.family).export_path(sample.meta, sample.image_ext)
            if not isinstance(rel, str) or rel.count("/") != 1:
                raise ValueError(rel)
            for part in rel.split("/"):
                check_plain_name(part, "an exported file name", where)
            return rel
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            if isinstance(exc, FractalDBError):
                raise
            raise InputError(f"{where}: sample {sample.key} has malformed metadata ({type(exc).__name__}); "
                             "regenerate the shard") from None

    def sample(self, sample, where: str) -> None:
        rel = self._path(sample, where)
        image_size(sample.image, f"{where}: sample {sample.key}", _FIX)
        if self.masks:
            mask = sample.members.get(MASK_EXT)
            if mask is None:
                raise InputError(f"{where}: sample {sample.key} has no {MASK_EXT}; regenerate the shard")
            image_size(mask, f"{where}: sample {sample.key} {MASK_EXT}", _FIX)
            self._write(f"{IMAGES}/{rel}", sample.image)
            self._write(f"{MASKS}/{rel[: -len(sample.image_ext)]}png", mask)
        else:
            folder = rel.split("/", 1)[0]
            if self.folders.setdefault(folder, sample.label) != sample.label:
                raise InputError(f"{self.out}: labels {self.folders[folder]} and {sample.label} would share the "
                                 f"folder {folder}; the manifest or shards are inconsistent, regenerate the dataset")
            self._write(rel, sample.image)
        self.count += 1

    def _write(self, rel: str, data: bytes) -> None:
        folder = rel.rpartition("/")[0]
        if folder not in self.made:
            os.makedirs(self.root / folder, exist_ok=True)
            self.made.add(folder)
        target = self.root / rel
        if os.path.lexists(target):
            raise InputError(f"{self.out}: two samples would both be exported as {rel}; the shards are "
                             "inconsistent, regenerate the dataset")
        write_file(target, data)

    def finish(self) -> None:
        """Label prefixes where the folders would not sort in label order; ``classes.json``."""
        folders = self.folders
        if [folders[f] for f in sorted(folders)] != sorted(folders.values()):
            for folder, label in list(folders.items()):
                new = f"{label:06d}-{folder}"
                (self.root / folder).rename(self.root / new)
                folders[new] = folders.pop(folder)
        if not self.masks:
            write_file(self.root / CLASSES_INDEX, (json.dumps(folders, indent=1, sort_keys=True) + "\n").encode())


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
