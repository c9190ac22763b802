"""Tiling images into one RGB grid: the contact sheets of ``fractaldb preview`` and of the dataset card."""

from __future__ import annotations

import numpy as np

__all__ = ["rgb", "tile", "overlay"]


def rgb(img) -> np.ndarray:
    """``img`` (``(H, W)``, ``(H, W, 1)`` or ``(H, W, C >= 3)`` uint8) as ``(H, W, 3)``."""
    img = np.asarray(img)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return img[:, :, :3]


def tile(rows, cell: tuple | None = None, columns: int | None = None, gap: int = 2,
         background: int = 40) -> np.ndarray:
    """A grid with one row of cells per entry of ``rows`` (lists of images).

    Each image sits at the top left of its cell, cut to it; ``cell`` is ``(h, w)``
    (default: the largest image), ``columns`` the cells per row (default: the longest row).
    """
    if cell is None:
        cell = (max(np.shape(im)[0] for row in rows for im in row),
                max(np.shape(im)[1] for row in rows for im in row))
    h, w = cell
    cols = columns or max(len(row) for row in rows)
    sheet = np.full((len(rows) * (h + gap) + gap, cols * (w + gap) + gap, 3), background, dtype=np.uint8)
    for r, row in enumerate(rows):
        for c, im in enumerate(row):
            im = rgb(im)[:h, :w]
            y, x = gap + r * (h + gap), gap + c * (w + gap)
            sheet[y:y + im.shape[0], x:x + im.shape[1]] = im
    return sheet


def _colours(n: int) -> np.ndarray:
    """``(n, 3)`` uint8: distinct, fixed colours for mask values 1..n (golden-angle hues)."""
    import colorsys

    out = np.zeros((n + 1, 3), dtype=np.uint8)
    for v in range(1, n + 1):
        out[v] = [round(255 * c) for c in colorsys.hsv_to_rgb((v * 0.618033988749895) % 1.0, 0.85, 1.0)]
    return out


def overlay(img, mask, alpha: float = 0.55) -> np.ndarray:
    """``img`` with a segmentation ``mask`` (``(H, W)``, 0 = background) painted over it:
    each label value its own colour at ``alpha``, the background left as it is."""
    img = rgb(img).astype(np.float32)
    mask = np.asarray(mask)
    colours = _colours(int(mask.max()) if mask.size else 0).astype(np.float32)
    on = mask > 0
    img[on] = (1 - alpha) * img[on] + alpha * colours[mask[on]]
    return np.round(img).astype(np.uint8)
