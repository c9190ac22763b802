"""``--device cuda`` through generate, regenerate, render and on-the-fly training.

* ``tests/device_cases.py`` (the GPU path gives the CPU path's bytes and
  images) runs in a subprocess under numba's CUDA simulator, like
  ``tests/cuda_cases.py``.
* Without a GPU every entry point fails with one line (exit 2) before it
  writes anything.
"""

from __future__ import annotations

import os

import pytest

from fractaldb import config
from fractaldb.errors import ConfigError

from tinyset import assert_one_line_error, run_cli, run_simulator_cases

NO_GPU = "error: --device cuda needs an NVIDIA GPU with a working CUDA driver; none was found. Use --device cpu"


def _gpu_present() -> bool:
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return True
    from fractaldb.gpu import cuda_available

    return cuda_available()


_NEEDS_NO_GPU = pytest.mark.skipif("_gpu_present()", reason="a GPU (or the simulator) is present")


@pytest.mark.slow
@pytest.mark.simulator_cases("device_cases.py")
def test_simulator_device_cases_pass():
    run_simulator_cases("device_cases.py", at_least=20)


def test_unknown_device_is_a_one_line_error(tmp_path):
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", tmp_path / "o", "--device", "tpu"])
    assert_one_line_error(code, err, "error: unknown device 'tpu'; choose cpu or cuda")
    assert not (tmp_path / "o").exists()


@_NEEDS_NO_GPU
def test_generate_device_cuda_without_gpu_writes_nothing(tmp_path):
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", tmp_path / "o", "--device", "cuda"])
    assert_one_line_error(code, err, NO_GPU)
    assert not (tmp_path / "o").exists()


@_NEEDS_NO_GPU
def test_regenerate_device_cuda_without_gpu(tmp_path):
    from fractaldb.dataset import generate

    out = tmp_path / "ds"
    generate(config.resolve("tiny", ["image_size=32", "points=600"]), out, workers=1)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    code, _, err = run_cli(["regenerate", out, "--shard", "0", "--device", "cuda"])
    assert_one_line_error(code, err, NO_GPU)
    assert before == {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}


@_NEEDS_NO_GPU
def test_gpu_stream_without_gpu():
    from fractaldb.data import GPUFractalStream

    with pytest.raises(ConfigError, match="needs an NVIDIA GPU"):
        GPUFractalStream("tiny", ["image_size=32", "points=600"])


@_NEEDS_NO_GPU
def test_pretrain_render_device_cuda_without_gpu(tmp_path):
    code, _, err = run_cli(["pretrain", "--on-the-fly", "--preset", "tiny", "--render-device", "cuda",
                            "--arch", "test_resnet", "--device", "cpu", "--out", tmp_path / "r"])
    assert_one_line_error(code, err, "error: --render-device cuda needs numba-cuda (pip install 'fractaldb[cuda]') "
                                     "and an NVIDIA GPU; none is usable here. Use --render-device cpu")
    assert not any((tmp_path / "r").glob("*.pt"))


def test_render_device_auto_follows_the_training_device():
    import torch

    from fractaldb import train as T

    cfg = T.resolve_config("pretrain", "cpu-sanity", {"render_device": "auto"})
    rt = T.setup_runtime("cpu", "off")
    assert rt.device == torch.device("cpu")
    assert T.render_device(cfg, rt) == "cpu"
    from fractaldb.gpu import cuda_available

    if cuda_available():
        assert T.render_device({**cfg, "render_device": "cuda"}, rt) == "cuda"
    else:  # refused up front, before any stream is built
        with pytest.raises(ConfigError, match="--render-device cuda needs numba-cuda"):
            T.render_device({**cfg, "render_device": "cuda"}, rt)
    with pytest.raises(ConfigError, match="render-device from the command line must be auto | cpu | cuda"):
        T.resolve_config("pretrain", "cpu-sanity", {"render_device": "gpu"})


@_NEEDS_NO_GPU
def test_generate_dask_device_cuda_without_gpu_fails_before_starting(tmp_path):
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", tmp_path / "o", "--device", "cuda",
                            "--executor", "dask", "--workers", "1"])
    assert_one_line_error(code, err, NO_GPU)
    assert not (tmp_path / "o").exists()
