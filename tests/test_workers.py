"""Process-parallel generation (issue 24): worker processes make the same bytes as one
worker and as threads, the executor chooses and says what runs, and faults inside a
worker (an error, a ``kill -9``) end as one line with everything kept for ``--resume``.

Dask against local is in tests/test_dask.py and tests/test_encode_determinism.py;
Ctrl-C and SIGTERM of a process-parallel run in tests/test_adversarial_faults.py
(its run is large enough that ``local`` chooses processes: checked below).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from fractaldb import config, executors
from fractaldb.dataset import generate
from fractaldb.errors import ConfigError
from fractaldb.parallel import ProcessPool, Slots, WorkerDied, fork_available

from tinyset import ROOT, assert_one_line_error, cli_command, run_cli, run_process, run_simulator_cases

pytestmark = pytest.mark.skipif(not fork_available(), reason="worker processes need fork()")

#: 96 images in 12 shards: several shards per worker, quick.
SMALL = ["fractal.categories=8", "shard_size=8"]


def _files(folder) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(folder).iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "one"
    generate(config.resolve("tiny", SMALL), str(out), workers=1)
    return _files(out)


@pytest.mark.parametrize("executor,workers", [("processes", 2), ("processes", 3),
                                              pytest.param("processes", 16, marks=pytest.mark.slow),
                                              ("threads", 2), ("local", 2)])
def test_same_bytes_as_one_worker(tmp_path, reference, executor, workers):
    labels = []
    generate(config.resolve("tiny", SMALL), str(tmp_path / "out"), workers=workers, executor=executor,
             on_workers=labels.append)
    assert _files(tmp_path / "out") == reference
    want = {"processes": f"{workers} processes", "threads": "2 threads", "local": "2 threads"}[executor]
    assert labels == [want]  # 96 images: a small job, local runs it on threads


def test_mixed_families_with_records_same_bytes_on_processes(tmp_path):
    """Two families in every shard, and fractal blocks with degenerate-variant records."""
    cfg = config.resolve("fractal+perlin", ["categories=3", "weights=0.4", "patches=2", "image_size=32",
                                            "points=600", "perlin_classes=3", "perlin_instances=4", "shard_size=8"])
    one = generate(cfg, str(tmp_path / "one"), workers=1)
    many = generate(cfg, str(tmp_path / "many"), workers=3, executor="processes")
    assert one == many and _files(tmp_path / "one") == _files(tmp_path / "many")
    assert one["plan"]["shards"] >= 4


def test_local_chooses_by_job_size():
    choose = executors.choose
    assert choose("local", 1, 100, 10**6) == "inline"
    assert choose("local", 8, 1, 10**6) == "inline"  # one shard: nothing to share
    assert choose("local", 2, 3, 48) == "threads"  # the tiny preset: forking costs more than it saves
    assert choose("local", 2, 8, executors.SMALL_JOB_SAMPLES) == "processes"
    assert choose("threads", 2, 8, 10**6) == "threads"
    assert choose("processes", 2, 3, 48) == "processes"
    assert choose("dask", 1, 1, 1) == "dask"
    assert executors.label("processes", 16, "cuda") == "GPU + 16 processes"
    assert executors.label("threads", 1) == "1 thread"


def test_unknown_executor_is_one_line(tmp_path):
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", tmp_path / "o", "--executor", "forks"])
    assert_one_line_error(code, err, "error: unknown executor 'forks'; choose local, processes, threads or dask")
    assert not (tmp_path / "o").exists()


def test_the_estimate_line_says_what_runs(tmp_path, monkeypatch):
    from fractaldb import estimate

    monkeypatch.setattr(estimate, "LONG_S", 0.0)
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", tmp_path / "g", "--workers", "2",
                            "--executor", "processes"])
    assert code == 0, err
    lines = err.splitlines()
    at = next(i for i, x in enumerate(lines) if x.startswith("estimate:"))  # said before the search
    assert "shards on 2 processes" in lines[at + 1:], err


# -- the pool itself --------------------------------------------------------------------------------

def _square(x):
    return x * x


def _fail_on_3(x):
    if x == 3:
        raise ConfigError("three is not allowed; use another number")
    return x


def _bug(x):
    return {}[x]


def test_pool_yields_every_result_once():
    with ProcessPool(_square, 3) as pool:
        assert sorted(pool.map(range(50))) == [i * i for i in range(50)]


def test_pool_reraises_a_worker_s_error_as_it_is():
    with pytest.raises(ConfigError, match="three is not allowed"):
        with ProcessPool(_fail_on_3, 2) as pool:
            list(pool.map(range(10)))
    with pytest.raises(KeyError) as info:  # a bug keeps the worker's traceback as a note
        with ProcessPool(_bug, 2) as pool:
            list(pool.map(range(3)))
    assert any("in a worker process" in note and "_bug" in note for note in info.value.__notes__)


def _slow(x):
    time.sleep(30)
    return x


def test_a_killed_worker_is_reported_not_waited_for():
    pool = ProcessPool(_slow, 2)
    pool.start()
    victim = pool.pids[0]
    results = pool.map(range(4))
    os.kill(victim, signal.SIGKILL)
    start = time.monotonic()
    with pytest.raises(WorkerDied, match="killed by SIGKILL"):
        next(results)
    assert time.monotonic() - start < 10
    assert pool.pids == []  # the other worker was killed too


def test_stopping_early_kills_the_workers():
    pool = ProcessPool(_slow, 2)
    pool.start()
    pids = pool.pids
    results = pool.map(range(4))
    with pytest.raises(TimeoutError):
        signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError()))
        signal.alarm(1)
        try:
            next(results)
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reaped: killed and joined


def test_slots_grow_and_refuse_past_their_limit():
    slots = Slots(2, limit=1000)
    try:
        view = slots.reserve(0, 100)
        view[:] = np.arange(100, dtype=np.uint8)
        assert np.array_equal(slots.reserve(0, 400)[:100], np.arange(100))  # grown, content kept
        with pytest.raises(ConfigError, match="lower --workers or shard_size"):
            slots.reserve(1, 700)
    finally:
        slots.close()


# -- faults through the command line -------------------------------------------------------------

#: Large enough that local chooses processes (the interrupt tests' run, tests/test_adversarial_faults.py).
SLOW = ["--preset", "tiny", "--set", "fractal.patches=50", "--set", "fractal.points=300000",
        "--set", "fractal.image_size=128", "--set", "shard_size=16", "--workers", "2"]


def test_the_interrupt_tests_run_on_processes():
    from fractaldb.families import get_family

    cfg = config.resolve("tiny", ["fractal.patches=50", "shard_size=16"])
    layout = get_family("fractal").bind(cfg.settings("fractal"), ())  # the layout needs no classes
    samples = cfg["fractal"]["categories"] * layout.blocks_per_class * layout.images_per_block
    assert executors.choose("local", 2, samples // 16, samples) == "processes"


def _children(pid: int) -> list:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@pytest.mark.slow
def test_a_worker_killed_mid_run_is_one_line_and_resume_completes(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(cli_command(["generate", *SLOW, "--out", out, "--executor", "processes"]),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    progress = out / ".fractaldb-progress"
    end = time.monotonic() + 120
    while not (progress.is_dir() and list(progress.glob("*.tar.json"))):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end
        time.sleep(0.05)
    kids = _children(proc.pid)
    assert kids, "no worker processes"
    os.kill(kids[0], signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert_one_line_error(2, err, "a worker process was killed by SIGKILL", "--resume")
    assert not (out / ".fractaldb-lock").exists()
    done = run_process(["generate", *SLOW, "--out", out, "--resume"])
    assert done.returncode == 0, done.stderr
    assert run_process(["verify", out]).returncode == 0


# -- the GPU pipeline (numba's CUDA simulator) ---------------------------------------------------

@pytest.mark.slow
def test_gpu_pipeline_cases_in_the_simulator():
    run_simulator_cases("pipeline_cases.py", at_least=3)


# -- object storage: every worker process opens its own connection ----------------------------------

@pytest.mark.slow
def test_processes_write_to_s3_the_bytes_of_a_local_run(tmp_path):
    boto3 = pytest.importorskip("boto3")
    pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
               "FSSPEC_S3_ENDPOINT_URL": endpoint, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        client.create_bucket(Bucket="workers")
        argv = ["generate", "--preset", "tiny", *(x for kv in SMALL for x in ("--set", kv)), "--workers", "3",
                "--executor", "processes"]
        run = run_process([*argv, "--out", "s3://workers/data"], env=env)
        assert run.returncode == 0, run.stderr
        generate(config.resolve("tiny", SMALL), str(tmp_path / "local"), workers=1)
        got = {o["Key"].split("/", 1)[1]: client.get_object(Bucket="workers", Key=o["Key"])["Body"].read()
               for o in client.list_objects_v2(Bucket="workers", Prefix="data/")["Contents"]}
        assert {k: hashlib.sha256(v).hexdigest() for k, v in got.items()} == _files(tmp_path / "local")
    finally:
        server.stop()


def test_a_task_that_cannot_be_pickled_runs_on_threads_with_a_note():
    import logging
    import threading

    notes = []
    handler = logging.Handler()
    handler.emit = lambda record: notes.append(record.getMessage())
    log = logging.getLogger("fractaldb")
    log.addHandler(handler)
    lock = threading.Lock()  # not picklable: the closure cannot go to another process
    try:
        with executors.executor("processes", 2) as ex:
            ex.decide(4, 10**6)
            got = sorted(ex.run(lambda i: (lock, i)[1] * 2, range(4)))
    finally:
        log.removeHandler(handler)
    assert got == [0, 2, 4, 6]
    assert any("cannot be sent to worker processes" in n for n in notes), notes
