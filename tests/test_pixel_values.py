"""Every documented reader decodes a new dataset to its rendered pixels, with no ``convert``.

The reference is the renderer itself: each sample of the dataset rendered again
from its manifest (:func:`rendered`), not decoded from the shards.  The default
encoder (``png3``) stores gray datasets as 8-bit ``L`` PNGs (gray levels, not
palette indices) and a dataset with colour in one mode (gray images as RGB).
timm, Energon and DALI skip where they are not installed.
"""

from __future__ import annotations

import io
import json
import tarfile
import warnings

import numpy as np
import pytest
from PIL import Image

from tinyset import TINY_SAMPLES, TINY_SHARDS, copy_tiny, load_webdataset_offline, run_cli


def rendered(folder) -> dict:
    """``{sample key: uint8 image as the dataset stores it}``, rendered again from the manifest:
    every (class, block, offset) of every family, gray images spread to RGB in a dataset
    whose image mode is colour (what ``png3`` promises)."""
    from fractaldb.dataset import Dataset
    from fractaldb.shards import dataset_channels

    manifest = json.loads((folder / "manifest.json").read_text())
    ds = Dataset.from_manifest(manifest)
    channels = dataset_channels(ds)
    out = {}
    for name, part in ds.parts.items():
        renderer = ds.renderers("cpu")[name]
        for k in range(part.n_classes):
            for b in range(part.blocks_per_class):
                offsets = list(range(part.images_per_block))
                for rb in part.render_blocks(renderer, [(k, b, offsets)]):
                    for o, img in zip(rb.offsets, rb.images):
                        img = np.asarray(img)
                        if img.ndim == 3 and img.shape[2] == 1:
                            img = img[:, :, 0]
                        if channels == 3 and img.ndim == 2:
                            img = np.repeat(img[:, :, None], 3, axis=2)
                        out[part.sample_key(k, b, o)] = img.copy()
    return out


@pytest.fixture(scope="module")
def pixels(tiny):
    got = rendered(tiny)
    assert len(got) == TINY_SAMPLES
    assert {int(v) for img in got.values() for v in np.unique(img)} - {0} , "a blank dataset proves nothing"
    return got


@pytest.fixture(scope="module")
def mixed_modes(tmp_path_factory):
    """A Perlin dataset with a gray and a colour class, stored as PNG (exact) -- and its pixels."""
    out = tmp_path_factory.mktemp("modes") / "modes"
    code, _, err = run_cli(["generate", "--preset", "perlin-tiny", "--out", out, "--set", "perlin.classes=2",
                            "--set", "perlin.instances=2", "--set", "perlin.image_size=32", "--set",
                            "perlin.palettes=gray,viridis", "--set", "perlin.min_distance=0", "--set",
                            "perlin.image_format=png", "--set", "name=modes"])
    assert code == 0, err
    return out, rendered(out)


def _equal(img, want, chw: bool = False):
    """The reader's pixels are the rendered ones: the same levels, in the reader's layout
    (``chw``: a tensor reader's channels first; a reader that always hands RGB gives a gray
    image's level in each channel, which is the same value)."""
    arr = np.asarray(img)
    if chw:
        arr = np.moveaxis(arr, 0, -1)
    assert arr.dtype == np.uint8
    if arr.ndim == 3 and want.ndim == 2:
        assert arr.shape[2] in (1, 3)
        want = np.repeat(want[:, :, None], arr.shape[2], axis=2)
    assert arr.shape == want.shape
    assert np.array_equal(arr, want)


def test_the_default_encoder_is_recorded_and_stores_gray_as_8_bit_l(tiny):
    manifest = json.loads((tiny / "manifest.json").read_text())
    assert manifest["config"]["encoder"] == "png3"
    with tarfile.open(tiny / TINY_SHARDS[0]) as tar:
        png = next(tar.extractfile(m).read() for m in tar if m.name.endswith(".png"))
    assert Image.open(io.BytesIO(png)).mode == "L"


def test_one_mode_per_dataset(mixed_modes):
    folder, want = mixed_modes
    modes = set()
    for shard in sorted(folder.glob("modes-*.tar")):
        with tarfile.open(shard) as tar:
            for m in tar:
                if m.name.endswith(".png"):
                    img = Image.open(io.BytesIO(tar.extractfile(m).read()))
                    modes.add(img.mode)
                    _equal(img, want[m.name[:-4]])
    assert modes == {"RGB"}
    gray = [img for img in want.values() if np.array_equal(img[..., 0], img[..., 2])]
    assert gray and len(gray) < len(want), "the case needs a gray and a colour class"


def test_png2_is_kept_for_whoever_asks(tmp_path):
    """The old default, opt-in: a palette PNG whose *converted* pixels are the same."""
    from fractaldb.config import resolve
    from fractaldb.dataset import generate

    manifest = generate(resolve("tiny", ["encoder=png2", "fractal.categories=1"]), str(tmp_path / "p"), workers=1)
    assert manifest["config"]["encoder"] == "png2"
    with tarfile.open(tmp_path / "p" / manifest["shards"][0]["name"]) as tar:
        png = next(tar.extractfile(m).read() for m in tar if m.name.endswith(".png"))
    assert Image.open(io.BytesIO(png)).mode == "P"


def test_webdataset_raw_and_decoded(tiny, pixels):
    import webdataset as wds

    urls = [str(tiny / n) for n in TINY_SHARDS]
    n = 0
    for sample in wds.WebDataset(urls, shardshuffle=False).decode("pil"):
        _equal(sample["png"], pixels[sample["__key__"]])
        n += 1
    assert n == TINY_SAMPLES
    for sample in wds.WebDataset(urls, shardshuffle=False).decode("rgb8"):
        _equal(sample["png"], pixels[sample["__key__"]])


def test_wids(tiny, pixels, tmp_path):
    import wids

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = wids.ShardListDataset(str(tiny / "wids-index.json"), cache_dir=str(tmp_path / "cache"))
        for i in range(len(ds)):
            s = ds[i]
            img = s[".png"]
            if isinstance(img, bytes):
                img = Image.open(io.BytesIO(img))
            _equal(img, pixels[s["__key__"]])


def test_huggingface_datasets_with_and_without_torch_format(tiny, pixels, tmp_path, monkeypatch):
    ds = load_webdataset_offline([tiny / n for n in TINY_SHARDS], tmp_path, monkeypatch)
    for row in ds:
        _equal(row["png"], pixels[row["__key__"]])
    torch_rows = ds.with_format("torch")
    for i in (0, len(ds) - 1):
        row = torch_rows[i]
        _equal(row["png"].numpy(), pixels[ds[i]["__key__"]], chw=True)


def test_torchvision_after_export(tiny, pixels, tmp_path):
    from torchvision.datasets import ImageFolder
    from torchvision.transforms.functional import pil_to_tensor

    from fractaldb.families import get_family

    dest = tmp_path / "F"
    code, _, err = run_cli(["export", tiny, "--out", dest])
    assert code == 0, err
    key_of = {}  # exported file (relative) -> sample key, from each sample's own .json
    for name in TINY_SHARDS:
        with tarfile.open(tiny / name) as tar:
            for m in tar:
                if m.name.endswith(".json"):
                    meta = json.loads(tar.extractfile(m).read())
                    key_of[get_family(meta["family"]).export_path(meta, "png")] = meta["key"]
    ds = ImageFolder(str(dest), loader=Image.open)  # no convert: the file's own mode
    assert len(ds) == TINY_SAMPLES
    for i in range(len(ds)):
        img, _ = ds[i]
        rel = ds.samples[i][0][len(str(dest)) + 1:]
        _equal(pil_to_tensor(img)[0].numpy(), pixels[key_of[rel]])


def test_timm_wds_reader(tiny, pixels):
    timm_reader = pytest.importorskip("timm.data.readers.reader_wds", reason="timm is not installed")
    reader = timm_reader.ReaderWds(str(tiny), split="train", is_training=False, batch_size=1)
    n = 0
    for img, _ in reader:
        arr = np.asarray(img)
        flat = arr if arr.ndim == 2 else arr[..., 0]
        assert any(np.array_equal(flat, want) for want in pixels.values())
        n += 1
    assert n == TINY_SAMPLES


def test_energon_default_decoder(tmp_path_factory, tmp_path, pixels):
    """Energon's default image decoder (``torchrgb``) hands float CHW tensors in [0, 1]: the levels / 255."""
    energon = pytest.importorskip("megatron.energon", reason="megatron-energon is not installed")
    from fractaldb.indexes import write_indexes

    tiny = copy_tiny(tmp_path_factory, tmp_path / "tiny")  # the index files go beside the shards
    import torch

    write_indexes(str(tiny), ["energon"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pin_memory without an accelerator
        ds = energon.get_train_dataset(str(tiny), batch_size=None, shuffle_buffer_size=None,
                                       max_samples_per_sequence=None, repeat=False,
                                       worker_config=energon.WorkerConfig(rank=0, world_size=1, num_workers=0))
        keys = set()
        for sample in energon.get_loader(ds):
            levels = (sample.image * 255).round().to(dtype=torch.uint8).numpy()
            _equal(levels, pixels[sample.__key__], chw=True)
            keys.add(sample.__key__)
    assert keys == set(pixels)


def test_dali_default_decoder(tmp_path_factory, tmp_path, pixels):
    """DALI's ``fn.decoders.image`` (RGB by default) on the CPU: a gray level in each channel."""
    pytest.importorskip("nvidia.dali", reason="nvidia-dali is not installed")
    from nvidia.dali import fn, pipeline_def

    from fractaldb.indexes import write_indexes

    tiny = copy_tiny(tmp_path_factory, tmp_path / "tiny")  # the index files go beside the shards
    write_indexes(str(tiny), ["dali"])
    paths = [str(tiny / n) for n in TINY_SHARDS]

    @pipeline_def(batch_size=TINY_SAMPLES, num_threads=1, device_id=None)  # CPU only
    def pipe():
        img, key = fn.readers.webdataset(paths=paths, index_paths=[p[:-4] + ".idx" for p in paths],
                                         ext=["png", "json"], missing_component_behavior="error",
                                         random_shuffle=False)
        return fn.decoders.image(img, device="cpu"), key

    p = pipe()
    p.build()
    imgs, metas = p.run()
    keys = set()
    for i in range(TINY_SAMPLES):
        key = json.loads(bytes(np.array(metas[i])))["key"]
        _equal(np.array(imgs[i]), pixels[key])
        keys.add(key)
    assert keys == set(pixels)
