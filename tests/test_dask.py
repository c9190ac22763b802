"""Generating on Dask: same bytes as one process, whatever happens to workers.

The clusters here are real (``LocalCluster`` with worker processes on
127.0.0.1), started by the tests themselves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from fractaldb import config  # noqa: E402
from fractaldb.dataset import generate  # noqa: E402

#: Big enough for a few seconds of work in 12 shards, small enough for CI.
OVERRIDES = ["categories=8", "points=20000", "image_size=96", "shard_size=8"]


def _files(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "data"
    generate(config.resolve("tiny", OVERRIDES), str(out), workers=1)
    return _files(out)


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, silence_logs=50) as cl, Client(cl) as client:
        yield cl, client


@pytest.mark.slow
def test_embedded_local_cluster_same_bytes(tmp_path, reference):
    out = tmp_path / "data"
    generate(config.resolve("tiny", OVERRIDES), str(out), workers=2, executor="dask")
    assert _files(out) == reference


#: Run in each worker (``client.run(exec, ...)``): shard tasks from 2 on wait for a file.
_HOLD = """
import os, time
import fractaldb.dataset as D
real = D.__dict__.setdefault("_unheld_shard_task", D.shard_task)
def held(ds, store, index, **kw):
    while index >= 2 and not os.path.exists({release!r}):
        time.sleep(0.01)
    return real(ds, store, index, **kw)
D.shard_task = held
"""
_UNHOLD = "import fractaldb.dataset as D; D.shard_task = D.__dict__.get('_unheld_shard_task', D.shard_task)"


@pytest.mark.slow
def test_existing_scheduler_with_a_killed_worker(tmp_path, reference, cluster):
    """Kill a worker process (SIGKILL) mid-run: the run finishes, the bytes don't change."""
    cl, client = cluster
    out = tmp_path / "data"
    errors = []
    # The workers hold shards 2.. until `release` exists: the kill lands mid-run, however fast the run.
    release = tmp_path / "release"
    client.run(exec, _HOLD.format(release=str(release)), {})

    def run():
        try:
            generate(config.resolve("tiny", OVERRIDES), str(out), workers=2, executor="dask",
                     scheduler=cl.scheduler_address)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=run)
    try:
        thread.start()
        # Wait until work is under way (a first shard is written), then kill a worker.
        deadline = time.time() + 120
        while time.time() < deadline and not list(out.glob("*.tar")):
            time.sleep(0.05)
        assert list(out.glob("*.tar")), "no shard appeared"
        assert thread.is_alive()
        pids = list(client.run(os.getpid).values())
        os.kill(pids[0], signal.SIGKILL)
    finally:
        release.touch()
        thread.join(timeout=300)
        client.run(exec, _UNHOLD, {})
    assert not thread.is_alive()
    assert not errors, errors
    assert _files(out) == reference


@pytest.mark.slow
def test_unreachable_scheduler_is_one_line_error(tmp_path):
    out = tmp_path / "data"
    run = subprocess.run([sys.executable, "-m", "fractaldb.cli.main", "generate", "--preset", "tiny",
                          "--out", str(out), "--executor", "dask", "--scheduler", "tcp://127.0.0.1:9"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach the Dask scheduler at tcp://127.0.0.1:9")
    assert not out.exists()


def test_unknown_executor_and_scheduler_without_dask(tmp_path):
    for extra, msg in ((["--executor", "spark"], "error: unknown executor 'spark'; choose local, processes, threads or dask"),
                       (["--scheduler", "tcp://127.0.0.1:9"], "error: --scheduler needs --executor dask")):
        run = subprocess.run([sys.executable, "-m", "fractaldb.cli.main", "generate", "--preset", "tiny",
                              "--out", str(tmp_path / "x"), *extra], capture_output=True, text=True)
        assert run.returncode == 2
        assert run.stderr.strip().splitlines() == [msg]
        assert not (tmp_path / "x").exists()


def test_dask_missing_says_how_to_install(tmp_path):
    """Without Dask installed, --executor dask names the extra to install (exit 2)."""
    code = ("import sys, builtins\n"
            "real = builtins.__import__\n"
            "def fake(name, *a, **k):\n"
            "    if name == 'distributed' or name.startswith('distributed.') or name == 'dask':\n"
            "        raise ImportError(name)\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = fake\n"
            "from fractaldb.cli.main import main\n"
            f"main(['generate', '--preset', 'tiny', '--out', {str(tmp_path / 'x')!r}, '--executor', 'dask'])\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == ["error: --executor dask needs Dask: pip install 'fractaldb[dask]'"]
    assert not (tmp_path / "x").exists()


def test_embedded_cluster_is_one_thread_per_process_and_says_so(tmp_path, reference):
    from distributed import Client

    labels, threads = [], []
    real = Client.__init__

    def spy(self, *args, **kwargs):  # the embedded cluster's client: record its workers' threads
        real(self, *args, **kwargs)
        threads.extend(w["nthreads"] for w in self.scheduler_info()["workers"].values())

    import unittest.mock

    with unittest.mock.patch.object(Client, "__init__", spy):
        generate(config.resolve("tiny", OVERRIDES), str(tmp_path / "data"), workers=2, executor="dask",
                 on_workers=labels.append)
    assert threads == [1, 1]
    assert labels == ["dask, 2 workers"]
    assert _files(tmp_path / "data") == reference


def test_a_cluster_of_multithreaded_workers_gets_a_note(tmp_path):
    import logging

    from distributed import LocalCluster

    notes = []
    handler = logging.Handler()
    handler.emit = lambda record: notes.append(record.getMessage())
    log = logging.getLogger("fractaldb")  # the command line's notes come from here (no propagation)
    log.addHandler(handler)
    try:
        with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1",
                          dashboard_address=None, silence_logs=50) as cl:
            generate(config.resolve("tiny", ["categories=2", "image_size=32", "points=600"]), str(tmp_path / "d"),
                     executor="dask", scheduler=cl.scheduler_address)
    finally:
        log.removeHandler(handler)
    assert any("--nthreads 1" in n for n in notes), notes
