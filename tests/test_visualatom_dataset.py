"""Each VisualAtom preset, cut to two classes (``generate --classes 2``), generates, verifies and
reads back in webdataset, wids and Hugging Face ``datasets``; the official cut of visualatom-1k
holds the published script's images (FDSL.md §2.6 digests)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import warnings
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from tinyset import run_cli

#: (preset, image side, samples of a --classes 2 cut)
PRESETS = [pytest.param("visualatom-tiny", 64, 24),
           pytest.param("visualatom-1k", 512, 2000, marks=pytest.mark.slow),
           pytest.param("visualatom-21k", 512, 2000, marks=pytest.mark.slow)]


def _members(ds, manifest) -> Counter:
    c = Counter()
    for s in manifest["shards"]:
        with tarfile.open(ds / s["name"]) as tar:
            for m in tar:
                if m.name.endswith(".cls"):
                    c[(m.name[:-4], int(tar.extractfile(m).read()))] += 1
    return c


def _readers(ds, manifest, size, tmp_path, monkeypatch, hf: bool):
    import webdataset as wds
    import wids

    urls = [str(ds / s["name"]) for s in manifest["shards"]]
    expected = _members(ds, manifest)
    got = Counter()
    for sample in wds.WebDataset(urls, shardshuffle=False):
        assert Image.open(io.BytesIO(sample["png"])).size == (size, size)
        got[(sample["__key__"], int(sample["cls"]))] += 1
    assert got == expected
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = wids.ShardListDataset(str(ds / "wids-index.json"), cache_dir=str(tmp_path / "cache"))
        assert Counter((w[i]["__key__"], int(w[i][".cls"])) for i in range(len(w))) == expected
    if not hf:
        return expected
    datasets = pytest.importorskip("datasets")
    for k in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.setenv(k, "1")
        monkeypatch.setattr(datasets.config, k, True, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    hf = datasets.load_dataset("webdataset", data_files={"train": urls}, split="train",
                               cache_dir=str(tmp_path / "hf-cache"))
    assert Counter((row["__key__"], int(row["cls"])) for row in hf) == expected
    return expected


@pytest.mark.parametrize("preset,size,samples", PRESETS)
def test_two_class_cut_generates_verifies_and_reads_back(preset, size, samples, tmp_path, monkeypatch):
    ds = tmp_path / "ds"
    workers = 1 if preset == "visualatom-tiny" else 2
    code, _, err = run_cli(["generate", "--preset", preset, "--classes", "2", "--out", ds, "--workers", workers])
    assert code == 0, err
    manifest = json.loads((ds / "manifest.json").read_text())
    assert manifest["plan"]["samples"] == samples
    assert run_cli(["verify", ds])[0] == 0
    # Hugging Face datasets takes ~10 s to start: the slow tier's cuts check it.
    expected = _readers(ds, manifest, size, tmp_path, monkeypatch, hf=preset != "visualatom-tiny")
    assert sorted({label for _, label in expected}) == [0, 1]
    if preset == "visualatom-1k":  # the published script's class 0, instances 0 and 1 (§2.6)
        want = {"va00000-i000000": "575156ca6934188f", "va00000-i000001": "6f1da4ebc77a694e"}
        for s in manifest["shards"]:
            with tarfile.open(ds / s["name"]) as tar:
                for m in tar:
                    key = m.name[:-4]
                    if m.name.endswith(".png") and key in want:
                        rgb = np.asarray(Image.open(tar.extractfile(m)).convert("RGB"))
                        assert hashlib.sha256(rgb.tobytes()).hexdigest()[:16] == want.pop(key)
        assert not want
