"""Multi-label shards (the ``multifractal`` family): the ``<key>.labels.json``
member read by webdataset, wids and Hugging Face ``datasets``; the loaders'
multi-hot vectors (shard loader and on-the-fly stream agree); a mixed dataset
gives every sample the member; single-label datasets get none."""

from __future__ import annotations

import io
import json
import tarfile
import warnings

import pytest
import yaml
from PIL import Image

from fractaldb.config import resolve
from fractaldb.dataset import generate
from tinyset import load_webdataset_offline

SECTION = {"classes": 6, "instances": 3, "image_size": 32, "render_size": 16, "points": 2000,
           "renders_per_class": 2}


def _tar_labels(ds, manifest) -> dict:
    """``{key: (cls, labels)}`` read with tarfile."""
    out, cls = {}, {}
    for e in manifest["shards"]:
        with tarfile.open(ds / e["name"]) as tar:
            for m in tar:
                key, _, ext = m.name.partition(".")
                data = tar.extractfile(m).read()
                if ext == "cls":
                    cls[key] = int(data)
                elif ext == "labels.json":
                    out[key] = json.loads(data)
    return {k: (cls[k], out.get(k)) for k in cls}


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    root = tmp_path_factory.mktemp("multi")
    path = root / "m.yaml"
    path.write_text(yaml.safe_dump({"name": "m", "seed": 2, "shard_size": 7, "families": ["multifractal"],
                                    "multifractal": SECTION}))
    ds = root / "ds"
    manifest = generate(resolve(str(path)), str(ds), workers=2)
    return ds, manifest, _tar_labels(ds, manifest)


def test_members_and_primary_label(multi):
    ds, manifest, labels = multi
    assert len(labels) == 18
    for key, (cls, ls) in labels.items():
        assert cls in ls and ls == sorted(set(ls)) and all(0 <= x < 6 for x in ls)
    assert any(len(ls) > 1 for _, ls in labels.values())


def test_webdataset_reads_the_labels(multi):
    import webdataset as wds

    ds, manifest, labels = multi
    urls = [str(ds / e["name"]) for e in manifest["shards"]]
    got = {}
    for s in wds.WebDataset(urls, shardshuffle=False).decode("pil"):
        assert isinstance(s["png"], Image.Image)  # colour families store PNG by default
        got[s["__key__"]] = (s["cls"], s["labels.json"])
    assert got == labels


def test_wids_reads_the_labels(multi, tmp_path):
    import wids

    ds, manifest, labels = multi
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = wids.ShardListDataset(str(ds / "wids-index.json"), cache_dir=str(tmp_path / "cache"))
        got = {}
        for i in range(len(d)):
            s = d[i]
            raw = s[".labels.json"]
            ls = json.loads(raw) if isinstance(raw, (bytes, str)) else raw
            got[s["__key__"]] = (int(s[".cls"]), ls)
    assert got == labels


def test_huggingface_datasets_reads_the_labels(multi, tmp_path, monkeypatch):
    ds, manifest, labels = multi
    hf = load_webdataset_offline([ds / e["name"] for e in manifest["shards"]], tmp_path, monkeypatch)
    assert "labels.json" in hf.column_names
    got = {row["__key__"]: (int(row["cls"]), list(row["labels.json"])) for row in hf}
    assert got == labels


def test_loaders_yield_multi_hot(multi):
    torch = pytest.importorskip("torch")
    from fractaldb.data import FractalStream, multi_label_classes, shard_dataset
    from fractaldb.dataset import Dataset

    ds, manifest, labels = multi
    assert multi_label_classes(str(ds)) == 6
    want = sorted(tuple(ls) for _, ls in labels.values())
    seen = []
    for img, y in shard_dataset(str(ds), resampled=False, shuffle=0):
        assert img.shape == (3, 32, 32) and y.dtype == torch.float32 and y.shape == (6,)
        seen.append(tuple(torch.nonzero(y).flatten().tolist()))
    assert sorted(seen) == want
    # shard URLs have no manifest: num_classes asks for multi-hot
    urls = [str(ds / e["name"]) for e in manifest["shards"]]
    first = next(iter(shard_dataset(urls, resampled=False, shuffle=0, num_classes=6)))
    assert first[1].shape == (6,)
    plain = next(iter(shard_dataset(urls, resampled=False, shuffle=0)))
    assert isinstance(plain[1], int)
    # the on-the-fly stream: the same label vectors
    fs = FractalStream(dataset=Dataset.from_manifest(manifest), shuffle=1)
    assert sorted(tuple(torch.nonzero(y).flatten().tolist()) for _, y in fs) == want


def test_mixed_dataset_gives_every_sample_labels(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({
        "name": "mix", "seed": 2, "shard_size": 8, "families": ["colorfractal", "multifractal"],
        "colorfractal": {"classes": 2, "instances": 2, "image_size": 32, "points": 2000},
        "multifractal": {**SECTION, "classes": 3, "instances": 2}}))
    manifest = generate(resolve(str(path)), str(tmp_path / "ds"), workers=1)
    labels = _tar_labels(tmp_path / "ds", manifest)
    assert len(labels) == 10
    for key, (cls, ls) in labels.items():
        if key.startswith("cf"):
            assert ls == [cls] and cls in (0, 1)
        else:
            assert cls in ls and all(2 <= x < 5 for x in ls)


def test_single_label_datasets_have_no_labels_member(tmp_path):
    manifest = generate(resolve("color-fractal-tiny", ["colorfractal.classes=2", "colorfractal.instances=2"]),
                        str(tmp_path / "ds"), workers=1)
    labels = _tar_labels(tmp_path / "ds", manifest)
    assert labels and all(ls is None for _, ls in labels.values())


def test_same_bytes_for_any_worker_count(tmp_path):
    """Per-thread render caches change speed only: 1 and 2 workers write the same shards."""
    sets = ["multifractal.classes=4", "multifractal.instances=3", "shard_size=5"]
    one = generate(resolve("multi-fractal-tiny", sets), str(tmp_path / "one"), workers=1)
    two = generate(resolve("multi-fractal-tiny", sets), str(tmp_path / "two"), workers=2)
    assert [e["sha256"] for e in one["shards"]] == [e["sha256"] for e in two["shards"]]
