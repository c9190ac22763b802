"""Contact sheets: a grid of images a person can look at (``fractaldb preview``).

With ``--per-category`` above 1 every category is one row of its own (padded when a family
has fewer images per class than asked), so categories never wrap across rows.  Images are
read through the one validated reader path (:mod:`fractaldb.inputs`; shards through
:func:`fractaldb.manifest.shard_samples`), and the sheet is written through
:func:`fractaldb.storage.write_file`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import InputError, OutputError
from .inputs import image_array
from .safety import check_bytes
from .labels import MASK_EXT
from .sheet import overlay, tile

#: Most images one contact sheet shows (--limit x --per-category).
MAX_SHEET_IMAGES = 100_000

__all__ = ["MAX_SHEET_IMAGES", "open_image", "contact_sheet", "category_rows", "preview_dataset", "preview_shards",
           "preview_folder", "save_sheet", "check_sheet_path"]


def contact_sheet(images, columns: int | None = None, gap: int = 2) -> np.ndarray:
    """Tile ``(H, W, C)`` uint8 images into one RGB grid: a flat list in rows of ``columns``
    (default: a square), or a list of rows (one category each, padded to the longest, or to
    ``columns``).  Cells are as large as the largest image."""
    nested = bool(images) and all(isinstance(r, (list, tuple)) for r in images)
    rows = [[np.asarray(im) for im in row] for row in images] if nested else None
    if rows is None:
        flat = [np.asarray(im) for im in images]
        cols = columns or max(1, math.ceil(math.sqrt(len(flat))))
        rows = [flat[i:i + cols] for i in range(0, len(flat), cols)]
    rows = [r for r in rows if r]
    if not rows:
        raise InputError("nothing to preview: no images found")
    h = max(im.shape[0] for r in rows for im in r)
    w = max(im.shape[1] for r in rows for im in r)
    cols = max(columns or 0, max(len(r) for r in rows))
    n = sum(len(r) for r in rows)
    check_bytes(f"a contact sheet of {n} images of {w}x{h}",
                (len(rows) * (h + gap) + gap) * (cols * (w + gap) + gap) * 3, "lower --limit or --per-category")
    return tile(rows, cell=(h, w), columns=cols, gap=gap)


def category_rows(images, n_classes: int) -> list:
    """A family's preview images (the same number for each of its first ``n_classes``
    classes, class after class) as one row per class."""
    if n_classes <= 0 or not images:
        return []
    per = len(images) // n_classes
    if per * n_classes != len(images):  # a family that gave an uneven count: one row each as it came
        return [[im] for im in images]
    return [list(images[i:i + per]) for i in range(0, len(images), per)]


def preview_dataset(ds, per_category: int = 1, limit: int = 64) -> np.ndarray:
    """A row of ``per_category`` images per class of a :class:`fractaldb.dataset.Dataset`,
    the first ``limit`` classes in label order, every family (each chooses its images:
    fractals show their identity weight first, Perlin classes their first instances)."""
    rows = []
    room = limit
    for seg in ds.plan.segments:
        if room <= 0:
            break
        shown = min(room, seg.n_labels)
        rows += category_rows(ds.part(seg.family).preview_images(per_category, room), shown)
        room -= shown
    return _sheet(rows, per_category)


def _sheet(rows, per_category: int) -> np.ndarray:
    """One row per category (``per_category`` > 1), or a square grid of one image each."""
    if per_category > 1:
        return contact_sheet(rows, columns=per_category)
    return contact_sheet([im for row in rows for im in row])


def open_image(data_or_path, where: str, mode: str = "RGB") -> np.ndarray:
    """An image as an array of ``mode`` (RGB by default), or one :class:`InputError` naming
    ``where`` (not a regular file, corrupt, truncated, or over the pixel bound):
    :func:`fractaldb.inputs.image_array`."""
    return image_array(data_or_path, where, mode)


def preview_shards(url, per_category: int = 1, limit: int = 64) -> np.ndarray:
    """The first ``per_category`` images of the first ``limit`` labels of a shard dataset
    (each shard checked against the manifest's size and sha256 before it is read, each
    sample validated: :func:`fractaldb.manifest.shard_samples`)."""
    from .dataset import Dataset, load_manifest
    from .families import legacy_default_family
    from .manifest import shard_samples
    from .storage import Store

    store = Store(url)
    manifest = load_manifest(store)
    ds = Dataset.from_manifest(manifest)
    default = None if all("family" in c for c in manifest["categories"]) else legacy_default_family()
    found: dict = {}
    want = min(limit, manifest["plan"]["classes"])
    for entry in manifest["shards"]:
        where = store.path(entry["name"])
        for s in shard_samples(store, entry, ds, default):
            if s.label >= limit or len(found.setdefault(s.label, [])) >= per_category:
                continue
            image = open_image(s.image, f"{where}: {s.key}.{s.image_ext}")
            if MASK_EXT in s.members:  # a segmentation dataset: its mask painted over
                image = overlay(image, open_image(s.members[MASK_EXT], f"{where}: {s.key}.{MASK_EXT}", mode="L"))
            found[s.label].append(image)
        if len(found) >= want and all(len(v) >= per_category for v in found.values()):
            break
    return _sheet([found[label] for label in sorted(found)], per_category)


def preview_folder(folder, limit: int = 64) -> np.ndarray:
    """First image of each class folder of an ImageFolder (``fractaldb render`` output)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder; pass a 'fractaldb render' output or --params")
    images = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir())[:limit]:
        files = sorted(f for f in sub.iterdir() if f.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp")
                       and f.is_file())
        if files:
            images.append(open_image(files[0], str(files[0])))
    if not images:
        raise InputError(f"{folder} holds no class folders with images; pass a 'fractaldb render' output")
    size = images[0].shape[:2]
    images = [im if im.shape[:2] == size else np.array(Image.fromarray(im).resize(size[::-1])) for im in images]
    return contact_sheet(images)


def check_sheet_path(out) -> Path:
    """Fail before rendering when ``out`` is not a writable image path."""
    out = Path(out)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise OutputError(f"--out {out} must end in .png, .jpg or .webp")
    if not out.parent.is_dir():
        raise OutputError(f"folder {out.parent} does not exist; create it or choose another --out")
    if out.is_dir() or (out.exists() and not out.is_file()):
        raise OutputError(f"--out {out} exists and is not a regular file; choose another --out")
    return out


def save_sheet(sheet: np.ndarray, out) -> Path:
    """Write the sheet whole (:func:`fractaldb.storage.write_file`: an exclusive,
    unpredictable temporary, then a rename; a link at ``out`` is replaced, never followed)."""
    from .storage import write_file

    out = check_sheet_path(out)
    fmt = Image.registered_extensions()[out.suffix.lower()]
    write_file(out, lambda f: Image.fromarray(sheet).save(f, format=fmt))
    return out
