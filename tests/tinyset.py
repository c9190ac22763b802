"""Shared helpers for the dataset tests: the ``tiny`` dataset, CLI runners, folder snapshots.

Not a test module.  ``tiny_dataset(tmp_path_factory)`` generates the ``tiny``
preset (4 classes x 12 images at 64x64, 3 shards) once per test session and
returns its folder; tests must treat it as read-only (copy it to change it).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

from fractaldb._jit import COMPILE_LINE

ROOT = Path(__file__).resolve().parents[1]

TINY_SHARDS = ["tiny-000000.tar", "tiny-000001.tar", "tiny-000002.tar"]
TINY_FILES = sorted(TINY_SHARDS + ["manifest.json", "wids-index.json", "_info.json", "README.md", "contact-sheet.png"])
TINY_SAMPLES = 48
TINY_CLASSES = 4

_CACHE: dict = {}


def tiny_dataset(tmp_path_factory) -> Path:
    """The ``tiny`` preset generated once (in-process, library API); read-only for tests."""
    if "tiny" not in _CACHE:
        from fractaldb.config import resolve
        from fractaldb.dataset import generate

        out = tmp_path_factory.mktemp("shared") / "tiny"
        generate(resolve("tiny"), str(out))
        _CACHE["tiny"] = out
        _CACHE["tiny-snapshot"] = snapshot(out)
    return _CACHE["tiny"]


def check_tiny_untouched() -> None:
    """Fail if a test changed the shared dataset."""
    if "tiny" in _CACHE:
        assert snapshot(_CACHE["tiny"]) == _CACHE["tiny-snapshot"], "a test modified the shared tiny dataset"


def copy_tiny(tmp_path_factory, dest: Path) -> Path:
    shutil.copytree(tiny_dataset(tmp_path_factory), dest)
    return dest


def snapshot(folder) -> dict:
    """``{relative path: bytes}`` of every file under ``folder``, hidden ones included."""
    folder = Path(folder)
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in files:
            p = Path(root) / name
            out[p.relative_to(folder).as_posix()] = p.read_bytes()
        for name in dirs:  # empty folders count too
            p = Path(root) / name
            if not any(p.iterdir()):
                out[p.relative_to(folder).as_posix() + "/"] = b""
    return out


def _simulator_run(name: str, procs: list) -> tuple:
    """``tests/NAME`` under numba's CUDA simulator in a fresh process: ``(returncode, stdout, stderr)``.

    ``NUMBA_ENABLE_CUDASIM`` must be set before numba is imported, and the
    test process has imported it already.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_ENABLE_CUDASIM", "RANK", "WORLD_SIZE")}
    env["NUMBA_ENABLE_CUDASIM"] = "1"
    proc = subprocess.Popen([sys.executable, "-m", "pytest", str(ROOT / "tests" / name), "-q", "-p",
                             "no:cacheprovider", "-o", "addopts="], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    procs.append(proc)
    try:
        stdout, stderr = proc.communicate(timeout=900)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    return proc.returncode, stdout, stderr


#: Simulator runs started early (see start_simulator_cases): name -> Future of _simulator_run.
_SIMULATOR: dict = {}
_SIMULATOR_POOL: list = []  # [ThreadPoolExecutor, [the Popen objects it started]]


def start_simulator_cases(names) -> None:
    """Start the simulator runs of ``names`` now, one after another on a background thread.

    The runs are minutes of single-threaded Python (the simulator runs every CUDA
    thread as a Python thread), each in its own process as before; ``conftest.py``
    starts them when the test loop starts and puts their tests last, so on a
    second core they overlap the rest of the run instead of following it.
    """
    from concurrent.futures import ThreadPoolExecutor

    names = [n for n in dict.fromkeys(names) if n not in _SIMULATOR]
    if not names:
        return
    if not _SIMULATOR_POOL:
        _SIMULATOR_POOL.extend([ThreadPoolExecutor(1, thread_name_prefix="cuda-simulator"), []])
    pool, procs = _SIMULATOR_POOL
    for name in names:
        _SIMULATOR[name] = pool.submit(_simulator_run, name, procs)


def stop_simulator_cases() -> None:
    """Cancel the simulator runs not started yet and end the running one (end of the session)."""
    if _SIMULATOR_POOL:
        pool, procs = _SIMULATOR_POOL
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        _SIMULATOR_POOL.clear()
    _SIMULATOR.clear()


def run_simulator_cases(name: str, at_least: int) -> None:
    """Run ``tests/NAME`` under numba's CUDA simulator in a subprocess and require
    ``at_least`` passed cases and nothing failed, errored or skipped.

    Waits for the run :func:`start_simulator_cases` started, or runs it now.
    """
    import re

    future = _SIMULATOR.get(name)
    returncode, stdout, stderr = future.result() if future is not None else _simulator_run(name, [])
    tail = (stdout + stderr)[-4000:]
    assert returncode == 0, tail
    summary = stdout.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= at_least, tail
    assert not re.search(r"failed|error|skipped", summary), tail


def run_cli(argv) -> tuple:
    """``fractaldb ARGV`` in-process: ``(exit code, stdout, stderr)``."""
    from fractaldb.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code
        else:  # pragma: no cover - main always exits
            code = None
    return code, out.getvalue(), err.getvalue()


def cli_command(argv) -> list:
    return [sys.executable, "-m", "fractaldb.cli.main", *map(str, argv)]


#: The command line, with its work held from a chosen task on until a file exists (see held_command).
_HELD = """\
import os, sys, threading, time
release, what, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.argv = ["fractaldb", *sys.argv[4:]]

def hold(real, index):
    def held(*args, **kwargs):
        if index(*args, **kwargs) >= start:
            while not (release and os.path.exists(release)):
                time.sleep(0.01)
        return real(*args, **kwargs)
    return held

if what == "shards":  # generate's tasks: fractaldb.dataset.shard_task(ds, store, index, device=...)
    from fractaldb import dataset
    dataset.shard_task = hold(dataset.shard_task, lambda ds, store, index, **kw: index)
else:  # render's blocks, numbered in the order their (category, weight) first starts
    from fractaldb.ifs.render import CPURenderer
    seen, lock = {}, threading.Lock()

    def number(renderer, category, ifs, weight, *args, **kwargs):
        with lock:
            return seen.setdefault((category, weight), len(seen))

    CPURenderer.render_block = hold(CPURenderer.render_block, number)
from fractaldb.cli.main import main
main()
"""


def held_command(argv, release=None, what: str = "shards", start: int = 2) -> list:
    """``fractaldb ARGV`` in a fresh interpreter, held at a point the test chooses.

    Shard tasks ``start`` and later (``what="shards"``: ``generate``), or render blocks
    (``what="blocks"``: ``render``; numbered by the order in which their (category,
    weight) first starts, so the size estimate's probe of the first block counts
    as that block) from number ``start`` on, wait until the file
    ``release`` exists (with ``release=None``, forever: the run can only end by a signal
    or an error).  The tasks before them run as usual, so a test can wait for their
    output and then interrupt, kill or break something while the run is certainly
    still going, however fast this machine or its numba cache is.  Everything else
    is the real command (``main()`` reads ``sys.argv``, as the installed script does).
    """
    assert what in ("shards", "blocks")
    return [sys.executable, "-c", _HELD, str(release or ""), what, str(start), *map(str, argv)]


def run_process(argv, env=None, timeout=180) -> subprocess.CompletedProcess:
    """The real command in a fresh interpreter."""
    return subprocess.run(cli_command(argv), capture_output=True, text=True, timeout=timeout,
                          env=None if env is None else {**os.environ, **env})


def assert_one_line_error(code, err, *fragments) -> str:
    """Exit 2, exactly one stderr line ``error: ...``, no traceback; returns the line."""
    assert code == 2, (code, err)
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if not ln.startswith(COMPILE_LINE)]  # a first run's word, before
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), lines[0]
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


def checked_to_torch(renderer, dev):
    """``renderer.to_torch(dev)`` checked to share ``dev``'s GPU memory (uint8, same shape).

    Returns ``None`` where ``to_torch`` must refuse -- under numba's CUDA
    simulator, or with a PyTorch that cannot see the GPU -- after checking the
    refusal's message.  For the CUDA renderers' cases.
    """
    import pytest

    from fractaldb.errors import ConfigError
    from fractaldb.ifs.kernels_cuda import SIMULATOR

    if SIMULATOR:  # simulated device arrays live in host memory: nothing to share
        with pytest.raises(ConfigError, match="to_torch needs a real GPU"):
            renderer.to_torch(dev)
        return None
    torch = pytest.importorskip("torch")  # pragma: no cover - real GPU only
    if not torch.cuda.is_available():  # pragma: no cover
        with pytest.raises(ConfigError, match="to_torch needs a CUDA build"):
            renderer.to_torch(dev)
        return None
    t = renderer.to_torch(dev)  # pragma: no cover
    assert t.is_cuda and tuple(t.shape) == tuple(dev.shape) and t.dtype == torch.uint8
    assert t.data_ptr() == dev.__cuda_array_interface__["data"][0]  # zero-copy
    return t


def hf_offline(tmp_path, monkeypatch):
    """Hugging Face ``datasets`` with every hub lookup off and ``HF_HOME`` under ``tmp_path``
    (skips when it is not installed); returns the module."""
    import pytest

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    return datasets


def load_webdataset_offline(files, tmp_path, monkeypatch):
    """``datasets.load_dataset("webdataset", ...)`` of ``files`` through :func:`hf_offline`,
    its cache under ``tmp_path``."""
    datasets = hf_offline(tmp_path, monkeypatch)
    return datasets.load_dataset("webdataset", data_files={"train": [str(f) for f in files]}, split="train",
                                 cache_dir=str(tmp_path / "hf-cache"))


def cuda_case_marks() -> list:
    """For a ``*_cuda_cases.py`` module: skip it unless CUDA runs (a GPU, or the simulator that
    the driver test turns on), else return its ``pytestmark``: splitmix64 and friends wrap around
    on purpose (NumPy scalars warn under the simulator) and tiny launches warn about occupancy."""
    import pytest
    from numba import cuda

    if not cuda.is_available():  # pragma: no cover - the driver tests set the simulator
        pytest.skip("needs a GPU or NUMBA_ENABLE_CUDASIM=1", allow_module_level=True)
    return [pytest.mark.filterwarnings("ignore::RuntimeWarning"), pytest.mark.filterwarnings("ignore:.*Grid size")]
