"""Interrupts: SIGTERM is handled like Ctrl-C, and an interrupted command says what it kept.

:func:`install` (called by the command line) makes SIGTERM (and SIGHUP) raise
:class:`KeyboardInterrupt` in the main thread, so ``kill`` cleans up exactly as
Ctrl-C does: staging folders removed, queued shards cancelled, the lock
released.  :class:`Interrupted` is a ``KeyboardInterrupt`` carrying the line
the command prints (what was kept, how to resume).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["Interrupted", "install", "worker_pool", "abandon_workers"]


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
