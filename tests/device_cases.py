"""``--device cuda`` through the product: generate, regenerate, render, the GPU stream.

Not collected by a plain ``pytest`` run (the name does not start with
``test_``): ``tests/test_device.py`` runs this file in a subprocess under
numba's CUDA simulator.  On a machine with an NVIDIA GPU the same cases run
on the hardware::

    python -m pytest tests/device_cases.py -q

Everything is compared with the CPU path: the same shard bytes, the same
ImageFolder files, the same images in the on-the-fly stream.  Sizes stay
tiny (32 px, 600 points): the simulator runs every CUDA thread as a Python
thread.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from numba import cuda

if not cuda.is_available():  # pragma: no cover - test_device.py sets the simulator
    pytest.skip("needs a GPU or NUMBA_ENABLE_CUDASIM=1", allow_module_level=True)

import torch  # noqa: E402

from fractaldb import config  # noqa: E402
from fractaldb.dataset import Dataset, generate, regenerate  # noqa: E402
from fractaldb.ifs import kernels_cuda as KC  # noqa: E402
from fractaldb.families.fractal.imagefolder import create_renderer, render_blocks  # noqa: E402
from fractaldb.ifs.render import CPURenderer, RenderConfig  # noqa: E402
import published  # noqa: E402

CAT_00000, CAT_00001, CAT_00002 = (published.rows(name) for name in ("00000", "00001", "00002"))
from tinyset import run_cli  # noqa: E402

from fractaldb.ifs.system import IFS  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # splitmix64 wraps on purpose

SMALL = ["image_size=32", "points=600"]
MIXED = ["categories=2", "weights=none", "patches=2", "perlin_classes=3", "perlin_instances=2", "perlin.image_size=32",
         "shard_size=8", *SMALL]
SYSTEMS = [IFS.from_rows(r) for r in (CAT_00000, CAT_00001, CAT_00002)]


def _files(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- renderers


@pytest.mark.parametrize("compat", ["modern", "official"])
def test_render_many_gives_render_block_s_blocks(compat):
    cfg = RenderConfig(size=32, points=600, weights="0.4", patches=3, flips=2, compat=compat,
                       degenerate="keep" if compat == "official" else "replace")
    jobs = [(7, SYSTEMS[0], 0, [0, 2]), (8, SYSTEMS[1], 3, None), (9, SYSTEMS[2], 9, [1])]
    cpu, gpu = CPURenderer(cfg), create_renderer(cfg, "cuda")
    gpu.max_batch = 2  # two launches
    for renderer in (cpu, gpu):
        for job, block in zip(jobs, renderer.render_many(jobs)):
            ref = cpu.render_block(*job[:3], draws=job[3])
            assert np.array_equal(block.images, ref.images)
            assert block.fill == ref.fill and np.array_equal(block.factors, ref.factors)
            assert block.draws == ref.draws


def test_render_blocks_on_the_gpu_equals_the_cpu():
    cfg = RenderConfig(size=32, points=600, weights="none", patches=2, flips=2)
    cpu = [(b.category, b.weight, b.images.copy()) for b in render_blocks(SYSTEMS, cfg, workers=2)]
    gpu = [(b.category, b.weight, b.images) for b in render_blocks(SYSTEMS, cfg, workers=2, device="cuda")]
    assert len(cpu) == len(gpu) == 3
    for (c1, w1, a), (c2, w2, b) in zip(cpu, gpu):
        assert (c1, w1) == (c2, w2) and np.array_equal(a, b)


def test_cli_render_device_cuda_writes_the_cpu_s_files(tmp_path):
    from fractaldb.ifs.system import write_csv

    params = tmp_path / "params"
    params.mkdir()
    for i, s in enumerate(SYSTEMS[:2]):
        write_csv(s, params / f"{i:05d}.csv")
    args = ["render", "--params", params, "--size", "32", "--points", "600", "--patches", "2", "--weights", "none"]
    for device in ("cpu", "cuda"):
        code, _, err = run_cli([*args, "--out", tmp_path / device, "--device", device, "--workers", "2"])
        assert code == 0, err
    assert _files(tmp_path / "cpu") == _files(tmp_path / "cuda")
    assert sum(name.endswith(".png") for name in _files(tmp_path / "cpu")) == 2 * 2 * 4


# --------------------------------------------------------------------------- generate / regenerate


@pytest.mark.parametrize("preset,overrides", [("tiny", SMALL), ("fractal+perlin", MIXED),
                                              ("perlin-tiny", ["image_size=24", "perlin_classes=4", "perlin_instances=4",
                                                                "shard_size=8"])])
def test_generate_on_the_gpu_writes_the_cpu_s_bytes(tmp_path, preset, overrides):
    cfg = config.resolve(preset, overrides)
    cpu = generate(cfg, tmp_path / "cpu", workers=1)
    gpu = generate(cfg, tmp_path / "cuda", workers=2, device="cuda")
    assert cpu == gpu
    assert _files(tmp_path / "cpu") == _files(tmp_path / "cuda")
    assert cpu["plan"]["shards"] >= 2


def test_cli_generate_and_regenerate_with_device_cuda(tmp_path):
    out = tmp_path / "ds"
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", out, "--device", "cuda", "--workers", "1",
                            *(x for kv in SMALL for x in ("--set", kv))])
    assert code == 0, err
    ref = generate(config.resolve("tiny", SMALL), tmp_path / "ref", workers=1)
    assert _files(out) == _files(tmp_path / "ref")
    shard = out / ref["shards"][1]["name"]
    shard.write_bytes(b"broken")
    code, stdout, err = run_cli(["regenerate", out, "--shard", "1", "--device", "cuda"])
    assert code == 0, err
    assert "matches the manifest" in stdout
    assert regenerate(str(out), 0, device="cuda")["sha256"] == ref["shards"][0]["sha256"]
    assert _files(out) == _files(tmp_path / "ref")


# --------------------------------------------------------------------------- the GPU stream


def _stream_images(stream) -> Counter:
    """(label, sha256 of the (3, H, W) image) of every sample of one pass."""
    out = Counter()
    for images, labels in stream:
        assert images.dtype == torch.uint8 and images.ndim == 4 and images.shape[1] == 3
        for img, label in zip(images, labels):
            out[(int(label), hashlib.sha256(img.contiguous().cpu().numpy().tobytes()).hexdigest())] += 1
    return out


def _cpu_stream_images(ds) -> Counter:
    from fractaldb.data import FractalStream

    out = Counter()
    for img, label in FractalStream(dataset=ds, shuffle=1):
        out[(int(label), hashlib.sha256(img.numpy().tobytes()).hexdigest())] += 1
    return out


@pytest.fixture(scope="module", params=[("tiny", SMALL), ("fractal+perlin", MIXED)], ids=["tiny", "mixed"])
def dataset(request):
    return Dataset.from_config(config.resolve(*request.param))


def test_gpu_stream_yields_the_cpu_stream_s_images(dataset):
    from fractaldb.data import GPUFractalStream

    stream = GPUFractalStream(dataset=dataset, batch_size=5, window=20, drop_last=False)
    got = _stream_images(stream)
    assert sum(got.values()) == len(stream) == dataset.plan.n_samples
    assert got == _cpu_stream_images(dataset)


def test_gpu_stream_is_repeatable_and_reshuffles_per_epoch(dataset):
    from fractaldb.data import GPUFractalStream

    def order(epoch):
        stream = GPUFractalStream(dataset=dataset, batch_size=4, window=16)
        stream.set_epoch(epoch)
        return [hashlib.sha256(x.contiguous().cpu().numpy().tobytes()).hexdigest() + str(y.tolist())
                for x, y in stream]

    first = order(0)
    assert first == order(0)
    assert first != order(1)
    assert all(len(b) for b in first)


def test_gpu_stream_batches_epoch_size_and_drop_last(dataset):
    from fractaldb.data import GPUFractalStream

    n = dataset.plan.n_samples
    sizes = [len(y) for _, y in GPUFractalStream(dataset=dataset, batch_size=5, window=24)]
    assert sizes == [5] * (n // 5)
    sizes = [len(y) for _, y in GPUFractalStream(dataset=dataset, batch_size=5, window=24, drop_last=False)]
    assert sizes == [5] * (n // 5) + [n % 5] and n % 5
    sizes = [len(y) for _, y in GPUFractalStream(dataset=dataset, batch_size=7, epoch_size=16, drop_last=False)]
    assert sizes == [7, 7, 2]


def test_gpu_stream_ranks_split_the_blocks(dataset, monkeypatch):
    from fractaldb.data import GPUFractalStream

    everything = _cpu_stream_images(dataset)
    parts = []
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        parts.append(_stream_images(GPUFractalStream(dataset=dataset, batch_size=3, drop_last=False)))
    assert not set(parts[0]) & set(parts[1])
    assert parts[0] + parts[1] == everything


def test_gpu_stream_transform_runs_on_whole_batches(dataset):
    from fractaldb.data import GPUFractalStream
    from fractaldb.train import SquareUint8

    seen = []

    def transform(x):
        seen.append(tuple(x.shape))
        return SquareUint8(24)(x)

    images, labels = next(iter(GPUFractalStream(dataset=dataset, batch_size=6, transform=transform)))
    assert seen == [(6, 3, 32, 32)]
    assert tuple(images.shape) == (6, 3, 24, 24) and labels.shape == (6,)


def test_pretrain_on_the_fly_renders_on_the_gpu(tmp_path):
    import json

    code, out, err = run_cli(["pretrain", "--on-the-fly", "--preset", "tiny", "--epochs", "1", "--out", tmp_path / "r",
                              "--render-device", "cuda", "--arch", "test_resnet", "--recipe", "cpu-sanity",
                              "--batch-size", "16", "--image-size", "32", "--device", "cpu",
                              *(x for kv in SMALL for x in ("--set", kv))])
    assert code == 0, err
    log = json.loads((tmp_path / "r" / "log.jsonl").read_text())
    assert log["samples"] == 48


def test_simulator_flag_matches_the_environment():
    assert KC.SIMULATOR == (os.environ.get("NUMBA_ENABLE_CUDASIM") == "1")
