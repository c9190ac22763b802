"""Workers: how many by default, and a pool of forked worker processes.

:class:`ProcessPool` runs ``fn(item)`` for a stream of items on N worker
processes forked from this one, each with its own copy of ``fn`` (pickled once,
as Dask would send it): the parent only sends items and receives results, so
nothing the workers do per item holds the parent's GIL.  It is what
``generate --workers N`` uses for shards on the CPU (:mod:`fractaldb.executors`).

Why forked processes and not a ``concurrent.futures.ProcessPoolExecutor``: the
pool must stop at once on Ctrl-C or SIGTERM (kill the workers, not wait for
them), report a worker killed from outside (out of memory) as one line, and
share memory slots with the workers (:class:`Slots`, the GPU pipeline), which
needs file descriptors inherited at fork.  Workers ignore SIGINT (a Ctrl-C in
the terminal reaches the whole process group: the parent decides), die with
the parent (``PR_SET_PDEATHSIG`` where Linux offers it, else a check of the
parent's pid every second), and never touch a GPU.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import pickle
import signal
import sys
from collections import deque

__all__ = ["default_workers", "ProcessPool", "WorkerDied", "fork_available", "Slots", "slot_view"]


def default_workers() -> int:
    """Cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def fork_available() -> bool:
    """Whether worker processes can be forked here (POSIX; not macOS, where fork is unsafe)."""
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods() and sys.platform != "darwin"


class WorkerDied(RuntimeError):
    """A worker process ended without an answer (killed from outside: out of memory, ``kill -9``)."""

    def __init__(self, item, exitcode):
        self.item, self.exitcode = item, exitcode
        killed = exitcode is not None and exitcode < 0 and -exitcode in signal.valid_signals()
        #: ``was killed by SIGKILL (out of memory?)``, ``exited with code 1``
        self.how = (f"was killed by {signal.Signals(-exitcode).name}" if killed else f"exited with code {exitcode}") \
            + (" (out of memory?)" if exitcode == -signal.SIGKILL else "")
        super().__init__(f"a worker process {self.how} while working on {item!r}")


_STOP = None
#: The parent's pid, seen by a worker (set after fork).
_PARENT = None


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (best effort)."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def _serve(conn, payload: bytes, parent: int, others) -> None:
    """A worker: ``fn(item)`` for every item received, ``(True, result)`` or ``(False, error)`` back."""
    global _PARENT
    _PARENT = parent
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    _die_with_parent()
    for c in others:  # the parent's ends of the other workers' pipes: not ours to hold open
        with contextlib.suppress(OSError):
            c.close()
    if os.getppid() != parent:  # the parent died before the request above
        os._exit(1)
    fn = pickle.loads(payload)
    while True:
        while not conn.poll(1.0):
            if os.getppid() != parent:
                os._exit(1)
        try:
            item = conn.recv()
        except EOFError:
            os._exit(1)
        if item is _STOP:
            break
        try:
            answer = (True, fn(item))
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
            answer = (False, _portable(exc))
        try:
            conn.send(answer)
        except (BrokenPipeError, EOFError, OSError):
            os._exit(1)
        except Exception as exc:  # an unpicklable result
            conn.send((False, _portable(exc)))
    conn.close()


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling (with the worker's traceback as a note), else a RuntimeError naming it."""
    import traceback

    if not hasattr(exc, "__notes__") or not any("worker process" in n for n in exc.__notes__):
        with contextlib.suppress(Exception):
            exc.add_note("in a worker process:\n" + "".join(traceback.format_exception(exc)).rstrip())
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


class ProcessPool:
    """``workers`` forked processes running ``fn`` (picklable) on items, results unordered.

    Use as a context manager; :meth:`map` yields ``fn(item)`` for every item in
    any order, with at most ``in_flight`` items queued per worker.  An exception
    in ``fn`` is re-raised in the parent (the workers are then killed); so is
    :class:`WorkerDied` when a worker vanishes.  Leaving the block by an
    exception, Ctrl-C or SIGTERM kills the workers at once (what they were
    writing is left under temporary names, which the next run removes); a
    normal exit stops them after their last item.

    Args:
        fn: the task; pickled once and unpickled in every worker, so each has
            its own copy (its own storage connections, say), as on Dask.
        workers: processes to fork.
        in_flight: items queued per worker (bounds what an error or an interrupt
            throws away, and the memory of work in flight).
    """

    def __init__(self, fn, workers: int, in_flight: int = 2):
        if not fork_available():  # pragma: no cover - the executors choose threads there
            raise RuntimeError("worker processes need fork(); use threads on this platform")
        self.workers = max(1, int(workers))
        self.in_flight = max(1, int(in_flight))
        self._payload = pickle.dumps(fn)
        self._procs = []  # (process, connection, queue of its items)
        self._started = False

    def start(self) -> "ProcessPool":
        """Fork the workers (done by :meth:`map` if not yet)."""
        if self._started:
            return self
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        sys.stdout.flush()
        sys.stderr.flush()  # buffered output must not be written again by a child
        self._started = True
        for _ in range(self.workers):
            ours, theirs = ctx.Pipe()
            others = [c for _, c, _ in self._procs]
            proc = ctx.Process(target=_serve, args=(theirs, self._payload, os.getpid(), others), daemon=True)
            proc.start()
            theirs.close()
            self._procs.append((proc, ours, deque()))
        return self

    def __enter__(self) -> "ProcessPool":
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is None:
            self.close()
        else:
            self.kill()

    def map(self, items, done=None):
        """``fn(item)`` for every item, in the order they finish; ``done(item)``, if given,
        is called when an item's answer is back, before the next item is taken."""
        self.start()
        from multiprocessing.connection import wait

        todo = iter(items)
        by_conn = {conn: (proc, queue) for proc, conn, queue in self._procs}
        try:
            for _, conn, queue in self._procs:
                self._feed(conn, queue, todo)
            while any(queue for _, _, queue in self._procs):
                busy = [(proc, conn) for proc, conn, queue in self._procs if queue]
                ready = wait([c for _, c in busy] + [p.sentinel for p, _ in busy])
                for conn in [r for r in ready if r in by_conn]:
                    proc, queue = by_conn[conn]
                    try:
                        ok, value = conn.recv()
                    except (EOFError, OSError):
                        proc.join(1.0)
                        raise WorkerDied(queue[0], proc.exitcode) from None
                    item = queue.popleft()
                    if done is not None:
                        done(item)
                    if not ok:
                        raise value
                    self._feed(conn, queue, todo)
                    yield value
                for proc, conn in busy:  # a sentinel: a worker that died without answering
                    if proc.sentinel in ready and not conn.poll():
                        proc.join(1.0)
                        raise WorkerDied(by_conn[conn][1][0], proc.exitcode)
        except BaseException:
            self.kill()
            raise

    def _feed(self, conn, queue, todo) -> None:
        while len(queue) < self.in_flight:
            item = next(todo, _STOP)
            if item is _STOP:
                return
            queue.append(item)
            conn.send(item)

    def close(self) -> None:
        """Stop the workers after their queued items (a normal end)."""
        for proc, conn, _ in self._procs:
            with contextlib.suppress(OSError, ValueError):
                conn.send(_STOP)
        for proc, conn, _ in self._procs:
            proc.join(10.0)
            if proc.is_alive():  # pragma: no cover - a worker stuck in its task
                proc.kill()
                proc.join(5.0)
            conn.close()
        self._procs = []

    def kill(self) -> None:
        """Kill every worker now (Ctrl-C, SIGTERM, an error): nothing waits for them."""
        for proc, _, _ in self._procs:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                proc.kill()
        for proc, conn, _ in self._procs:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                proc.join(5.0)
                conn.close()
        self._procs = []

    @property
    def pids(self) -> list:
        return [proc.pid for proc, _, _ in self._procs]


class Slots:
    """Shared memory the parent fills and the workers read: ``count`` slots, each a
    ``memfd`` (Linux) created before the workers are forked, so they inherit it;
    a slot grows when the parent needs more (never shrinks; past ``limit`` bytes
    in all is a one-line :class:`~fractaldb.errors.ConfigError`) and nothing is
    left in the file system, whatever happens to the processes.

    The parent writes a slot through :meth:`view` (after :meth:`reserve`), sends its
    number and size with the task, and reuses it only once the task's answer is back.
    """

    def __init__(self, count: int, limit: int | None = None):
        if not hasattr(os, "memfd_create"):  # pragma: no cover - Linux only
            raise RuntimeError("shared slots need os.memfd_create (Linux)")
        self.fds = [os.memfd_create(f"fractaldb-slot-{i}", getattr(os, "MFD_CLOEXEC", 0)) for i in range(count)]
        self.sizes = [0] * count
        self.limit = limit
        self._maps: dict = {}
        global _SLOT_FDS
        _SLOT_FDS = self.fds

    def reserve(self, slot: int, size: int):
        """Slot ``slot`` with room for ``size`` bytes, as a writable uint8 array of that size."""
        if size > self.sizes[slot]:
            new = max(size, self.sizes[slot] * 5 // 4)
            if self.limit is not None and sum(self.sizes) - self.sizes[slot] + size > self.limit:
                from .errors import ConfigError

                raise ConfigError(f"the GPU pipeline's {len(self.sizes)} shared shard buffers would pass "
                                  f"{self.limit / 2**30:.1f} GiB (the memory budget, FRACTALDB_MEMORY_GB); "
                                  "lower --workers or shard_size")
            new = size if self.limit is not None and sum(self.sizes) - self.sizes[slot] + new > self.limit else new
            os.ftruncate(self.fds[slot], new)
            self.sizes[slot] = new
        return self.view(slot, size)

    def view(self, slot: int, size: int):
        return _map(self.fds[slot], slot, size, self._maps)

    def close(self) -> None:
        for m in self._maps.values():
            with contextlib.suppress(Exception):
                m.close()
        self._maps.clear()
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = []


#: The slots' file descriptors, as a forked worker inherits them.
_SLOT_FDS: list = []
_WORKER_MAPS: dict = {}


def _map(fd: int, slot: int, size: int, cache: dict):
    """A uint8 array over the first ``size`` bytes of slot ``slot`` (its mapping cached
    until the slot grows past it: mapping and first-touching 100 MB costs ~30 ms)."""
    import numpy as np

    m = cache.get(slot)
    if m is None or len(m) < size:
        if m is not None:
            with contextlib.suppress(BufferError):
                m.close()
        total = max(size, os.fstat(fd).st_size)
        m = cache[slot] = mmap.mmap(fd, total) if total else None
    if m is None:
        return np.empty(0, dtype=np.uint8)
    return np.frombuffer(m, dtype=np.uint8, count=size)


def slot_view(slot: int, size: int):
    """In a worker: the first ``size`` bytes of shared slot ``slot`` (read-only use)."""
    return _map(_SLOT_FDS[slot], slot, size, _WORKER_MAPS)
