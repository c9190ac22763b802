"""Contact sheets: a grid of images a person can look at (``fractaldb preview``)."""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path

import numpy as np
from PIL import Image

from .encode import FORMATS
from .errors import InputError, OutputError
from .safety import check_bytes
from .labels import MASK_EXT
from .sheet import overlay, tile

#: Most images one contact sheet shows (--limit x --per-category).
MAX_SHEET_IMAGES = 100_000

__all__ = ["MAX_SHEET_IMAGES", "open_image", "contact_sheet", "preview_dataset", "preview_shards", "preview_folder", "save_sheet", "check_sheet_path"]


def contact_sheet(images, columns: int | None = None, gap: int = 2) -> np.ndarray:
    """Tile equally sized ``(H, W, C)`` uint8 images into one RGB grid."""
    images = [np.asarray(im) for im in images]
    if not images:
        raise InputError("nothing to preview: no images found")
    h, w = images[0].shape[:2]
    n = len(images)
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    check_bytes(f"a contact sheet of {n} images of {w}x{h}", (rows * (h + gap) + gap) * (cols * (w + gap) + gap) * 3,
                "lower --limit or --per-category")
    return tile([images[i:i + cols] for i in range(0, n, cols)], cell=(h, w), columns=cols, gap=gap)


def preview_dataset(ds, per_category: int = 1, limit: int = 64) -> np.ndarray:
    """A row of ``per_category`` images per class of a :class:`fractaldb.dataset.Dataset`,
    the first ``limit`` classes in label order, every family (each chooses its images:
    fractals show their identity weight first, Perlin classes their first instances)."""
    images = []
    room = limit
    for seg in ds.plan.segments:
        if room <= 0:
            break
        images += ds.part(seg.family).preview_images(per_category, room)
        room -= min(room, seg.n_labels)
    return contact_sheet(images, columns=per_category if per_category > 1 else None)


def open_image(data_or_path, where: str, mode: str = "RGB") -> np.ndarray:
    """An image as an array of ``mode`` (RGB by default), or one :class:`InputError` naming
    ``where`` (corrupt, truncated, or over PIL's decompression-bomb limit)."""
    src = io.BytesIO(data_or_path) if isinstance(data_or_path, (bytes, bytearray)) else data_or_path
    try:
        with Image.open(src) as im:
            return np.array(im.convert(mode))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, MemoryError) as exc:
        raise InputError(f"{where} is not a readable image ({type(exc).__name__}); replace or remove it") from None


def preview_shards(url, per_category: int = 1, limit: int = 64) -> np.ndarray:
    """The first ``per_category`` images of the first ``limit`` labels of a shard dataset
    (each shard checked against the manifest's size and sha256 before it is read)."""
    from .dataset import load_manifest
    from .manifest import read_shard, tar_members
    from .storage import Store

    store = Store(url)
    manifest = load_manifest(store)
    found: dict = {}
    for entry in manifest["shards"]:
        where = store.path(entry["name"])
        members = dict(tar_members(read_shard(store, entry), where))
        for name, data in members.items():
            key, _, ext = name.partition(".")
            if ext != "cls":
                continue
            try:
                label = int(data)
            except ValueError:
                raise InputError(f"{where}: {name} is not an integer label; regenerate the shard") from None
            if label >= limit or len(found.setdefault(label, [])) >= per_category:
                continue
            img_name = next((f"{key}.{e}" for e in FORMATS if f"{key}.{e}" in members), None)
            if img_name is None:
                raise InputError(f"{where}: sample {key} has no image; regenerate the shard")
            image = open_image(members[img_name], f"{where}: {img_name}")
            if f"{key}.{MASK_EXT}" in members:  # a segmentation dataset: its mask painted over
                mask = open_image(members[f"{key}.{MASK_EXT}"], f"{where}: {key}.{MASK_EXT}", mode="L")
                image = overlay(image, mask)
            found[label].append(image)
        if len(found) >= min(limit, manifest["plan"]["classes"]) and all(len(v) >= per_category for v in found.values()):
            break
    images = [im for label in sorted(found) for im in found[label]]
    return contact_sheet(images, columns=per_category if per_category > 1 else None)


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
    """Write the sheet atomically: an exclusive, unpredictable temporary file
    (never one an attacker could plant a link at), then a rename."""
    import os
    import tempfile

    out = check_sheet_path(out)
    fd, tmp = tempfile.mkstemp(prefix=".fractaldb-tmp-", suffix=out.suffix, dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            Image.fromarray(sheet).save(f, format=Image.registered_extensions()[out.suffix.lower()])
        os.replace(tmp, out)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {out}: {exc.strerror or exc}; choose a writable --out") from None
        raise
    return out
