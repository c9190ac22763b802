"""Contact sheets: a grid of images a person can look at (``fractaldb preview``)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import InputError, OutputError
from .render import RenderConfig, create_renderer

__all__ = ["contact_sheet", "preview_categories", "preview_dataset", "preview_shards", "preview_folder",
           "save_sheet", "check_sheet_path"]


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


def _fractal_images(ids, systems, cfg: RenderConfig, per_category: int) -> list:
    """Identity weight first, then further weights: first draw, flip 0."""
    renderer = create_renderer(cfg)
    table = cfg.weight_table()
    identity = int(np.argmax(np.all(table == 1.0, axis=1)))
    weights = [identity] + [w for w in range(len(table)) if w != identity][: per_category - 1]
    return [renderer.render_block(cid, ifs, w, draws=[0]).images[0].copy()
            for cid, ifs in zip(ids, systems) for w in weights]


def preview_categories(ids, systems, cfg: RenderConfig, per_category: int = 1, limit: int = 64) -> np.ndarray:
    """Identity-weight renders of the first ``limit`` categories (first draw,
    flip 0, plus ``per_category - 1`` more weights) as a sheet."""
    images = _fractal_images(list(ids)[:limit], list(systems)[:limit], cfg, per_category)
    return contact_sheet(images, columns=per_category if per_category > 1 else None)


def preview_dataset(ds, per_category: int = 1, limit: int = 64) -> np.ndarray:
    """A row per class of a :class:`fractaldb.dataset.Dataset`, either family.

    Fractal categories show their identity weight (and more weights when
    ``per_category > 1``); Perlin classes show their first instances.
    """
    import dataclasses

    from .perlin import PerlinRenderer, instance_key

    images = []
    if ds.systems:
        cfg = dataclasses.replace(ds.render_config, patches=1, flips=1)
        images += _fractal_images(ds.category_ids[:limit], ds.systems[:limit], cfg, per_category)
    room = max(0, limit - len(ds.systems))
    if ds.perlin_classes and room:
        renderer = PerlinRenderer(ds.perlin_render_config)
        images += [renderer.render(pc, instance_key(ds.config["seed"], j, i)).copy()
                   for j, pc in enumerate(ds.perlin_classes[:room]) for i in range(per_category)]
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
                img_name = next(f"{key}.{e}" for e in ("png", "jpg", "webp") if f"{key}.{e}" in members)
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
