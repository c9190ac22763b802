"""Every command on every family: one test per registered family, plus a mixed
dataset of all of them, runs generate -> verify -> corrupt -> regenerate ->
export -> preview -> shard loader -> on-the-fly stream through the CLI and the
library, and the registry's own contract."""

from __future__ import annotations

import json

import pytest
import yaml
from PIL import Image

from fractaldb.errors import ConfigError
from fractaldb.families import create_renderer, get_family, list_families, register_family
from fractaldb.families.base import Family, settings_of
from tinyset import assert_one_line_error, run_cli

#: Small settings per family (seconds of work): each family's own ``small``.
SMALL = {name: get_family(name).small for name in list_families()}

def _mixes() -> list:
    """Every family alone, then all of them mixed -- a mask (segmentation) family mixes only with
    mask families, so those get a mix of their own."""
    masks = [n for n in list_families() if get_family(n).label_kind == "mask"]
    rest = [n for n in list_families() if n not in masks]
    return [[n] for n in list_families()] + [m for m in (rest, masks) if len(m) > 1]


CASES = _mixes()


def _preset(tmp_path, families) -> str:
    doc = {"name": "t", "seed": 3, "shard_size": 5, "families": families, **{f: SMALL[f] for f in families}}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_every_family_has_small_settings():
    for name in list_families():
        assert get_family(name).small, f"family {name} declares no small test settings"


@pytest.mark.parametrize("families", CASES, ids=lambda f: "+".join(f))
def test_every_command_on_every_family(families, tmp_path):
    preset = _preset(tmp_path, families)
    ds = tmp_path / "ds"
    code, out, err = run_cli(["generate", "--preset", preset, "--out", ds, "--workers", "2"])
    assert code == 0, err
    manifest = json.loads((ds / "manifest.json").read_text())
    assert [s["family"] for s in manifest["plan"]["segments"]] == families
    n_classes = manifest["plan"]["classes"]
    assert n_classes == sum(SMALL[f].get(get_family(f).count_key) for f in families)
    assert [c["label"] for c in manifest["categories"]] == list(range(n_classes))

    assert run_cli(["verify", ds])[0] == 0
    # corrupt one shard: verify names it, regenerate restores the very bytes
    shard = ds / manifest["shards"][-1]["name"]
    good = shard.read_bytes()
    shard.write_bytes(good[:-10] + b"x" * 10)
    code, _, err = run_cli(["verify", ds])
    assert code == 1 and manifest["shards"][-1]["name"] in err
    assert run_cli(["regenerate", ds, "--shard", len(manifest["shards"]) - 1])[0] == 0
    assert shard.read_bytes() == good
    assert run_cli(["verify", ds])[0] == 0

    # export: every image once, folders sorted in label order
    code, _, err = run_cli(["export", ds, "--out", tmp_path / "folder"])
    assert code == 0, err
    _check_export(ds, manifest, tmp_path / "folder")
    labels = _labels(ds, manifest)
    multi = _labels(ds, manifest, ext="labels.json")

    # preview of the dataset
    code, _, err = run_cli(["preview", ds, "--out", tmp_path / "sheet.png"])
    assert code == 0, err
    with Image.open(tmp_path / "sheet.png") as im:
        assert im.size[0] > 32

    # fractaldb report reads every family (tests/test_transfer.py checks its numbers on tiny)
    code, _, err = run_cli(["report", ds, "--out", tmp_path / "report"])
    assert code == 0, err
    rep = json.loads((tmp_path / "report" / "report.json").read_text())
    assert rep["read"]["images"] == manifest["plan"]["samples"] and sorted(rep["per_family"]) == sorted(families)

    # the shard loader and the on-the-fly stream give the same labels and shapes
    torch = pytest.importorskip("torch")
    from fractaldb.data import FractalStream, shard_loader, stream
    from fractaldb.dataset import Dataset

    loader = shard_loader(str(ds), batch_size=4, num_workers=0, epoch_size=8, resampled=False)
    images, batch_labels = next(iter(loader))
    assert images.dtype == torch.uint8 and images.shape[1:] == (3, 32, 32)
    masks = Dataset.from_manifest(manifest).label_kind.name == "mask"
    if multi:  # multi-hot vectors
        assert batch_labels.shape == (len(images), n_classes) and batch_labels.sum(1).min() >= 1
    elif masks:  # (image, mask) batches: label + 1 per pixel, 0 background
        assert batch_labels.shape == (len(images), 32, 32) and int(batch_labels.max()) <= n_classes
    else:
        assert set(batch_labels.tolist()) <= set(range(n_classes))
    dataset = Dataset.from_manifest(manifest)
    fs, where = stream(dataset, device="cpu", shuffle=4)
    assert where == "cpu"
    assert isinstance(fs, FractalStream)
    seen = [label for _, label in fs]
    assert len(seen) == manifest["plan"]["samples"]
    from collections import Counter
    if masks:  # the stream's masks are the stored ones
        stored = shard_loader(str(ds), batch_size=len(seen), num_workers=0, resampled=False, shuffle=0)
        assert sorted(int(m.sum()) for m in seen) == sorted(int(m.sum()) for b in stored for m in b[1])
    elif multi:
        assert Counter(tuple(torch.nonzero(y).flatten().tolist()) for y in seen) == \
            Counter(tuple(v) for v in multi.values())
    else:
        assert Counter(seen) == Counter(labels.values())


def test_set_addresses_family_sections(tmp_path):
    from fractaldb.config import resolve

    cfg = resolve("perlin-tiny", ["perlin.classes=3", "seed=5"])
    assert cfg["perlin"]["classes"] == 3 and cfg["seed"] == 5
    with pytest.raises(ConfigError, match="no fractal family"):
        resolve("perlin-tiny", ["fractal.categories=3"])
    with pytest.raises(ConfigError, match="belongs to the fractal family"):
        resolve("perlin-tiny", ["categories=3"])
    with pytest.raises(ConfigError, match="did you mean 'classes'"):
        resolve("perlin-tiny", ["perlin.clases=3"])
    code, _, err = run_cli(["generate", "--preset", "tiny", "--set", "perlin.classes=3", "--out", tmp_path / "x"])
    assert_one_line_error(code, err, "no perlin family")
    assert not (tmp_path / "x").exists()
    both = resolve("tiny", ["families=[fractal, perlin]", "perlin.classes=2"])
    assert both["families"] == ["fractal", "perlin"] and both["perlin"]["classes"] == 2


def test_every_section_key_has_a_default_help_and_allowed_values():
    for name in list_families():
        keys = settings_of(get_family(name).settings)
        assert get_family(name).count_key in keys
        for key, s in keys.items():
            assert s.help and s.allowed, f"{name}.{key}"


def test_registry_refuses_bad_families_and_suggests_names():
    with pytest.raises(ConfigError, match="did you mean 'perlin'"):
        get_family("perlim")
    with pytest.raises(ConfigError):
        register_family(object())
    with pytest.raises(ConfigError, match="already registered"):
        class Other(type(get_family("fractal"))):
            name = "perlin"
            small = {}
            purposes = {}
        register_family(Other())


def test_renderer_factory_one_protocol():
    for name in list_families():
        fam = get_family(name)
        cfg = fam.configure({**{k: s.default for k, s in settings_of(fam.settings).items()}, **SMALL[name]}, 1)
        r = create_renderer(name, cfg, "cpu")
        assert r.device == "cpu"
        for method in ("render_many", "render_many_device", "to_torch"):
            assert callable(getattr(r, method))
    with pytest.raises(ConfigError, match="unknown device"):
        create_renderer(list_families()[0], None, "tpu")


def test_first_classes_cuts_any_preset_in_label_order(tmp_path):
    from fractaldb.config import first_classes, resolve

    both = resolve("fractal+perlin")
    cut = first_classes(both, 1003)
    assert cut["families"] == ["fractal", "perlin"]
    assert cut["fractal"]["categories"] == 1000 and cut["perlin"]["classes"] == 3
    only = first_classes(both, 5)
    assert only["families"] == ["fractal"] and "perlin" not in only and only["fractal"]["categories"] == 5
    assert first_classes(resolve("perlin-tiny"), 2)["perlin"]["classes"] == 2
    with pytest.raises(ConfigError, match="positive integer"):
        first_classes(both, 0)
    # the same classes, labels and bytes as the full dataset's first classes
    code, _, err = run_cli(["generate", "--preset", "tiny", "--classes", "2", "--out", tmp_path / "two"])
    assert code == 0, err
    two = json.loads((tmp_path / "two" / "manifest.json").read_text())
    assert two["config"]["fractal"]["categories"] == 2 and two["plan"]["classes"] == 2
    assert [c["rows"] for c in two["categories"]] == [c["rows"] for c in _categories("tiny")][:2]


def _categories(preset):
    from fractaldb.config import resolve
    from fractaldb.dataset import Dataset

    return Dataset.from_config(resolve(preset)).categories_doc()


def _labels(ds, manifest, ext: str = "json") -> dict:
    """key -> label of every sample (from the shards' ``.json`` members), or with
    ``ext="labels.json"`` key -> the classes of a multi-label sample (empty for single-label data)."""
    import tarfile

    labels = {}
    for e in manifest["shards"]:
        with tarfile.open(ds / e["name"]) as tar:
            for m in tar:
                key, _, member = m.name.partition(".")  # WebDataset splits at the first dot
                if member == ext:
                    doc = json.loads(tar.extractfile(m).read())
                    labels[key] = doc["label"] if ext == "json" else doc
    return labels


def _check_export(ds, manifest, folder):
    """Every image exported once, into the folder ImageFolder numbers with the sample's label."""
    labels = _labels(ds, manifest)
    assert len(labels) == manifest["plan"]["samples"]
    if (folder / "masks").is_dir():  # a mask dataset: images/ and masks/ with the same paths, one per sample
        images = sorted(p.relative_to(folder / "images") for p in (folder / "images").rglob("*.png"))
        assert len(images) == len(labels)
        assert images == sorted(p.relative_to(folder / "masks") for p in (folder / "masks").rglob("*.png"))
        return
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    assert len(classes) == manifest["plan"]["classes"]
    index = json.loads((folder / "classes.json").read_text())
    assert sorted(index) == classes
    assert [index[c] for c in classes] == list(range(len(classes)))  # ImageFolder's numbering is ours
    per_label = {}
    for label in labels.values():
        per_label[label] = per_label.get(label, 0) + 1
    for c in classes:
        assert len([p for p in (folder / c).iterdir() if p.is_file()]) == per_label[index[c]]


def test_export_keeps_label_order_whatever_the_family_order(tmp_path):
    """families [perlin, fractal]: the Perlin folders would sort after the fractal ones; export prefixes labels."""
    preset = _preset(tmp_path, ["perlin", "fractal"])
    ds = tmp_path / "ds"
    assert run_cli(["generate", "--preset", preset, "--out", ds, "--workers", "1"])[0] == 0
    manifest = json.loads((ds / "manifest.json").read_text())
    assert run_cli(["export", ds, "--out", tmp_path / "f"])[0] == 0
    _check_export(ds, manifest, tmp_path / "f")
    assert sorted(p.name for p in (tmp_path / "f").iterdir() if p.is_dir())[0] == "000000-perlin-00000"


def test_cuda_refused_up_front_for_a_cpu_only_family(tmp_path, monkeypatch):
    """On a GPU machine too: a family without a GPU twin fails before any work, in one line."""
    import fractaldb.dataset as D
    from fractaldb.config import resolve

    monkeypatch.setattr(D, "check_device", lambda device, locally=True: None)  # as if a GPU were there
    cpu_only = [n for n in list_families() if get_family(n).cuda_renderer is None]
    assert cpu_only, "every family has a GPU twin: drop this test"
    cfg = resolve({"families": [cpu_only[0]], cpu_only[0]: SMALL[cpu_only[0]]})
    with pytest.raises(ConfigError, match=f"the {cpu_only[0]} family renders on the CPU only"):
        D.generate(cfg, str(tmp_path / "x"), device="cuda")
    assert not (tmp_path / "x").exists()
