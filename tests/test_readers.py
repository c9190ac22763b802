"""Readers that must accept ``fractaldb generate`` output unchanged (SPEC 3).

``webdataset.WebDataset``, ``wids.ShardListDataset`` (our ``wids-index.json``),
Hugging Face ``datasets.load_dataset("webdataset", ...)``, timm's ``wds``
reader (``_info.json``; skipped when timm is not installed),
``torchvision.datasets.ImageFolder`` on ``fractaldb export`` output, and a
tiny PyTorch training loop on ``fractaldb.data.shard_loader``.
"""

from __future__ import annotations

import io
import json
import warnings
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from tinyset import TINY_CLASSES, TINY_SAMPLES, TINY_SHARDS, load_webdataset_offline, run_cli


@pytest.fixture(scope="module")
def expected(tiny):
    """``Counter((key, label))`` of the dataset, read from the tars with tarfile."""
    import tarfile

    c = Counter()
    for name in TINY_SHARDS:
        with tarfile.open(tiny / name) as tar:
            for m in tar:
                if m.name.endswith(".cls"):
                    c[(m.name[:-4], int(tar.extractfile(m).read()))] += 1
    assert sum(c.values()) == TINY_SAMPLES
    return c


def test_webdataset(tiny, expected):
    import webdataset as wds

    urls = [str(tiny / n) for n in TINY_SHARDS]
    ds = wds.WebDataset(urls, shardshuffle=False)
    got = Counter()
    for sample in ds:
        assert {"png", "cls", "json", "__key__"} <= set(sample)
        label = int(sample["cls"])
        assert json.loads(sample["json"])["label"] == label
        img = Image.open(io.BytesIO(sample["png"]))
        assert img.size == (64, 64)
        got[(sample["__key__"], label)] += 1
    assert got == expected


def test_webdataset_decoded_pipeline(tiny):
    import webdataset as wds

    urls = [str(tiny / n) for n in TINY_SHARDS]
    ds = wds.WebDataset(urls, shardshuffle=False).decode("pil").to_tuple("png", "cls")
    items = list(ds)
    assert len(items) == TINY_SAMPLES
    for img, label in items:
        assert isinstance(img, Image.Image) and img.size == (64, 64)
        assert label in range(TINY_CLASSES)


def test_webdataset_brace_pattern(tiny):
    import webdataset as wds

    ds = wds.WebDataset(str(tiny / "tiny-{000000..000002}.tar"), shardshuffle=False)
    assert sum(1 for _ in ds) == TINY_SAMPLES


def test_wids(tiny, expected, tmp_path):
    import wids

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = wids.ShardListDataset(str(tiny / "wids-index.json"), cache_dir=str(tmp_path / "cache"))
        assert len(ds) == TINY_SAMPLES
        got = Counter()
        for i in range(len(ds)):
            s = ds[i]
            assert ".png" in s and ".cls" in s
            img = s[".png"]
            if isinstance(img, bytes):
                img = Image.open(io.BytesIO(img))
            assert img.size == (64, 64)
            got[(s["__key__"], int(s[".cls"]))] += 1
    assert got == expected


def test_huggingface_datasets(tiny, expected, tmp_path, monkeypatch):
    ds = load_webdataset_offline([tiny / n for n in TINY_SHARDS], tmp_path, monkeypatch)
    assert ds.num_rows == TINY_SAMPLES
    assert {"png", "cls", "__key__"} <= set(ds.column_names)
    got = Counter()
    for row in ds:
        img = row["png"]
        assert isinstance(img, Image.Image) and img.size == (64, 64)
        got[(row["__key__"], int(row["cls"]))] += 1
    assert got == expected


def test_timm_wds_reader(tiny):
    timm_reader = pytest.importorskip("timm.data.readers.reader_wds", reason="timm is not installed")
    reader = timm_reader.ReaderWds(str(tiny), split="train", is_training=False, batch_size=1)
    n = 0
    for img, target in reader:
        n += 1
    assert n == TINY_SAMPLES


def test_torchvision_imagefolder(tiny, tmp_path):
    from torchvision.datasets import ImageFolder

    dest = tmp_path / "F"
    code, _, err = run_cli(["export", tiny, "--out", dest])
    assert code == 0, err
    ds = ImageFolder(str(dest))
    assert ds.classes == [f"{c:05d}" for c in range(TINY_CLASSES)]
    assert len(ds) == TINY_SAMPLES
    assert Counter(t for _, t in ds.samples) == {c: 12 for c in range(TINY_CLASSES)}
    for i in (0, len(ds) - 1):
        img, target = ds[i]
        assert img.mode == "RGB" and img.size == (64, 64)
        assert target in range(TINY_CLASSES)


def test_tiny_training_loop_on_the_shard_loader(tiny):
    import torch

    from fractaldb.data import shard_loader

    torch.manual_seed(0)
    loader = shard_loader(tiny, batch_size=8, num_workers=2, resampled=True, epoch_size=16)
    model = torch.nn.Linear(64 * 64, TINY_CLASSES)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    steps = 0
    losses = []
    for images, labels in loader:
        labels = torch.as_tensor(labels)
        assert images.shape == (8, 3, 64, 64) and images.dtype == torch.uint8
        assert labels.shape == (8,)
        assert labels.min() >= 0 and labels.max() < TINY_CLASSES
        x = images[:, 0].float().div(255).flatten(1)
        loss = torch.nn.functional.cross_entropy(model(x), labels.long())
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert torch.isfinite(loss)
        losses.append(float(loss.detach()))
        steps += 1
        if steps == 2:
            break
    assert steps == 2
    assert all(np.isfinite(losses))
