"""OFDB (one image per FractalDB category) and FractalDB-21k on the 2-D fractal
family: the ``weight_rows`` setting, its presets, and their class parameters
against the published FractalDB-1k category files."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fractaldb.config import family_settings, resolve
from fractaldb.errors import ConfigError
from fractaldb.families import get_family
from fractaldb.ifs.system import IFS, to_csv_bytes
from fractaldb.ifs.render import CPURenderer
from tinyset import assert_one_line_error, run_cli

ROOT = Path(__file__).resolve().parents[1]
#: Where the project's machines and CI keep the published FractalDB-1k category files
#: 00000..00024 (beside the checkout; a clone has none).  The exactness tests compare with
#: their sha256, pinned in tests/test_search.py, so they run everywhere instead of skipping.
SHARED = ROOT.parent / "shared" / "fixtures" / "fractaldb-1k-published"


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

    # the class parameters are the published FractalDB-1k categories, byte for byte (their digests)
    from test_search import PUBLISHED_SHA256

    for doc in manifest["categories"]:
        written = to_csv_bytes(IFS.from_rows(doc["rows"]))
        assert hashlib.sha256(written).hexdigest() == PUBLISHED_SHA256[doc["id"]]


def test_the_pinned_digests_are_the_published_files():
    """The sha256 every exactness test compares with are those of the published files, where
    the files lie beside the checkout (the project's machines and CI; a clone has none)."""
    from test_search import PUBLISHED_SHA256

    if not SHARED.is_dir():
        pytest.skip(f"the published files are not beside this checkout ({SHARED}); the digests are "
                    "checked where they are (CI)")
    files = sorted(SHARED.glob("*.csv"))
    assert [f.name for f in files] == [f"{i:05d}.csv" for i in range(25)]
    assert [hashlib.sha256(f.read_bytes()).hexdigest() for f in files] == PUBLISHED_SHA256


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


# --------------------------------------------------------------------------------------------
# 3-D OFDB trains on one random view of each category per epoch (the view sampler)
# --------------------------------------------------------------------------------------------

#: A 3-D cut with several instances and views: 3 categories x 2 instances x 4 views at 24 px.
VIEWS_3D = ["fractal3d.categories=3", "fractal3d.points=1500", "fractal3d.instances=2", "fractal3d.n_views=4",
            "fractal3d.image_size=24", "shard_size=7", "name=mv"]


@pytest.fixture(scope="module")
def multiview(tmp_path_factory):
    from fractaldb.dataset import generate

    out = tmp_path_factory.mktemp("mv") / "mv"
    generate(resolve("fractal3d-tiny", VIEWS_3D), str(out), workers=2)
    return out


def _meta_of(sample):
    meta = json.loads(sample["json"])
    return meta["category"], meta["instance"], meta["view"]


@pytest.mark.parametrize("per", ["class", "instance"])
def test_view_sampler_on_shards_keeps_one_view_per_group_and_epoch(multiview, per):
    """Every epoch keeps exactly one sample per class (per (class, instance)), the one the
    sampler drew -- a pure function of (seed, epoch, group), so every rank and worker agrees;
    over epochs every view is drawn."""
    import webdataset as wds

    from fractaldb.data import open_shards, shard_dataset
    from fractaldb.data.views import ViewSampler

    shards = open_shards(str(multiview))
    sampler = ViewSampler(shards.dataset, per, seed=5)
    stream = shard_dataset(shards, resampled=False, shuffle=0, seed=5, views=per)
    seen = set()
    for epoch in range(12):
        stream.set_epoch(epoch)
        raw = list(sampled_raw(stream))
        kept = [_meta_of(s) for s in raw]
        groups = [(k,) if per == "class" else (k, i) for k, i, _ in kept]
        assert sorted(groups) == sorted({g for g in groups}) and len(groups) == (3 if per == "class" else 6)
        for k, i, v in kept:
            assert sampler.offsets("fractal3d", k, i, epoch) == [v]
        assert len(list(stream)) == len(kept) == sampler.epoch_samples(shards.dataset.plan)
        seen |= set(kept)
    assert len({(k, v) for k, _, v in seen}) == 3 * 4  # every view of every class comes up
    every = list(wds.WebDataset(shards.urls, shardshuffle=False))
    assert len(every) == 3 * 2 * 4  # the shards hold all of them


def sampled_raw(stream):
    """The raw samples the view stage keeps in one pass (before decoding)."""
    from fractaldb.data.views import sampled

    return sampled(stream.source(), stream.views, stream.epoch.value, stream.on_error)


def test_view_sampler_on_the_fly_renders_the_same_view_as_the_shards_keep(multiview):
    """FractalStream renders only the drawn view; with the same seed it is the shard's image."""
    from fractaldb.data import FractalStream, open_shards, shard_dataset

    shards = open_shards(str(multiview))
    seed = shards.dataset.config["seed"]
    stream = FractalStream(dataset=shards.dataset, shuffle=1, views="class")
    reader = shard_dataset(shards, resampled=False, shuffle=0, seed=seed, views="class")
    for epoch in (0, 3):
        stream.set_epoch(epoch)
        reader.set_epoch(epoch)
        fly = {int(y): x for x, y in stream}
        stored = {int(y): x for x, y in reader}
        assert sorted(fly) == sorted(stored) == [0, 1, 2] and len(stream) == 3
        assert all(torch.equal(fly[k], stored[k]) for k in fly)


def test_view_sampler_errors_are_one_line(multiview, tmp_path):
    from fractaldb.data import FractalStream, open_shards, shard_dataset
    from fractaldb.errors import InputError

    shards = open_shards(str(multiview))
    with pytest.raises(ConfigError, match="needs the dataset's manifest"):
        shard_dataset(shards.urls, views="class")
    with pytest.raises(ConfigError, match="must be one of all, class, instance"):
        shard_dataset(shards, views="every")
    with pytest.raises(ConfigError, match="views of one object"):
        FractalStream("tiny", views="class")
    # a sample whose metadata names no sample of this dataset, or is not JSON: InputError naming it
    stream = shard_dataset(shards, resampled=False, shuffle=0, views="instance")
    for bad in (b"{not json", json.dumps({"family": "fractal3d", "category": 7, "instance": 0, "view": 0}).encode(),
                json.dumps({"family": "fractal3d", "category": 0, "instance": True, "view": 0}).encode(),
                json.dumps(["fractal3d"]).encode(), b"x" * 70000):
        with pytest.raises(InputError, match="sample k.*regenerate"):
            stream.views.keep({"__key__": "k", "__url__": "u.tar", "json": bad, "png": b""}, 0)
    # training on an ImageFolder cannot sample views: one line, exit 2
    folder = tmp_path / "folder"
    code, _, err = run_cli(["export", str(multiview), "--out", folder])
    assert code == 0, err
    code, _, err = run_cli(["pretrain", "--data", folder, "--view-sampling", "class", "--out", tmp_path / "run",
                            "--arch", "test_resnet", "--recipe", "cpu-sanity", "--epochs", "1", "--device", "cpu"])
    assert_one_line_error(code, err, "--view-sampling class needs", "use --view-sampling all")


def test_3d_ofdb_recipe_samples_one_view_per_category():
    from fractaldb.train.config import RECIPES, resolve_config

    cfg = resolve_config("pretrain", "3d-ofdb", {"data": "x"})
    assert cfg["view_sampling"] == "class" and RECIPES["3d-ofdb"]["pretrain"]["epochs"] == 80000
    assert resolve_config("pretrain", "3d-ofdb", {"data": "x", "view_sampling": "all"})["view_sampling"] == "all"
    assert resolve_config("pretrain", "deit-tiny", {"data": "x"})["view_sampling"] == "all"
    ofdb3d = resolve("3d-ofdb-1k")["fractal3d"]
    assert (ofdb3d["instances"], ofdb3d["n_views"], ofdb3d["views"]) == (1, 12, "mv")


@pytest.mark.slow
def test_pretrain_with_one_view_per_class(multiview, tmp_path):
    """A short run on 3-D shards with --view-sampling class: an epoch is one image per class."""
    code, out, err = run_cli(["pretrain", "--data", multiview, "--view-sampling", "class", "--out", tmp_path / "run",
                              "--arch", "test_resnet", "--recipe", "cpu-sanity", "--batch-size", "3",
                              "--image-size", "32", "--epochs", "2", "--device", "cpu"])
    assert code == 0, err
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["samples"] for r in log] == [3, 3]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["view_sampling"] == "class"
