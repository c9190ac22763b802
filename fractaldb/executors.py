"""Where shard tasks run: this machine's cores, or a Dask cluster.

An executor is a function ``run(task, indices)`` that yields ``task(i)`` for
every index, in any order.  A task is "make shard i" (a pure function of the
config and i, see :func:`fractaldb.dataset.shard_task`), so retrying it, or
running it twice after a lost worker, writes the same bytes.

* ``local``: a thread pool of ``workers`` threads (numba kernels release the GIL).
* ``dask``: one task per shard on a Dask cluster, retried on worker loss.
  Without ``--scheduler`` a ``LocalCluster`` of ``workers`` single-threaded
  processes is started on 127.0.0.1 (no server to start by hand); with
  ``--scheduler tcp://host:port`` the tasks go to that cluster, whose
  workers must reach the output location (a shared folder or a bucket).
"""

from __future__ import annotations

import contextlib
import itertools
from concurrent.futures import FIRST_COMPLETED, wait

from .errors import ConfigError
from .signals import worker_pool

__all__ = ["EXECUTORS", "executor"]

EXECUTORS = ("local", "dask")
#: Extra attempts of a task that raised (worker loss is handled by Dask itself).
TASK_RETRIES = 3
#: Tasks queued per worker: bounds what an interrupt or an error waits for.
IN_FLIGHT = 2
#: Address schemes a Dask scheduler can have.
SCHEDULER_SCHEMES = ("tcp", "tls", "inproc", "ucx", "ws", "wss")


def _local(workers: int):
    def run(fn, items):
        items = list(items)
        if workers == 1 or len(items) <= 1:
            for i in items:
                yield fn(i)
            return
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

    return run


@contextlib.contextmanager
def _dask(workers: int, scheduler: str | None):
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ConfigError("--executor dask needs Dask: pip install 'fractaldb[dask]'") from None
    import dask

    cluster = None
    try:
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
            else:
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None, silence_logs=50)
                client = Client(cluster)
    except ConfigError:
        raise

    def run(fn, items):
        futures = client.map(fn, list(items), pure=False, retries=TASK_RETRIES)
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:  # an error or Ctrl-C: queued shards are cancelled
            client.cancel([f for f in futures if not f.done()])

    try:
        yield run
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@contextlib.contextmanager
def executor(kind: str = "local", workers: int = 1, scheduler: str | None = None):
    """Context manager giving ``run(task, indices)`` for ``kind``."""
    if kind not in EXECUTORS:
        raise ConfigError(f"unknown executor {kind!r}; choose local or dask")
    if scheduler and kind != "dask":
        raise ConfigError("--scheduler needs --executor dask")
    if kind == "local":
        yield _local(workers)
    else:
        with _dask(workers, scheduler) as run:
            yield run
