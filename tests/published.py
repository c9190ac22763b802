"""The published FractalDB-1k categories, read at test time from ``../shared/fixtures``.

They are never copied into this repository: a test that needs one calls :func:`text` or
:func:`rows`, which skip (naming the path) when the files are not beside the checkout.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT.parent / "shared" / "fixtures" / "fractaldb-1k-published"


def text(name: str) -> str:
    """The CSV of category ``name`` (``"00000"``...) as the original wrote it."""
    path = PUBLISHED / f"{name}.csv"
    if not path.is_file():
        pytest.skip(f"the published FractalDB-1k categories are not beside this checkout ({path})",
                    allow_module_level=True)
    return path.read_text(encoding="ascii")


def rows(name: str) -> list[list[float]]:
    """Category ``name`` as rows a, b, c, d, e, f, p."""
    return [[float(v) for v in line.split(",")] for line in text(name).splitlines() if line.strip()]
