"""ImageFolder output with the original names (``fractaldb render``).

``OUT/<cat>/<cat>_<ww>_count_<k>_flip<t>.png``: the layout existing training
scripts (torchvision's ``ImageFolder``) read.  The folder is assembled under
a temporary name beside ``OUT`` and renamed into place at the end, so an
interrupted run never leaves a half-written dataset behind.  A
``render.json`` beside the class folders records the settings and any
degenerate weight variants (ImageFolder ignores plain files at the top).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from .encode import DEFLATE, encode_image
from .render import RenderConfig, render_blocks
from .storage import staged_dir

__all__ = ["write_imagefolder"]


def write_imagefolder(ids, systems, cfg: RenderConfig, out, workers: int = 1, overwrite: bool = False,
                      image_format: str = "png", progress=None, device: str = "cpu") -> dict:
    """Render ``systems`` into an ImageFolder at ``out``; returns the summary.

    Args:
        ids: category numbers (names and seeds).
        systems: one :class:`~fractaldb.ifs.IFS` per category.
        cfg: render settings.
        out: destination folder (must not exist, or be empty, unless ``overwrite``).
        workers: render/encode threads.
        overwrite: replace an existing non-empty ``out``.
        image_format: ``png`` (default), ``jpg`` or ``webp``.
        progress: optional ``progress(n_images)`` callback.
        device: render device, ``cpu`` or ``cuda`` (the files are the same).
    """
    out = Path(out)
    records = []
    with staged_dir(out, overwrite) as tmp:
        for cid in ids:
            (tmp / f"{cid:05d}").mkdir()

        def consume(block):
            folder = tmp / f"{block.category:05d}"
            for name, img in zip(block.names(cfg.flips), block.images):
                (folder / f"{name}.{image_format}").write_bytes(encode_image(img, image_format))
            return block.images.shape[0], block.record

        total = 0
        for n, record in render_blocks(systems, cfg, workers=workers, category_ids=ids, consume=consume,
                                         device=device):
            total += n
            if record is not None:
                records.append(record)
            if progress is not None:
                progress(n)
        summary = {
            "format": "fractaldb-imagefolder-v1",
            "render": asdict(cfg),
            "image_format": image_format,
            "deflate": DEFLATE if image_format == "png" else None,
            "categories": len(ids),
            "images": total,
            "degenerate_variants": records,
        }
        (tmp / "render.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
