"""Contact sheets: a grid of images a person can look at (``fractaldb preview``)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from .encode import FORMATS
from .errors import InputError, OutputError

__all__ = ["contact_sheet", "preview_dataset", "preview_shards", "preview_folder", "save_sheet", "check_sheet_path"]


def contact_sheet(images, columns: int | None = None, gap: int = 2) -> np.ndarray:
    """Tile equally sized ``(H, W, C)`` uint8 images into one RGB grid."""
    images = [np.asarray(im) for im in images]
    if not images:
        raise InputError("nothing to preview: no images found")
    h, w = images[0].shape[:2]
    n = len(images)
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    sheet = np.full((rows * (h + gap) + gap, cols * (w + gap) + gap, 3), 40, dtype=np.uint8)
    for i, im in enumerate(images):
        if im.ndim == 2:
            im = im[:, :, None]
        if im.shape[2] == 1:
            im = np.repeat(im, 3, axis=2)
        r, c = divmod(i, cols)
        y, x = gap + r * (h + gap), gap + c * (w + gap)
        sheet[y:y + h, x:x + w] = im[:h, :w, :3]
    return sheet


def preview_dataset(ds, per_category: int = 1, limit: int = 64) -> np.ndarray:
    """A row of ``per_category`` images per class of a :class:`fractaldb.dataset.Dataset`,
    the first ``limit`` classes in label order, every family (each chooses its images:
    fractals show their identity weight first, Perlin classes their first instances)."""
    images = []
    room = limit
    for seg in ds.plan.segments:
        if room <= 0:
            break
        p = ds.part(seg.family)
        images += p.family.preview_images(p.settings, p.classes, per_category, room)
        room -= min(room, seg.classes)
    return contact_sheet(images, columns=per_category if per_category > 1 else None)


def preview_shards(url, per_category: int = 1, limit: int = 64) -> np.ndarray:
    """The first ``per_category`` images of the first ``limit`` labels of a shard dataset."""
    import io
    import tarfile

    from .dataset import load_manifest
    from .storage import Store

    store = Store(url)
    manifest = load_manifest(store)
    found: dict = {}
    for entry in manifest["shards"]:
        with tarfile.open(fileobj=io.BytesIO(store.read(entry["name"]))) as tar:
            members = {m.name: m for m in tar}
            for name, m in members.items():
                key, _, ext = name.partition(".")
                if ext != "cls":
                    continue
                label = int(tar.extractfile(m).read())
                if label >= limit or len(found.setdefault(label, [])) >= per_category:
                    continue
                img_name = next(f"{key}.{e}" for e in FORMATS if f"{key}.{e}" in members)
                with Image.open(io.BytesIO(tar.extractfile(members[img_name]).read())) as im:
                    found[label].append(np.array(im.convert("RGB")))
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
        files = sorted(f for f in sub.iterdir() if f.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"))
        if files:
            with Image.open(files[0]) as im:
                images.append(np.array(im.convert("RGB")))
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
    return out


def save_sheet(sheet: np.ndarray, out) -> Path:
    """Write the sheet atomically (temporary name, then rename)."""
    import os

    out = check_sheet_path(out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}{out.suffix}")
    try:
        Image.fromarray(sheet).save(tmp)
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {out}: {exc.strerror or exc}; choose a writable --out") from None
    return out
