"""Datasets and presets of fractaldb 0.1.0.dev0 keep working.

``tests/data/v0.1.0.dev0/{tiny,mixed}`` were written by that version
(flat preset keys; ``mixed`` is ``family: fractal+perlin``).  Their manifests
alone must be enough to verify them, rebuild any shard to its recorded
sha256 and export them; old flat preset files must keep loading and giving
the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from fractaldb.config import resolve
from fractaldb.dataset import export_imagefolder, generate, regenerate, verify
from test_pinned import PINNED

OLD = Path(__file__).parent / "data" / "v0.1.0.dev0"


def _old(name, tmp_path) -> Path:
    dest = tmp_path / name
    shutil.copytree(OLD / name, dest)
    return dest


@pytest.mark.parametrize("name", ["tiny", "mixed"])
def test_old_dataset_verifies_and_regenerates(name, tmp_path):
    ds = _old(name, tmp_path)
    assert verify(str(ds)) == []
    manifest = json.loads((ds / "manifest.json").read_text())
    for i, entry in enumerate(manifest["shards"]):
        original = (ds / entry["name"]).read_bytes()
        (ds / entry["name"]).unlink()
        assert verify(str(ds)) == [f"{entry['name']}: missing"]
        rebuilt = regenerate(str(ds), i)
        assert rebuilt["sha256"] == entry["sha256"]
        assert (ds / entry["name"]).read_bytes() == original
        assert hashlib.sha256(original).hexdigest() == entry["sha256"]
    assert verify(str(ds)) == []


@pytest.mark.parametrize("name", ["tiny", "mixed"])
def test_old_dataset_exports(name, tmp_path):
    ds = _old(name, tmp_path)
    manifest = json.loads((ds / "manifest.json").read_text())
    n = export_imagefolder(str(ds), tmp_path / "out")
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file() and p.name != "classes.json"]
    assert n == manifest["plan"]["samples"] == len(files)


def test_old_flat_preset_file_loads_and_gives_the_same_bytes(tmp_path):
    """A flat preset file as 0.1.0.dev0 documented it (family: fractal+perlin, perlin_* keys)."""
    flat = {
        "name": "mixed", "family": "fractal+perlin", "seed": 1, "sampler": "modern", "categories": 2,
        "fill_rate": 0.2, "search_points": 100000, "image_size": 48, "points": 3000, "mode": "patch",
        "color": "gray", "weights": "none", "patches": 2, "flips": 2, "compat": "modern",
        "degenerate": "replace", "image_format": "png", "perlin_classes": 3, "perlin_instances": 5,
        "perlin_image_format": "jpg", "perlin_min_distance": 0.3, "shard_size": 16,
    }
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(flat))
    manifest = generate(resolve(str(path)), str(tmp_path / "ds"), workers=1)
    assert {e["name"]: e["sha256"] for e in manifest["shards"]} == PINNED["mixed"]
