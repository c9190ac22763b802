"""Interrupts: SIGTERM is handled like Ctrl-C, and an interrupted command says what it kept.

:func:`install` (called by the command line) makes SIGTERM (and SIGHUP) raise
:class:`KeyboardInterrupt` in the main thread, so ``kill`` cleans up exactly as
Ctrl-C does: staging folders removed, queued shards cancelled, the lock
released.  :class:`Interrupted` is a ``KeyboardInterrupt`` carrying the line
the command prints (what was kept, how to resume).  :func:`deferred` holds an
interrupt back while a short step that must not be cut in half runs (a folder
renamed into place, a staging folder removed), then delivers it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["Interrupted", "install", "deferred", "worker_pool", "abandon_workers"]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM, with what was kept and how to go on (the message)."""


def _raise(signum, frame):
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def install() -> None:
    """SIGTERM and SIGHUP raise KeyboardInterrupt (main thread only; a no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, _raise)


_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


@contextlib.contextmanager
def deferred():
    """Run the block with Ctrl-C, SIGTERM and SIGHUP held back; the first that arrived
    meanwhile is delivered to its own handler when the block ends.

    For the steps of the safe-write layer that must never be cut in half: swapping a
    finished folder into place, removing a staging folder.  Only in the main thread
    (elsewhere signals are not delivered anyway); nested blocks defer to the outermost.
    """
    if threading.current_thread() is not threading.main_thread() or getattr(_STATE, "depth", 0):
        _STATE.depth = getattr(_STATE, "depth", 0) + 1
        try:
            yield
        finally:
            _STATE.depth -= 1
        return
    caught = []
    saved = {}
    for name in _SIGNALS:
        sig = getattr(signal, name, None)
        if sig is None:
            continue
        old = signal.getsignal(sig)
        if old in (signal.SIG_IGN, None):
            continue  # ignored anyway
        saved[sig] = old
        signal.signal(sig, lambda signum, frame: caught.append(signum))
    _STATE.depth = 1
    try:
        yield
    finally:
        _STATE.depth = 0
        for sig, old in saved.items():
            signal.signal(sig, old)
        if caught:  # delivered now, to the handler it was meant for
            signal.raise_signal(caught[0])


_STATE = threading.local()


@contextlib.contextmanager
def worker_pool(workers: int):
    """A thread pool that an interrupt does not wait for: on Ctrl-C/SIGTERM (or the
    consumer going away) queued tasks are cancelled and running ones are left to
    the process exit; on an error, queued tasks are cancelled and running ones
    finish; otherwise it is shut down normally."""
    pool = ThreadPoolExecutor(workers)
    try:
        yield pool
    except (KeyboardInterrupt, GeneratorExit):
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    else:
        pool.shutdown(wait=True)


def abandon_workers() -> bool:
    """Whether threads other than this one are still running (tasks an interrupt left):
    the command line then exits at once instead of waiting for them."""
    return any(t is not threading.current_thread() and t.is_alive() and not t.daemon for t in threading.enumerate())
