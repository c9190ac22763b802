"""Dataset cards: every ``generate`` output carries a Hugging Face dataset card.

``datasets.load_dataset(DIR)`` (the real library, offline) must yield the images
with named labels from the card's header alone; the card and its contact sheet
are the same bytes for the same config and seed; ``verify`` ignores the
(derived, editable) card; the command the card quotes resolves to the config.
"""

from __future__ import annotations

import json
import shlex
import shutil

import numpy as np
import pytest
import yaml
from PIL import Image

from fractaldb.card import card_text, citations, class_names, reproduce_command
from fractaldb.config import first_classes, parse_override, resolve
from fractaldb.dataset import generate, verify
from tinyset import tiny_dataset


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_dataset(tmp_path_factory)


def _header(path) -> dict:
    text = path.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_card_header_is_a_hub_dataset_card(tiny):
    manifest = json.loads((tiny / "manifest.json").read_text())
    head = _header(tiny / "README.md")
    assert head["license"] == "mit"
    assert head["task_categories"] == ["image-classification"]
    assert head["size_categories"] == ["n<1K"]
    assert head["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "tiny-*.tar"}]}]
    feats = {f["name"]: f for f in head["dataset_info"]["features"]}
    assert feats["png"]["dtype"] == "image"
    names = feats["cls"]["dtype"]["class_label"]["names"]
    assert [names[str(i)] for i in range(4)] == class_names(manifest)
    assert class_names(manifest) == [f"fractal-{c['id']:05d}" for c in manifest["categories"]]
    assert head["dataset_info"]["splits"][0]["num_examples"] == 48
    body = (tiny / "README.md").read_text()
    for must in ("fractaldb generate --preset tiny --out DIR", "Seed **1**", "fractaldb verify",
                 "--from-manifest", "load_dataset(", "webdataset", "wids", "timm", "ImageFolder",
                 "Pre-training without Natural Images", "International Journal of Computer Vision",
                 "contact-sheet.png"):
        assert must in body, must


def test_datasets_load_dataset_yields_images_with_named_labels(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    folder = tmp_path / "tiny"
    shutil.copytree(tiny, folder)
    ds = datasets.load_dataset(str(folder), split="train", cache_dir=str(tmp_path / "cache"))
    assert len(ds) == 48
    assert isinstance(ds.features["cls"], datasets.ClassLabel)
    manifest = json.loads((tiny / "manifest.json").read_text())
    assert ds.features["cls"].names == class_names(manifest)
    # each image and label is the shard's: compare with the tar members themselves
    import tarfile
    truth = {}
    for e in manifest["shards"]:
        with tarfile.open(tiny / e["name"]) as tar:
            files = {m.name: tar.extractfile(m).read() for m in tar}
        for name, data in files.items():
            key, _, ext = name.partition(".")
            if ext == "cls":
                truth[int(data)] = truth.get(int(data), 0) + 1
    assert sorted(truth) == [0, 1, 2, 3]
    counts = {}
    for row in ds:
        counts[row["cls"]] = counts.get(row["cls"], 0) + 1
        assert row["png"].size == (64, 64)
    assert counts == truth


def test_card_and_sheet_are_deterministic_and_verify_ignores_an_edited_card(tiny, tmp_path):
    out = tmp_path / "again"
    generate(resolve("tiny"), str(out), workers=1)
    for name in ("README.md", "contact-sheet.png", "manifest.json"):
        assert (out / name).read_bytes() == (tiny / name).read_bytes(), name
    sheet = np.array(Image.open(out / "contact-sheet.png"))
    assert sheet.shape == (4 * 66 + 2, 4 * 66 + 2, 3)  # 4 classes x 4 images of 64x64, 2-pixel gaps
    (out / "README.md").write_text((out / "README.md").read_text() + "\nedited by the publisher\n")
    assert verify(str(out)) == []


@pytest.mark.parametrize("preset,sets,classes", [
    ("tiny", [], None),
    ("tiny", ["seed=3", "fractal.categories=2"], None),
    ("fractal+perlin", [], 3),
    ("fractaldb-1k", ["families=[fractal, perlin]", "fractal.weights=none"], None),
])
def test_the_cards_command_resolves_to_the_config(preset, sets, classes):
    cfg = resolve(preset, sets)
    if classes:
        cfg = first_classes(cfg, classes)
    command = reproduce_command(cfg)
    words = shlex.split(command)
    assert words[:4] == ["fractaldb", "generate", "--preset", preset] and words[-2:] == ["--out", "DIR"]
    again = resolve(preset, [parse_override(w) for w in words[5:-2:2]])
    assert again == cfg
    assert words[4:-2:2] == ["--set"] * len(words[5:-2:2])


def test_a_config_of_ones_own_shows_the_config_instead():
    cfg = resolve("tiny")
    cfg["name"] = "mine"
    assert reproduce_command(cfg) is None


def test_every_family_cites_its_papers():
    from fractaldb.families import list_families

    for family in list_families():
        assert citations([family]), family  # every built-in family names its papers
    manifest = {"name": "x", "config": {**resolve("perlin-tiny")}, "plan": {"samples": 10, "classes": 1},
                "categories": [{"label": 0, "family": "perlin", "class": 0}],
                "shards": [{"name": "x-000000.tar", "bytes": 10, "samples": 10}], "versions": {}}
    text = card_text(manifest)
    assert "Initialization Using Perlin Noise" in text and "ICPR" in text


def test_a_card_for_a_dataset_made_before_cards(tmp_path, monkeypatch):
    """``fractaldb index DIR --for hf`` writes the card of a fractaldb 0.1 dataset (flat config,
    fractal and Perlin classes), which then loads with its class names."""
    from pathlib import Path

    from tinyset import run_cli

    src = Path(__file__).parent / "data" / "v0.1.0.dev0" / "mixed"
    folder = tmp_path / "mixed"
    shutil.copytree(src, folder)
    code, out, err = run_cli(["index", folder, "--for", "hf"])
    assert code == 0, err
    head = _header(folder / "README.md")
    names = head["dataset_info"]["features"][-1]["dtype"]["class_label"]["names"]
    assert list(names.values()) == ["fractal-00000", "fractal-00001", "perlin-00000", "perlin-00001", "perlin-00002"]
    text = (folder / "README.md").read_text()
    assert "Initialization Using Perlin Noise" in text and "perlin:" in text  # sectioned config shown
    assert verify(str(folder)) == []
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    ds = datasets.load_dataset(str(folder), split="train", cache_dir=str(tmp_path / "cache"))
    assert len(ds) == 23 and ds.features["cls"].names == list(names.values())


@pytest.mark.slow
def test_the_cards_load_examples_run(tiny, tmp_path):
    """The card's python block, pointed at the folder, runs (Hugging Face, webdataset, wids,
    fractaldb's loader) in a fresh interpreter, offline."""
    import os
    import re
    import subprocess
    import sys

    block = re.search(r"^```python\n(.*?)^```", (tiny / "README.md").read_text(), flags=re.S | re.M).group(1)
    code = block.replace("path/to/tiny", str(tiny)) + (
        "\nassert len(ds) == 48\n"
        "image, label = next(iter(it))\nassert image.size == (64, 64) and 0 <= label < 4\n"
        "assert next(iter(loader))[0].shape == (256, 3, 64, 64)\n")
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_the_sheet_shows_what_a_class_holds_not_the_flips_of_one_draw(tiny):
    """Issue 28: the row of a class is spread over it -- the first image of blocks far apart
    (different weight draws or instances), or images far apart in fewer blocks -- never the
    four flips of one draw."""
    from fractaldb.card import sheet_picks

    assert sheet_picks(100, 4) == [(0, 0), (25, 0), (50, 0), (75, 0)]
    assert sheet_picks(4, 4) == [(0, 0), (1, 0), (2, 0), (3, 0)]
    assert sheet_picks(1, 12) == [(0, 0), (0, 3), (0, 6), (0, 9)]
    assert sheet_picks(2, 3) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert sheet_picks(1, 2) == [(0, 0), (0, 1)]  # all a class of 2 images holds
    # tiny: one block of 3 patch draws x 4 flips per class; the row shows all 3 draws
    sheet = np.array(Image.open(tiny / "contact-sheet.png").convert("L"))
    row = [sheet[2:66, 2 + 66 * i:66 + 66 * i] for i in range(4)]

    def same_draw(a, b):
        return any(np.array_equal(a, f) for f in (b, b[::-1], b[:, ::-1], b[::-1, ::-1], b.T, b.T[::-1]))

    distinct = []
    for img in row:
        if not any(same_draw(img, d) for d in distinct):
            distinct.append(img)
    assert len(distinct) == 3
