"""Perlin datasets end to end: generate, verify, regenerate, preview, stream, mixed families.

The acceptance check of the Perlin family: ``generate --preset perlin-tiny``
gives shards whose classes a simple classifier separates on held-out
instances far above chance, identical across runs and worker counts.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections import defaultdict

import numpy as np
import pytest
from PIL import Image
from tinyset import assert_one_line_error, run_cli, snapshot

PERLIN_TINY = {"classes": 10, "instances": 12, "samples": 120, "shards": 3}


@pytest.fixture(scope="module")
def perlin_tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("perlin") / "p"
    code, _, err = run_cli(["generate", "--preset", "perlin-tiny", "--out", out])
    assert code == 0, err
    return out


def _samples(folder):
    """``[(label, instance, image)]`` read back from every shard."""
    manifest = json.loads((folder / "manifest.json").read_text())
    out = []
    for entry in manifest["shards"]:
        members = {}
        with tarfile.open(folder / entry["name"]) as tar:
            for m in tar:
                key, _, ext = m.name.partition(".")
                members.setdefault(key, {})[ext] = tar.extractfile(m).read()
        for key, parts in members.items():
            meta = json.loads(parts["json"])
            img = np.asarray(Image.open(io.BytesIO(parts["jpg"])).convert("RGB"), dtype=np.float64)
            assert int(parts["cls"]) == meta["label"]
            out.append((meta["label"], meta["instance"], img))
    return out


def _features(img):
    """Radial power spectrum (log, 12 bands) of the luminance, plus the mean colour."""
    gray = img.mean(axis=2)
    f = np.abs(np.fft.fftshift(np.fft.fft2(gray - gray.mean()))) ** 2
    h, w = gray.shape
    yy, xx = np.indices((h, w))
    r = np.hypot(yy - h // 2, xx - w // 2)
    bands = np.linspace(1, min(h, w) // 2, 13)
    spectrum = [np.log(f[(r >= lo) & (r < hi)].mean() + 1e-9) for lo, hi in zip(bands[:-1], bands[1:])]
    return np.concatenate([np.array(spectrum) / 10.0, img.reshape(-1, 3).mean(axis=0) / 64.0])


def test_perlin_tiny_layout_and_manifest(perlin_tiny):
    manifest = json.loads((perlin_tiny / "manifest.json").read_text())
    assert manifest["plan"]["samples"] == PERLIN_TINY["samples"]
    assert manifest["plan"]["shards"] == PERLIN_TINY["shards"]
    assert [(g["family"], g["classes"]) for g in manifest["plan"]["segments"]] == [("perlin", PERLIN_TINY["classes"])]
    fams = {c["family"] for c in manifest["categories"]}
    assert fams == {"perlin"}
    for c in manifest["categories"]:
        assert set(c["params"]) >= {"frequency", "octaves", "persistence", "lacunarity", "palette"}
    samples = _samples(perlin_tiny)
    assert sorted((lab, i) for lab, i, _ in samples) == \
        [(lab, i) for lab in range(PERLIN_TINY["classes"]) for i in range(PERLIN_TINY["instances"])]


def test_classes_are_separable_on_held_out_instances(perlin_tiny):
    """Nearest centroid on a cheap spectral feature, trained on 8 instances, tested on 4."""
    by_class = defaultdict(list)
    for label, instance, img in _samples(perlin_tiny):
        by_class[label].append((instance, _features(img)))
    centroids, tests = {}, []
    for label, items in by_class.items():
        items.sort(key=lambda t: t[0])
        centroids[label] = np.mean([f for i, f in items if i < 8], axis=0)
        tests += [(label, f) for i, f in items if i >= 8]
    labels = sorted(centroids)
    correct = sum(label == labels[int(np.argmin([np.linalg.norm(f - centroids[c]) for c in labels]))]
                  for label, f in tests)
    accuracy = correct / len(tests)
    assert accuracy >= 0.7, f"held-out accuracy {accuracy:.2f} (chance {1 / len(labels):.2f})"


def test_same_bytes_across_runs_and_workers(perlin_tiny, tmp_path):
    for i, extra in enumerate((["--workers", "1"], ["--workers", "2"])):
        out = tmp_path / f"run{i}"
        code, _, err = run_cli(["generate", "--preset", "perlin-tiny", "--out", out, *extra])
        assert code == 0, err
        assert snapshot(out) == snapshot(perlin_tiny)


def test_verify_regenerate_preview(perlin_tiny, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(perlin_tiny, copy)
    shard = copy / "perlin-tiny-000001.tar"
    good = shard.read_bytes()
    shard.write_bytes(good[:-10] + b"x" * 10)
    code, _, err = run_cli(["verify", copy])
    assert code == 1 and "perlin-tiny-000001.tar" in err
    code, _, err = run_cli(["regenerate", copy, "--shard", "1"])
    assert code == 0, err
    assert shard.read_bytes() == good
    for argv in (["preview", copy], ["preview", "--preset", "perlin-tiny", "--per-category", "3"]):
        sheet = tmp_path / "sheet.png"
        code, _, err = run_cli([*argv, "--out", sheet])
        assert code == 0, err
        with Image.open(sheet) as im:
            assert im.size[0] > 64 and im.size[1] > 64


def test_mixed_families_do_not_collide(tmp_path):
    out = tmp_path / "mixed"
    code, _, err = run_cli(["generate", "--preset", "fractal+perlin", "--out", out,
                            "--set", "categories=3", "--set", "perlin_classes=3", "--set", "perlin_instances=8",
                            "--set", "image_size=48", "--set", "points=3000", "--set", "patches=2",
                            "--set", "weights=none", "--set", "shard_size=10"])
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    cats = manifest["categories"]
    assert [(c["label"], c["family"]) for c in cats] == \
        [(0, "fractal"), (1, "fractal"), (2, "fractal"), (3, "perlin"), (4, "perlin"), (5, "perlin")]
    assert all("rows" in c for c in cats[:3]) and all("params" in c for c in cats[3:])
    seen = defaultdict(set)
    n = 0
    for entry in manifest["shards"]:
        with tarfile.open(out / entry["name"]) as tar:
            for m in tar:
                if m.name.endswith(".json"):
                    meta = json.loads(tar.extractfile(m).read())
                    seen[meta["family"]].add(meta["label"])
                    n += 1
    assert seen == {"fractal": {0, 1, 2}, "perlin": {3, 4, 5}}
    assert n == manifest["plan"]["samples"] == 3 * 1 * 2 * 4 + 3 * 8


def test_on_the_fly_stream_renders_every_instance_once(perlin_tiny):
    torch = pytest.importorskip("torch")
    from fractaldb.data import FractalStream, to_tensor
    from fractaldb.families.perlin.model import PerlinRenderer, instance_key

    stream = FractalStream("perlin-tiny", shuffle=0)
    assert stream.num_classes == PERLIN_TINY["classes"]
    got = sorted((int(y), x.numpy().tobytes()) for x, y in torch.utils.data.DataLoader(stream, batch_size=None))
    ds = stream.dataset
    part = ds.part("perlin")
    renderer = PerlinRenderer(part.settings.render_config())
    want = []
    for j, pc in enumerate(part.classes):
        for i in range(PERLIN_TINY["instances"]):
            img = renderer.render(pc, instance_key(ds.config["seed"], j, i))
            img = img[:, :, 0] if img.shape[2] == 1 else img
            want.append((j, to_tensor(Image.fromarray(img)).numpy().tobytes()))
    assert got == sorted(want)
    # The shards hold the same classes (as JPEG): labels and counts agree.
    assert sorted(g[0] for g in got) == sorted(lab for lab, _, _ in _samples(perlin_tiny))


@pytest.mark.parametrize("override, fragment", [
    ("perlin_octaves=[0, 3]", "perlin.octaves in --set must be [low, high] integers with 1 <= low <= high"),
    ("perlin_persistence=[0.5, 1.5]", "perlin.persistence in --set must be [low, high] with 0 < low <= high <= 1"),
    ("perlin_persistence=[0.0, 0.5]", "perlin.persistence in --set must be [low, high] with 0 < low <= high <= 1"),
    ("perlin_frequency=[8, 2]", "perlin.frequency in --set must be [low, high] with 0 < low <= high"),
    ("perlin_lacunarity=[1.0, 2.0]", "perlin.lacunarity in --set must be [low, high] with 1 < low <= high"),
    ("perlin_classes=0", "perlin.classes in --set must be an integer > 0"),
    ("perlin_palettes=rainbow", "rainbow"),
])
def test_bad_perlin_settings(tmp_path, override, fragment):
    out = tmp_path / "x"
    code, _, err = run_cli(["generate", "--preset", "perlin-tiny", "--out", out, "--set", override])
    assert_one_line_error(code, err, fragment)
    assert not out.exists()


@pytest.mark.slow
def test_impossible_class_count_is_a_one_line_error(tmp_path):
    out = tmp_path / "x"
    code, _, err = run_cli(["generate", "--preset", "perlin-tiny", "--out", out,
                            "--set", "perlin_classes=3", "--set", "perlin_min_distance=1000",
                            "--set", "perlin_palettes=gray"])  # 600 candidates, one class: 3 CPU-s, not 8000 and 20
    assert_one_line_error(code, err, "cannot find 3 Perlin classes", "(found 1 after 600 candidates)",
                          "lower min_distance")
    assert not out.exists()


def test_perlin_frequency_above_the_cap_is_a_one_line_error(tmp_path):
    from tinyset import assert_one_line_error, run_cli

    code, _, err = run_cli(["generate", "--preset", "perlin-tiny", "--set", "perlin_tileable=true",
                            "--set", "perlin_frequency=[4, 100000000000000000000]", "--out", tmp_path / "o"])
    assert_one_line_error(code, err, "error: perlin.frequency in --set must be [low, high] with 0 < low <= high <= 65536")
    assert not (tmp_path / "o").exists()
