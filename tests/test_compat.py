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
from fractaldb.dataset import generate, regenerate, verify
from fractaldb.export import export_imagefolder
from test_pinned import PINNED, PINNED_PNG2

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
    # 0.1.0.dev0 had one PNG writer, png1; png2 (the default of 0.3) gives the same pixels.
    manifest = generate(resolve(str(path), ["encoder=png1"]), str(tmp_path / "ds"), workers=1)
    assert {e["name"]: e["sha256"] for e in manifest["shards"]} == PINNED["mixed"]
    manifest = generate(resolve(str(path), ["encoder=png2"]), str(tmp_path / "ds2"), workers=1)
    assert {e["name"]: e["sha256"] for e in manifest["shards"]} == PINNED_PNG2["mixed"]


@pytest.mark.parametrize("name", ["tiny", "mixed"])
def test_old_manifest_names_no_encoder_and_means_png1(name):
    """The old manifests have no encoder key: they are read as png1's (and a dataset
    written today names its encoder, so it is never guessed)."""
    from fractaldb.dataset import Dataset

    manifest = json.loads((OLD / name / "manifest.json").read_text())
    assert "encoder" not in manifest["config"]
    assert Dataset.from_manifest(manifest).config["encoder"] == "png1"


@pytest.mark.parametrize("encoder", ["png1", "png2", "png3"])
def test_manifest_records_the_encoder_and_regenerates_with_it(encoder, tmp_path):
    ds = tmp_path / encoder
    manifest = generate(resolve("tiny", [f"encoder={encoder}", "fractal.categories=2"]), str(ds), workers=1)
    assert json.loads((ds / "manifest.json").read_text())["config"]["encoder"] == encoder
    entry = manifest["shards"][0]
    original = (ds / entry["name"]).read_bytes()
    (ds / entry["name"]).unlink()
    assert regenerate(str(ds), 0)["sha256"] == entry["sha256"]
    assert (ds / entry["name"]).read_bytes() == original
    assert verify(str(ds)) == []
