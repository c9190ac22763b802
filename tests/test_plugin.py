"""A family from outside the package, registered the way a third-party package does it.

``tests/plugin/`` holds a distribution (``stripes_family-0.1.dist-info`` with a
``fractaldb.families`` entry point) and its package: a segmentation family
(label kind ``mask``).  With that folder on ``PYTHONPATH`` -- and no file of
fractaldb touched -- every command works on it: generate -> verify -> export ->
preview -> index -> report, the shard loader and the on-the-fly stream, and its
transfer-study arm joins the study.  The test process itself never sees it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from PIL import Image

from tinyset import ROOT, assert_one_line_error, cli_command

PLUGIN = ROOT / "tests" / "plugin"


def _env() -> dict:
    path = os.pathsep.join(p for p in (str(PLUGIN), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


def _run(argv, timeout=300):
    return subprocess.run(cli_command(argv), capture_output=True, text=True, env=_env(), timeout=timeout)


def _python(code: str, timeout=300) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _preset(tmp_path, families=("stripes",)) -> str:
    doc = {"name": "stripes", "seed": 4, "shard_size": 4, "families": list(families),
           "stripes": {"classes": 3, "instances": 2, "image_size": 24}}
    path = tmp_path / "stripes.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_the_test_process_does_not_see_the_plugin():
    from fractaldb.families import list_families

    assert "stripes" not in list_families()


@pytest.mark.slow
def test_every_command_on_an_out_of_tree_segmentation_family(tmp_path):
    ds = tmp_path / "ds"
    done = _run(["generate", "--preset", _preset(tmp_path), "--out", ds])
    assert done.returncode == 0, done.stderr
    manifest = json.loads((ds / "manifest.json").read_text())
    assert manifest["plan"]["classes"] == 3 and manifest["plan"]["samples"] == 6
    assert _run(["verify", ds]).returncode == 0
    # every sample: .cls, .json, .mask.png, then the image
    import tarfile

    with tarfile.open(ds / manifest["shards"][0]["name"]) as tar:
        names = tar.getnames()
    assert [n.partition(".")[2] for n in names[:4]] == ["cls", "json", "mask.png", "png"]

    # export: images/ and masks/ with the same relative paths
    assert _run(["export", ds, "--out", tmp_path / "f"]).returncode == 0
    images = sorted(p.relative_to(tmp_path / "f" / "images") for p in (tmp_path / "f" / "images").rglob("*.png"))
    masks = sorted(p.relative_to(tmp_path / "f" / "masks") for p in (tmp_path / "f" / "masks").rglob("*.png"))
    assert len(images) == 6 and images == masks
    with Image.open(tmp_path / "f" / "masks" / masks[0]) as m:
        assert m.mode == "L" and m.size == (24, 24)

    # preview (masks painted over), the card, an index, the report
    assert _run(["preview", ds, "--out", tmp_path / "sheet.png"]).returncode == 0
    card = (ds / "README.md").read_text()
    assert "mask.png" in card and "image-segmentation" in card and "striped rectangles" in card
    assert _run(["index", ds, "--for", "dali"]).returncode == 0
    done = _run(["report", ds, "--out", tmp_path / "report"])
    assert done.returncode == 0, done.stderr

    # loaders: (image, mask) batches from the shards and from the on-the-fly stream, the same masks
    out = _python(f"""
import torch
from fractaldb.data import FractalStream, shard_loader
from fractaldb.dataset import Dataset
import json
loader = shard_loader({str(ds)!r}, batch_size=3, num_workers=0, resampled=False, shuffle=0)
images, masks = next(iter(loader))
assert images.shape == (3, 3, 24, 24) and masks.shape == (3, 24, 24) and masks.dtype == torch.uint8
assert int(masks.max()) <= 3 and int(masks.max()) >= 1
ds = Dataset.from_manifest(json.load(open({str(ds / 'manifest.json')!r})))
stream = FractalStream(dataset=ds, shuffle=1)
pairs = list(stream)
assert len(pairs) == 6 and all(m.shape == (24, 24) for _, m in pairs)
print(sorted(int(m.sum()) for _, m in pairs) == sorted(int(m.sum()) for batch in shard_loader({str(ds)!r},
      batch_size=6, num_workers=0, resampled=False, shuffle=0) for m in batch[1]))
""")
    assert out.strip() == "True"


def test_the_plugin_is_listed_and_its_arm_joins_the_study():
    out = _python("""
from fractaldb.families import get_family, list_families
from fractaldb.seeds import PURPOSES, derived_code
from fractaldb.experiments import ARMS
assert "stripes" in list_families()
family = get_family("stripes")
assert family.purposes == {n: derived_code("stripes", n) for n in ("stripes-classes", "stripes-instance")}
assert all(PURPOSES[n] >= 2**31 for n in family.purposes)
assert "stripes" in ARMS
print("ok")
""")
    assert out.strip() == "ok"


def test_a_mask_family_does_not_mix_with_class_families(tmp_path):
    done = _run(["generate", "--preset", _preset(tmp_path, ("stripes", "perlin")), "--out", tmp_path / "x",
                 "--set", "perlin.classes=2", "--set", "perlin.instances=2", "--set", "perlin.min_distance=0"])
    assert_one_line_error(done.returncode, done.stderr, "cannot mix in families without masks")
    assert not (tmp_path / "x").exists()
