"""Same pixels, same PNG bytes; same config, same dataset bytes (issue 18).

What is checked:

* the deflate code this process runs is the canonical one (ISA-L's x86
  assembly match finder), and any other match finder gets another
  :data:`~fractaldb.encode.DEFLATE` name, so manifests tell them apart;
* pinned PNG bytes of a few test cards (gray, RGB, one whose deflate stream
  outgrows python-isal's first 16 KiB output buffer);
* an image encodes to the same bytes on a fresh thread, on a busy pool, after
  the per-thread row buffer held a bigger image, and after ISA-L compressed
  other data (malloc'd level buffer and stack reused);
* the stress test: the same dataset generated many times with 1, 2 and 4
  workers, on threads and on worker processes, and once on Dask, is
  byte-identical, file by file.
"""

from __future__ import annotations

import hashlib
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from fractaldb import encode
from fractaldb.config import resolve
from fractaldb.dataset import generate
from fractaldb.encode import DEFLATE, deflate_id, encode_png

#: sha256 of ``encode_png(_card(*args))``, written by fractaldb 0.1.0.dev0
#: (python-isal 1.9.1, x86 AVX2); python-isal 1.6.1 to 1.9.0 write the same.
PINNED_PNG = {
    (64, 64, 1, 1): "9d9af36ee4163757ba1c02fd65982167501d1849fcf127fcfdb17b2cd9ed2660",
    (362, 362, 1, 2): "712349b38d9c1e1bcd3119c81a2fc29a0d8eb3d90e7a78a0781aaaff374a7f20",  # 36 kB of deflate
    (96, 80, 3, 3): "2d21e0a3ca94d4454c19c083d7ef7e5fda5d9aab903a5ed8fdc7cf079f46aeea",
}

#: The stress test's dataset: 8 classes x 12 images at 64x64 in 12 shards.
STRESS = ["categories=8", "shard_size=8"]


def _card(h: int, w: int, c: int, seed: int) -> np.ndarray:
    """A sparse fractal-like test card from integer hashing (no RNG version in play)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.uint32)
    v = ((x * 73856093) ^ (y * 19349663) ^ (seed * 83492791)) * 2654435761 >> 24
    img = np.where(v < 40, v * 6, 0).astype(np.uint8)
    if c == 3:
        img = np.stack([img, np.roll(img, 3, 1), img[::-1]], axis=-1)
    return np.ascontiguousarray(img)


def _images() -> list:
    rng = np.random.default_rng(18)
    out = [_card(*args) for args in PINNED_PNG]
    for i in range(40):
        h = int(rng.choice([8, 16, 31, 48, 64, 100, 181, 256, 362]))  # < 4 kB rows too (smaller hash table)
        shape = (h, h + i % 3) + ((3,) if i % 3 == 0 else ())
        img = np.zeros(shape, np.uint8)
        n = int(rng.integers(1, img.size // 2 + 2))
        img.reshape(-1)[rng.integers(0, img.size, n)] = rng.integers(1, 256, n, dtype=np.uint8)
        out.append(img)
    return out


def _on_fresh_thread(fn, *args):
    result = []
    t = threading.Thread(target=lambda: result.append(fn(*args)))
    t.start()
    t.join()
    return result[0]


# --------------------------------------------------------------------------- the deflate code


def test_this_process_runs_the_canonical_deflate():
    assert DEFLATE == deflate_id() == "isal", (
        f"this machine's ISA-L writes non-canonical deflate streams ({DEFLATE}): "
        "datasets made here will not match ones made on x86 CPUs with SSE4.2")


def test_another_match_finder_gets_another_name():
    """A compressor with other (valid) streams, here zlib posing as ISA-L, is named apart."""
    other = deflate_id(zlib.compress, "isal")
    assert other.startswith("isal-") and other != "isal"
    assert deflate_id(zlib.compress, "isal") == other  # a stable name for the same code
    assert deflate_id(encode._deflate.compress, "isal") == "isal"
    assert deflate_id(zlib.compress, "zlib") == "zlib"


@pytest.mark.parametrize("args", sorted(PINNED_PNG))
def test_pinned_png_bytes(args):
    data = encode_png(_card(*args))
    assert hashlib.sha256(data).hexdigest() == PINNED_PNG[args]


# --------------------------------------------------------------------------- threads and reuse


def test_same_bytes_on_any_thread_after_any_other_work():
    images = _images()
    ref = [_on_fresh_thread(encode_png, img) for img in images]  # fresh row buffer each
    # One thread, biggest image first: smaller ones reuse a buffer with leftovers past their end.
    order = sorted(range(len(images)), key=lambda i: -images[i].size)
    assert [encode_png(images[i]) for i in order] == [ref[i] for i in order]
    # ISA-L reuses freed level buffers and stack: compress other data in between.
    junk = [np.random.default_rng(s).integers(0, 256, n, dtype=np.uint8).tobytes()
            for s, n in enumerate((100, 40_000, 300_000))]
    for i, img in enumerate(images):
        encode._deflate.compress(junk[i % 3], 1 + i % 3)
        assert encode_png(img) == ref[i]
    # Many threads, shuffled, each image several times.
    work = list(range(len(images))) * 3
    np.random.default_rng(1).shuffle(work)
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda i: encode_png(images[i]), work))
    assert [i for i, g in zip(work, got) if g != ref[i]] == []


# --------------------------------------------------------------------------- the stress test


def _files(folder) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


#: (workers, executor) of the stress runs: one worker, threads and forked processes.
RUNS = [(1, "local"), (2, "threads"), (2, "processes"), (4, "threads"), (4, "processes")] * 3


@pytest.mark.slow
def test_stress_same_dataset_any_worker_count(tmp_path):
    cfg = resolve("tiny", STRESS)
    ref = None
    for run, (workers, executor) in enumerate(RUNS):
        out = tmp_path / f"run{run}"
        generate(cfg, str(out), workers=workers, executor=executor)
        files = _files(out)
        if ref is None:
            ref = files
            assert sum(name.endswith(".tar") for name in ref) == 12
            continue
        assert sorted(files) == sorted(ref)
        assert [name for name in ref if files[name] != ref[name]] == [], f"run {run}, {workers} {executor}"


@pytest.mark.slow
def test_stress_dask_same_bytes(tmp_path):
    pytest.importorskip("distributed")
    cfg = resolve("tiny", STRESS)
    generate(cfg, str(tmp_path / "local"), workers=1)
    generate(cfg, str(tmp_path / "dask"), workers=2, executor="dask")
    assert _files(tmp_path / "dask") == _files(tmp_path / "local")
