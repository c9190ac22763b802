"""Tiling images into one RGB grid: the contact sheets of ``fractaldb preview`` and of the dataset card."""

from __future__ import annotations

import numpy as np

__all__ = ["rgb", "tile"]


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
