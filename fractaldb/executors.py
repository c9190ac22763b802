"""Where shard tasks run: this machine's processes or threads, or a Dask cluster.

An executor (:func:`executor`) gives ``run(task, indices)``, which yields
``task(i)`` for every index, in any order.  A task is "make shard i" (a pure
function of the config and i, see :func:`fractaldb.dataset.shard_task`), so
retrying it, or running it twice after a lost worker, writes the same bytes.

* ``processes``: ``workers`` worker processes forked from this one
  (:class:`fractaldb.parallel.ProcessPool`); each renders, encodes and packs
  whole shards, the parent only schedules and records.  Nothing per image holds
  the parent's GIL, so it scales with the cores.
* ``threads``: a pool of ``workers`` threads (numba kernels, deflate and
  hashing release the GIL; the Python between them does not, which caps a
  thread pool at about 1.4x on 2 cores and 3x on 16).  No start-up cost: it
  wins for small jobs.
* ``local`` (the default): one of the two, chosen per job by :func:`choose`.
* ``dask``: one task per shard on a Dask cluster, retried on worker loss.
  Without ``--scheduler`` a ``LocalCluster`` of ``workers`` single-threaded
  processes is started on 127.0.0.1 (no server to start by hand); with
  ``--scheduler tcp://host:port`` the tasks go to that cluster, whose
  workers must reach the output location (a shared folder or a bucket).

With ``device="cuda"`` and processes, shards go through a pipeline instead
(:meth:`Executor.pipeline`): this process renders them on the GPU into shared
memory, the worker processes encode and pack them, both at once.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
from collections import deque
from concurrent.futures import FIRST_COMPLETED, wait

from .errors import ConfigError
from .signals import worker_pool

__all__ = ["EXECUTORS", "executor", "Executor", "choose", "SMALL_JOB_SAMPLES"]

log = logging.getLogger("fractaldb")

#: ``local`` chooses processes or threads; the others are what they say.
EXECUTORS = ("local", "processes", "threads", "dask")
#: Extra attempts of a task that raised (worker loss is handled by Dask itself).
TASK_RETRIES = 3
#: Tasks queued per worker: bounds what an interrupt or an error waits for (threads)
#: or throws away (processes), and the shards in memory at once.
IN_FLIGHT = 2
#: Address schemes a Dask scheduler can have.
SCHEDULER_SCHEMES = ("tcp", "tls", "inproc", "ucx", "ws", "wss")
#: ``local`` runs a job on threads when it makes fewer images than this (or one shard):
#: forking workers and copying the dataset to them costs ~10-30 ms each, the
#: images of such a job about as much (benchmarks/bench_workers.py, docs/benchmarks.md).
SMALL_JOB_SAMPLES = 256
#: Shards the GPU pipeline renders per launch: a GPU renders ~2x more images per second
#: at 256 blocks per launch than at 25 (one 1000-image FractalDB shard), docs/gpu.md.
GPU_GROUP = 8


def choose(kind: str, workers: int, shards: int, samples: int, device: str = "cpu") -> str:
    """What ``kind`` runs as for a job of ``shards`` shards and ``samples`` images:
    ``processes``, ``threads``, ``inline`` (one worker or one shard: in this thread)
    or ``dask``."""
    from .parallel import fork_available

    if kind == "dask":
        return "dask"
    if workers <= 1 or shards <= 1:
        return "inline"
    if kind == "threads" or not fork_available() or (device == "cuda" and not hasattr(os, "memfd_create")):
        return "threads"  # the GPU pipeline shares memory through Linux memfds
    if kind == "processes":
        return "processes"
    return "threads" if samples < SMALL_JOB_SAMPLES else "processes"


def label(mode: str, workers: int, device: str = "cpu") -> str:
    """How a job runs, for the progress line: ``2 processes``, ``2 threads``, ``1 thread``."""
    def n(k, word):
        return f"{k} {word}" + ("" if k == 1 else ("es" if word.endswith("s") else "s"))

    gpu = "GPU + " if device == "cuda" else ""
    if mode == "processes":
        return gpu + n(workers, "process")
    if mode == "dask":
        return f"dask, {n(workers, 'worker')}"
    return gpu + n(workers if mode == "threads" else 1, "thread")


class Executor:
    """Runs shard tasks (see the module).  ``mode`` is fixed by :meth:`decide` once the
    job's size is known (``local``), and :attr:`label` says it for the progress line."""

    def __init__(self, kind: str, workers: int, client=None):
        self.kind, self.workers, self._client = kind, workers, client
        self.mode = "dask" if kind == "dask" else None
        self.device = "cpu"

    def decide(self, shards: int, samples: int, device: str = "cpu") -> str:
        """Fix processes, threads or inline for a job of this size; returns :attr:`label`."""
        self.device = device
        self.mode = choose(self.kind, self.workers, shards, samples, device)
        return self.label

    @property
    def label(self) -> str:
        workers = self._dask_workers() if self.mode == "dask" else self.workers
        return label(self.mode or "threads", workers, self.device)

    def _dask_workers(self) -> int:
        try:
            return len(self._client.scheduler_info().get("workers", {})) or self.workers
        except Exception:  # pragma: no cover - a scheduler gone away: say what was asked
            return self.workers

    def __call__(self, fn, items):
        return self.run(fn, items)

    def run(self, fn, items):
        """``fn(i)`` for every item, in any order (``fn`` picklable for processes and Dask)."""
        mode = self.mode or choose(self.kind, self.workers, 2, SMALL_JOB_SAMPLES)
        items = list(items)
        if mode == "dask":
            return self._run_dask(fn, items)
        if mode == "inline" or len(items) <= 1:
            return (fn(i) for i in items)
        if mode == "processes":
            return _run_processes(fn, items, self.workers)
        return _run_threads(fn, items, self.workers)

    def pipeline(self, render, pack, items, group: int = None):
        """The GPU pipeline: ``render(indices, slots, slot_of)`` here (one thread: it owns the
        GPU) renders up to ``group`` items at once into shared slots, ``pack(payload)`` runs
        on the worker processes, both at once; yields ``pack``'s results in any order.
        ``render`` returns one picklable payload per index, whose ``slot`` is the slot it
        filled (reused once ``pack`` answers).

        Shared memory holds ``workers * IN_FLIGHT + group`` slots (a shard's rasters each);
        more than :func:`fractaldb.safety.memory_budget` in all is a one-line error."""
        from .parallel import ProcessPool, Slots
        from .safety import memory_budget

        group = GPU_GROUP if group is None else max(1, group)
        items = list(items)
        workers = max(1, min(self.workers, len(items)))
        # When the renderer is asked for more, at most workers * IN_FLIGHT - 1 slots are in
        # use: ``group`` more are always free, so every launch can take ``group`` shards.
        slots = Slots(workers * IN_FLIGHT + group, limit=memory_budget())
        free = deque(range(len(slots.fds)))

        def rendered():
            todo = deque(items)
            while todo:
                if not free:  # pragma: no cover - the count above leaves ``group`` free
                    raise RuntimeError("the GPU pipeline ran out of shared slots")
                take = [todo.popleft() for _ in range(min(group, len(todo), len(free)))]
                yield from render(take, slots, {i: free.popleft() for i in take})

        try:
            with ProcessPool(pack, workers, in_flight=IN_FLIGHT) as pool:
                pool.start()  # fork before this process fills the slots
                yield from pool.map(rendered(), done=lambda payload: free.append(payload.slot))
        finally:
            slots.close()

    def _run_dask(self, fn, items):
        from distributed import as_completed

        futures = self._client.map(fn, items, pure=False, retries=TASK_RETRIES)
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:  # an error or Ctrl-C: queued shards are cancelled
            self._client.cancel([f for f in futures if not f.done()])


def _run_threads(fn, items, workers: int):
    # At most IN_FLIGHT * workers tasks submitted; on an error, Ctrl-C or the
    # consumer stopping, queued tasks are cancelled and only running ones finish.
    todo = iter(items)
    with worker_pool(workers) as pool:
        pending = {pool.submit(fn, i) for i in itertools.islice(todo, IN_FLIGHT * workers)}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                pending |= {pool.submit(fn, i) for i in itertools.islice(todo, 1)}
                yield future.result()


def _run_processes(fn, items, workers: int):
    import pickle

    from .errors import OutputError
    from .parallel import ProcessPool, WorkerDied

    try:
        pool = ProcessPool(fn, min(workers, len(items)), in_flight=IN_FLIGHT)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:  # a plug-in's classes, say
        log.warning("the shard task cannot be sent to worker processes (%s); running on %d threads",
                    str(exc).split("\n")[0][:200], workers)
        yield from _run_threads(fn, items, workers)
        return
    try:
        with pool:
            yield from pool.map(items)
    except WorkerDied as exc:
        raise OutputError(f"a worker process {exc.how} while making shard {exc.item}; nothing half-written is "
                          "kept: run the same command with --resume (with fewer --workers if memory is short)") from None


@contextlib.contextmanager
def _dask(workers: int, scheduler: str | None):
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError("--executor dask needs Dask: pip install 'fractaldb[dask]'") from None
    import dask

    cluster = None
    with dask.config.set({"distributed.worker.daemon": False, "logging.distributed": "error"}):
        if scheduler:
            scheme = scheduler.split("://", 1)[0] if "://" in scheduler else "tcp"
            if scheme not in SCHEDULER_SCHEMES:
                raise ConfigError(f"--scheduler {scheduler}: unknown address scheme {scheme!r}; use "
                                  f"{' or '.join(s + '://host:port' for s in SCHEDULER_SCHEMES[:2])}")
            try:
                client = Client(scheduler, timeout="10s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise ConfigError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); "
                                  "check the address or start one with 'dask scheduler'") from None
            _note_threads(client)
        else:
            # One thread per worker process: a shard task holds the GIL between its kernels.
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=None, silence_logs=50)
            client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _note_threads(client) -> None:
    """A note when the cluster's workers run several threads each: for CPU generation one
    thread per process is faster (a shard task holds the GIL between its kernels)."""
    try:
        threads = {w.get("nthreads", 1) for w in client.scheduler_info().get("workers", {}).values()}
    except Exception:  # pragma: no cover - an odd scheduler: no note
        return
    if threads and max(threads) > 1:
        log.warning("the Dask workers run up to %d threads each; for CPU generation start them with "
                    "'dask worker ... --nthreads 1 --nworkers auto' (one process per core is faster)", max(threads))


@contextlib.contextmanager
def executor(kind: str = "local", workers: int = 1, scheduler: str | None = None):
    """Context manager giving an :class:`Executor` (callable as ``run(task, indices)``) for ``kind``."""
    if kind not in EXECUTORS:
        raise ConfigError(f"unknown executor {kind!r}; choose {', '.join(EXECUTORS[:-1])} or {EXECUTORS[-1]}")
    if scheduler and kind != "dask":
        raise ConfigError("--scheduler needs --executor dask")
    if kind == "dask":
        with _dask(workers, scheduler) as client:
            yield Executor(kind, workers, client)
    else:
        yield Executor(kind, workers)
