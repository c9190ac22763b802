"""Fixtures shared by the test modules, and the numba cache of the test run."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The test run's numba cache (gitignored): one folder per state of the sources, see below.
NUMBA_CACHE = ROOT / ".numba-cache"


def _numba_cache_dir() -> Path:
    """``.numba-cache/KEY``: KEY hashes every source file of ``fractaldb`` and the versions
    of Python, numba, llvmlite and NumPy.

    Why not numba's default (``__pycache__`` beside each kernel file): numba checks
    only the cached function's own file, so after an edit of a kernel that others
    call from other files (``fractaldb/kernels/random.py``'s ``splitmix64`` is
    inlined into every family's kernels) the callers' cached machine code is
    stale, and the tests would pass on the old code.  A key over all sources makes
    any edit start a cold cache; an unchanged checkout reuses its compiles from
    the previous run.  A clean clone starts cold.  The folder is set through
    ``NUMBA_CACHE_DIR``, so the CLI processes, the ``NUMBA_DISABLE_JIT`` reruns
    and the CUDA-simulator runs the tests start inherit it.
    """
    h = hashlib.sha256(sys.version.encode())
    for dist in ("numba", "llvmlite", "numpy"):
        h.update(f"{dist}=={metadata.version(dist)}\n".encode())
    for path in sorted((ROOT / "fractaldb").rglob("*.py")):
        h.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return NUMBA_CACHE / h.hexdigest()[:16]


def _use_one_numba_cache() -> None:
    if "NUMBA_CACHE_DIR" in os.environ:  # the caller's choice (e.g. a CI cache) wins
        return
    folder = _numba_cache_dir()
    if NUMBA_CACHE.is_dir():  # the caches of other source states are stale: drop them
        for old in NUMBA_CACHE.iterdir():
            if old != folder:
                shutil.rmtree(old, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    if "numba" in sys.modules:  # pragma: no cover - a plugin imported numba first: tell it too
        from numba.core import config

        config.CACHE_DIR = str(folder)


# Before any test module imports numba (numba reads NUMBA_CACHE_DIR when it is imported).
_use_one_numba_cache()

if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":  # the simulator runs: a block scheduler that sleeps
    import simulator_poll

    simulator_poll.install()

from tinyset import (check_tiny_untouched, start_simulator_cases, stop_simulator_cases,  # noqa: E402
                     tiny_dataset)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The ``tiny`` preset's dataset, generated once per session; must stay untouched."""
    path = tiny_dataset(tmp_path_factory)
    yield path
    check_tiny_untouched()


# -- the CUDA-simulator runs overlap the rest of the run ------------------------------------------

@pytest.hookimpl(trylast=True)  # after -m / -k have deselected
def pytest_collection_modifyitems(config, items):
    """Tests marked ``simulator_cases(NAME)`` go last: their runs start in the background (below)."""
    items[:] = ([i for i in items if not i.get_closest_marker("simulator_cases")]
                + [i for i in items if i.get_closest_marker("simulator_cases")])


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session):
    if session.config.option.collectonly:
        return
    start_simulator_cases([i.get_closest_marker("simulator_cases").args[0] for i in session.items
                           if i.get_closest_marker("simulator_cases")])


def pytest_sessionfinish(session):
    stop_simulator_cases()
