"""The CUDA renderer: simulator parity, compiled PTX, and the no-GPU errors.

* ``tests/cuda_cases.py`` (GPU blocks == CPU blocks, bit for bit) runs in a
  subprocess under numba's CUDA simulator: ``NUMBA_ENABLE_CUDASIM`` must be set
  before numba is imported, and this process has imported it already.
* The kernels are compiled for a real GPU (sm_90 PTX, no driver needed) to
  check that they type-check on the CUDA target and contain no fused
  multiply-add, which would change the chaos game's points.
* Without a GPU, ``create_renderer(cfg, "cuda")`` and ``fractaldb render
  --device cuda`` fail with one clear line; importing fractaldb never
  imports ``numba.cuda``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fractaldb.errors import ConfigError
from fractaldb.families.fractal.imagefolder import create_renderer
from fractaldb.ifs.render import RenderConfig

from tinyset import run_simulator_cases

ROOT = Path(__file__).resolve().parents[1]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env.update(extra)
    return env


def _gpu_present() -> bool:
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return True
    from fractaldb.gpu import cuda_available

    return cuda_available()


# --------------------------------------------------------------------------- simulator


@pytest.mark.slow
@pytest.mark.simulator_cases("cuda_cases.py")
def test_simulator_cases_pass():
    run_simulator_cases("cuda_cases.py", at_least=50)


@pytest.mark.slow
@pytest.mark.simulator_cases("perlin_cuda_cases.py")
def test_perlin_simulator_cases_pass():
    """``tests/perlin_cuda_cases.py``: PerlinCUDARenderer == PerlinRenderer, bit for bit, in the simulator."""
    run_simulator_cases("perlin_cuda_cases.py", at_least=60)


@pytest.mark.slow
@pytest.mark.simulator_cases("contour_cuda_cases.py")
def test_contour_simulator_cases_pass():
    """``tests/contour_cuda_cases.py``: the contour GPU rasteriser == the CPU's, bit for bit, in the simulator."""
    run_simulator_cases("contour_cuda_cases.py", at_least=11)


@pytest.mark.slow
@pytest.mark.simulator_cases("rcdb_cuda_cases.py")
def test_rcdb_simulator_cases_pass():
    """``tests/rcdb_cuda_cases.py``: the RCDB / SegRCDB GPU renderers == the CPU's (images, masks) in the simulator."""
    run_simulator_cases("rcdb_cuda_cases.py", at_least=6)


# --------------------------------------------------------------------------- compiled for a real GPU


def _ptx_signatures():
    from numba.cuda import types as T

    i32, u64, f64, i64 = T.int32[::1], T.uint64[::1], T.float64[::1], T.int64[::1]
    f2, i2, u2, i3 = T.float64[:, ::1], T.int32[:, ::1], T.uint64[:, ::1], T.int32[:, :, ::1]
    return {  # the argument types CUDARenderer launches with
        "select_kernel": (i32, f2, i32, u64, f64, T.boolean, T.int64, u2),
        "chaos_game_kernel": (i32, T.float64[:, :, ::1], i32, u2, f2, f2),
        "rescale_kernel": (i32, f2, f2, T.int64, T.int64, T.int64, T.boolean, i2, i2, i32, i32),
        "clear_fill_kernel": (i32, u2, i64),
        "fill_kernel": (i32, i2, i2, i32, T.int64, T.int64, u2, i64),
        "fill_shared_kernel": (i32, i2, i2, i32, T.int64, T.int64, u2, i64),
        "copy_slots_kernel": (i32, i32, i2, i2, i32, u2, i2, i2, i32, u2),
        "clear_owner_kernel": (i32, i3),
        "owner_kernel": (i32, i2, i2, i32, T.boolean, i3),
        "compose_kernel": (i32, i32, u64, i32, i2, i2, i3, u2, T.uint8[:, ::1], T.int64, T.int64,
                           T.uint8[:, :, :, ::1]),
    }


def _compile_ptx(monkeypatch):
    """``compile(py_func, signature) -> PTX`` for sm_90, after proving the FMA check can fail.

    Skips under the simulator (it does not compile) and without NVVM.
    """
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        pytest.skip("the simulator does not compile")
    from numba import cuda
    import numba.cuda.dispatcher as dispatcher
    from numba.cuda import types as T

    # Device functions ask the current GPU for its compute capability; there
    # may be none here, and PTX for sm_90 needs only NVVM.
    monkeypatch.setattr(dispatcher, "get_current_device", lambda: type("Dev", (), {"compute_capability": (9, 0)})())

    def control(a, b, c, out):
        out[0] = a[0] * b[0] + c[0]

    try:
        control_ptx, _ = cuda.compile_ptx(control, (T.float64[::1],) * 4, cc=(9, 0))
    except Exception as exc:  # no NVVM (CUDA toolkit) on this machine
        pytest.skip(f"cannot compile PTX here: {type(exc).__name__}: {exc}".splitlines()[0])
    # The control proves the check can fail: plain a * b + c is contracted.
    assert "fma.rn.f64" in control_ptx
    return lambda fn, sig: cuda.compile_ptx(fn, sig, cc=(9, 0))[0]


def test_kernels_compile_for_the_gpu_without_fma(monkeypatch):
    compile_ptx = _compile_ptx(monkeypatch)
    from fractaldb.ifs import kernels_cuda as KC

    for name, sig in _ptx_signatures().items():
        ptx = compile_ptx(getattr(KC, name).py_func, sig)
        assert "fma.rn.f64" not in ptx, f"{name}: a fused multiply-add changes the CPU's results"
        if name in ("select_kernel", "chaos_game_kernel", "rescale_kernel"):
            # Every product is an explicitly rounded mul.rn.f64, which PTX never fuses.
            assert "mul.rn.f64" in ptx, name
            assert not re.search(r"\bmul\.f64\b", ptx), f"{name}: a product the assembler may fuse"
        if name in ("chaos_game_kernel", "rescale_kernel"):
            assert "add.rn.f64" in ptx, name


def _perlin_ptx_signatures():
    from numba.cuda import types as T

    u64, i32, f64 = T.uint64[::1], T.int32[::1], T.float64[::1]
    f2, i2 = T.float64[:, ::1], T.int64[:, ::1]
    tables = (u64, f2, f2, i2, i32)  # keys, steps, amps, periods, noct
    return {  # the argument types PerlinCUDARenderer launches with
        "perlin_image_kernel": tables + (f64, i32, T.uint8[:, :, ::1], T.uint8[:, :, :, ::1]),
        "perlin_field_kernel": tables + (T.float64[:, :, ::1],),
    }


def test_perlin_kernels_compile_for_the_gpu_without_fma(monkeypatch):
    """The Perlin kernels type-check for sm_90, and no product can be fused (the CPU rounds twice)."""
    compile_ptx = _compile_ptx(monkeypatch)
    from fractaldb.families.perlin import kernels_cuda as KP

    for name, sig in _perlin_ptx_signatures().items():
        ptx = compile_ptx(getattr(KP, name).py_func, sig)
        assert "fma.rn.f64" not in ptx, f"{name}: a fused multiply-add changes the CPU's results"
        # Every product is an explicitly rounded mul.rn.f64, which PTX never fuses.
        assert "mul.rn.f64" in ptx and "add.rn.f64" in ptx, name
        assert not re.search(r"\bmul\.f64\b", ptx), f"{name}: a product the assembler may fuse"
        # The gradients are selected in registers, not read from a constant table (serialised per warp).
        assert "ld.const" not in ptx, f"{name}: a constant-memory table lookup"


# --------------------------------------------------------------------------- without a GPU

_NEEDS_NO_GPU = pytest.mark.skipif("_gpu_present()", reason="a GPU (or the simulator) is present")


@pytest.mark.parametrize("modules", ["fractaldb, fractaldb.ifs.render, fractaldb.shards, fractaldb.cli.main",
                                     "fractaldb.families.perlin.model"])
def test_importing_fractaldb_does_not_import_cuda(modules):
    code = f"import sys, {modules}; print('numba.cuda' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


@_NEEDS_NO_GPU
def test_create_renderer_cuda_without_gpu():
    with pytest.raises(ConfigError) as info:
        create_renderer(RenderConfig(size=32, points=100), "cuda")
    assert str(info.value) == ("--device cuda needs an NVIDIA GPU with a working CUDA driver; none was found. "
                               "Use --device cpu")


@_NEEDS_NO_GPU
def test_cli_render_device_cuda_without_gpu(tmp_path):
    from fractaldb.ifs.system import IFS, write_csv
    import published

    write_csv(IFS.from_rows(published.rows("00002")), tmp_path / "good.csv")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "fractaldb.cli.main", "render", "--params", str(tmp_path / "good.csv"),
         "--out", str(out), "--device", "cuda", "--size", "32", "--points", "200"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "error: --device cuda needs an NVIDIA GPU with a working CUDA driver; none was found. Use --device cpu"]
    assert not out.exists()


@_NEEDS_NO_GPU
def test_create_perlin_renderer_cuda_without_gpu():
    from fractaldb.families import create_renderer as create_family_renderer
    from fractaldb.families.perlin.model import PerlinRenderConfig

    with pytest.raises(ConfigError) as info:
        create_family_renderer("perlin", PerlinRenderConfig(size=32), "cuda")
    assert str(info.value) == ("--device cuda needs an NVIDIA GPU with a working CUDA driver; none was found. "
                               "Use --device cpu")


def test_create_perlin_renderer_unknown_device():
    from fractaldb.families import create_renderer as create_family_renderer
    from fractaldb.families.perlin.model import PerlinRenderConfig, PerlinRenderer

    with pytest.raises(ConfigError) as info:
        create_family_renderer("perlin", PerlinRenderConfig(size=32), "tpu")
    assert str(info.value) == "unknown device 'tpu'; choose cpu or cuda"
    assert isinstance(create_family_renderer("perlin", PerlinRenderConfig(size=32), "cpu"), PerlinRenderer)


def test_contour_kernels_compile_for_the_gpu_without_fma(monkeypatch):
    """The contour GPU rasteriser (fractaldb.contours.kernels_cuda) compiles for sm_90, and its
    vertex scan has no fused multiply-add (the CPU's float64 vertices, bit for bit)."""
    compile_ptx = _compile_ptx(monkeypatch)
    from numba.cuda import types as T

    from fractaldb.contours import kernels_cuda as KC

    i64, f2, i3, u3 = T.int64[::1], T.float64[:, ::1], T.int32[:, :, ::1], T.uint8[:, :, ::1]
    sigs = {"scan_kernel": (f2, f2, i64, i64, i64, i64, f2, i64, i64, f2),
            "edge_kernel": (f2, i64, i64, i64, i64, T.int64, i3),
            "map_kernel": (i3, T.int32[::1], T.int32[::1], T.uint8[::1], u3, i3),
            "keyed_noise_kernel": (T.uint64[::1], i64, i64, T.int64, T.boolean, f2),
            "keyed_gray_kernel": (T.uint64[::1], i64, i64, i64, T.int64, T.int64, T.int64, T.int32[::1])}
    for name, sig in sigs.items():
        ptx = compile_ptx(getattr(KC, name).py_func, sig)
        assert "fma.rn" not in ptx, f"{name}: a fused multiply-add changes the CPU's results"
    ptx = compile_ptx(KC.keyed_noise_kernel.py_func, sigs["keyed_noise_kernel"])
    assert "mul.rn.f32" in ptx and "add.rn.f32" in ptx  # the noise law's float32 steps, each rounded alone
    ptx = compile_ptx(KC.scan_kernel.py_func, sigs["scan_kernel"])
    assert "mul.rn.f64" in ptx and "add.rn.f64" in ptx
    assert not re.search(r"\bmul\.f64\b", ptx), "a product the assembler may fuse"


class _BarrierThread:
    """A simulator thread that is running when first looked at and waits in ``syncthreads`` from
    the second look on, until it is released (then it finishes)."""

    def __init__(self):
        self.exception, self.looks, self.released, self.joined = None, 0, False, 0
        self.syncthreads_event = type("Event", (), {"set": lambda _: setattr(self, "released", True)})()

    def is_alive(self):
        return not self.released

    @property
    def syncthreads_blocked(self):
        self.looks += 1
        return not self.released and self.looks > 1

    @syncthreads_blocked.setter
    def syncthreads_blocked(self, value):
        pass

    def join(self, timeout):
        self.joined += 1


def test_the_simulator_scheduler_survives_a_thread_reaching_the_barrier_between_two_looks():
    """CI saw StopIteration: the last running thread reached syncthreads after the scheduler had
    counted it as running, so there was no running thread left to wait on."""
    import simulator_poll

    thread = _BarrierThread()
    simulator_poll.watch([thread])
    assert thread.released and thread.looks >= 3
