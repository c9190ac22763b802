"""The GPU pipeline (``generate --device cuda`` with worker processes): this process
renders shards on the GPU into shared memory, forked workers encode and pack them.

Not collected by a plain ``pytest`` run: ``tests/test_workers.py`` runs this file in
a subprocess under numba's CUDA simulator; on a machine with an NVIDIA GPU the same
cases run on the hardware (``benchmarks/gpu_checks.sh`` does)::

    python -m pytest tests/pipeline_cases.py -q

Every case compares the pipeline's manifest and files with one CPU worker's.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from numba import cuda

if not cuda.is_available():  # pragma: no cover - test_workers.py sets the simulator
    pytest.skip("needs a GPU or NUMBA_ENABLE_CUDASIM=1", allow_module_level=True)

from fractaldb import config, executors  # noqa: E402
from fractaldb.dataset import generate  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # splitmix64 wraps on purpose

SMALL = ["image_size=32", "points=600"]
CASES = [("tiny", SMALL),
         ("fractal+perlin", ["categories=3", "weights=0.4", "fractal.weight_rows=0,12", "flips=2", "patches=2",
                             "perlin_classes=3", "perlin_instances=4", "perlin.image_size=32", "shard_size=8", *SMALL]),
         ("perlin-tiny", ["image_size=24", "perlin_classes=4", "perlin_instances=4", "shard_size=8"])]


def _files(root: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.iterdir()) if p.is_file()}


@pytest.mark.parametrize("preset,overrides", CASES)
@pytest.mark.parametrize("group", [1, 3])
def test_the_pipeline_writes_the_cpu_s_bytes(tmp_path, monkeypatch, preset, overrides, group):
    monkeypatch.setattr(executors, "GPU_GROUP", group)  # one shard per launch, and several
    cfg = config.resolve(preset, overrides)
    cpu = generate(cfg, tmp_path / "cpu", workers=1)
    labels = []
    gpu = generate(cfg, tmp_path / "cuda", workers=2, device="cuda", executor="processes", on_workers=labels.append)
    assert labels == ["GPU + 2 processes"]
    assert cpu == gpu
    assert _files(tmp_path / "cpu") == _files(tmp_path / "cuda")
    assert cpu["plan"]["shards"] >= 2


def test_the_pipeline_resumes(tmp_path):
    cfg = config.resolve("tiny", SMALL)
    ref = generate(cfg, tmp_path / "ref", workers=1)
    out = tmp_path / "out"
    generate(cfg, out, workers=2, device="cuda", executor="processes")
    (out / ref["shards"][1]["name"]).write_bytes(b"broken")  # remade by --resume, the others kept
    generate(cfg, out, workers=2, device="cuda", executor="processes", resume=True)
    assert _files(out) == _files(tmp_path / "ref")
