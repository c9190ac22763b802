"""OFDB (one image per FractalDB category) and FractalDB-21k on the 2-D fractal
family: the ``weight_rows`` setting, its presets, and their class parameters
against the published FractalDB-1k category files."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fractaldb.config import family_settings, resolve
from fractaldb.errors import ConfigError
from fractaldb.families import get_family
from fractaldb.ifs.system import IFS, to_csv_bytes
from fractaldb.ifs.render import CPURenderer
from tinyset import assert_one_line_error, run_cli

ROOT = Path(__file__).resolve().parents[1]
#: Published category CSVs (outside the repository; tests skip without them).
PUBLISHED = ROOT.parent / "shared" / "fixtures" / "fractaldb-1k-published"


def _samples(ds: Path) -> dict:
    """``{key: (meta, image array)}`` of every sample of a shard dataset."""
    manifest = json.loads((ds / "manifest.json").read_text())
    out = {}
    for e in manifest["shards"]:
        with tarfile.open(ds / e["name"]) as tar:
            members = {m.name: m for m in tar}
            for name, m in members.items():
                key, _, ext = name.partition(".")
                if ext == "json":
                    meta = json.loads(tar.extractfile(m).read())
                    with Image.open(io.BytesIO(tar.extractfile(members[f"{key}.png"]).read())) as im:
                        out[key] = (meta, np.array(im.convert("L")))  # png2 stores a palette image
    return out


def test_ofdb_1k_is_fractaldb_1k_row_0_draw_0_flip_0(tmp_path):
    ds = tmp_path / "ofdb"
    code, _, err = run_cli(["generate", "--preset", "ofdb-1k", "--classes", "3", "--out", ds, "--workers", "2"])
    assert code == 0, err
    manifest = json.loads((ds / "manifest.json").read_text())
    assert manifest["plan"]["samples"] == 3
    samples = _samples(ds)
    assert sorted(samples) == [f"c{c:05d}-w00-k0-f0" for c in range(3)]

    # the FractalDB-1k renderer's (weight row 0 = a x 0.2, draw 0, flip 0) image of each category
    fdb = family_settings(resolve("fractaldb-1k", ["fractal.categories=3"]), "fractal")
    assert fdb.render_config().weight_table()[0].tolist() == [0.2, 1, 1, 1, 1, 1]
    renderer = CPURenderer(fdb.render_config())
    for doc in manifest["categories"]:
        cid = doc["id"]
        want = renderer.render_block(cid, IFS.from_rows(doc["rows"]), 0, draws=[0]).images[0][:, :, 0]
        meta, image = samples[f"c{cid:05d}-w00-k0-f0"]
        assert image.shape == (362, 362)
        assert np.array_equal(image, want)
        assert (meta["weight"], meta["draw"], meta["flip"], meta["label"]) == (0, 0, 0, cid)

    # the original's file names
    code, _, err = run_cli(["export", ds, "--out", tmp_path / "folder"])
    assert code == 0, err
    files = sorted(p.relative_to(tmp_path / "folder").as_posix() for p in (tmp_path / "folder").rglob("*.png"))
    assert files == [f"{c:05d}/{c:05d}_00_count_0_flip0.png" for c in range(3)]

    # the class parameters are the published FractalDB-1k categories, byte for byte
    if not PUBLISHED.is_dir():
        pytest.skip(f"published category files not found at {PUBLISHED}")
    for doc in manifest["categories"]:
        published = (PUBLISHED / f"{doc['id']:05d}.csv").read_bytes()
        assert to_csv_bytes(IFS.from_rows(doc["rows"])) == published


def test_ofdb_and_21k_presets_continue_the_official_search():
    one, ofdb21, fdb21, fdb1 = (resolve(p) for p in ("ofdb-1k", "ofdb-21k", "fractaldb-21k", "fractaldb-1k"))
    for cfg in (one, ofdb21, fdb21):
        assert (cfg["seed"], cfg["fractal"]["sampler"], cfg["fractal"]["fill_rate"]) == (1, "official", 0.2)
        assert cfg["fractal"]["search_points"] == 100_000
    assert one["fractal"]["categories"] == 1000
    assert ofdb21["fractal"]["categories"] == fdb21["fractal"]["categories"] == 21_000
    # OFDB-21k differs from OFDB-1k in the category count only; FractalDB-21k from FractalDB-1k too
    assert {**ofdb21["fractal"], "categories": 1000} == one["fractal"]
    assert {**fdb21["fractal"], "categories": 1000} == fdb1["fractal"]
    fam = get_family("fractal")
    ofdb = family_settings(one, "fractal")
    assert (fam.bind(ofdb, ()).blocks_per_class, fam.bind(ofdb, ()).images_per_block) == (1, 1)
    assert ofdb.weight_row_ids() == (0,)
    # the default is every row: FractalDB-1k's 25 x 10 x 4
    full = family_settings(fdb1, "fractal")
    assert full.weight_rows == "all" and (fam.bind(full, ()).blocks_per_class, fam.bind(full, ()).images_per_block) == (25, 40)


def test_weight_rows_render_the_same_images_as_the_full_table(tmp_path):
    """A row subset is a subset of the full dataset: same keys, same pixels."""
    small = ["fractal.categories=2", "fractal.image_size=32", "fractal.points=1500", "fractal.patches=2",
             "fractal.flips=2", "fractal.sampler=modern", "fractal.weights=0.4", "shard_size=50"]
    for name, extra in (("all", []), ("some", ["fractal.weight_rows=5,0"])):
        code, _, err = run_cli(["generate", "--preset", "tiny", "--out", tmp_path / name, "--workers", "2",
                                *sum((["--set", s] for s in small + extra), [])])
        assert code == 0, err
    full, some = _samples(tmp_path / "all"), _samples(tmp_path / "some")
    assert len(full) == 2 * 25 * 4 and len(some) == 2 * 2 * 4
    assert {k.split("-")[1] for k in some} == {"w00", "w05"}
    for key, (meta, image) in some.items():
        assert np.array_equal(image, full[key][1]), key
        assert meta["weight"] == full[key][0]["weight"] and meta["factors"] == full[key][0]["factors"]
    # block 0 renders row 5: the order given is the block order
    fam = get_family("fractal")
    cfg = family_settings(resolve("tiny", small[:-1] + ["fractal.weight_rows=5,0"]), "fractal")
    assert cfg.weight_row_ids() == (5, 0) and fam.bind(cfg, ()).blocks_per_class == 2


@pytest.mark.parametrize("rows", ["25", "0,0", "-1", "first", "0;1", ""])
def test_bad_weight_rows_are_one_line_errors(rows, tmp_path):
    with pytest.raises(ConfigError, match="weight_rows"):
        family_settings(resolve("fractaldb-1k", [f"fractal.weight_rows={rows}"]), "fractal")
    code, _, err = run_cli(["generate", "--preset", "ofdb-1k", "--set", f"fractal.weight_rows={rows}",
                            "--out", tmp_path / "x"])
    assert_one_line_error(code, err, "weight_rows")
    assert not (tmp_path / "x").exists()


def test_weight_rows_follow_the_table_size():
    # weights none: one row, so only row 0 exists
    assert family_settings(resolve("tiny", ["fractal.weight_rows=0"]), "fractal").weight_row_ids() == (0,)
    with pytest.raises(ConfigError, match=r"0\.\.0"):
        family_settings(resolve("tiny", ["fractal.weight_rows=1"]), "fractal")
