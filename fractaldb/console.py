"""What every command shares, whoever defines it (the CLI or a family package):
progress on stderr and the ``--workers`` option.

On a terminal progress is a tqdm bar.  Off one (a log redirect, ``nohup``, CI, a
notebook) a bar would draw nothing, so :func:`progress_bar` gives a
:class:`LogProgress` instead: a plain line at most every :data:`LOG_EVERY`
seconds (and one at the end of a phase that logged), each with the phase, done/total, the rate and the
time left::

    generate (2 processes): 3,000/12,000 img, 410 img/s, ETA 22 s
"""

from __future__ import annotations

import sys
import time

import click

from .safety import check_workers

__all__ = ["progress_bar", "workers_option", "LogProgress", "LOG_EVERY", "say"]

#: Seconds between two progress lines off a terminal.
LOG_EVERY = 5.0

_PROGRESS = dict(file=sys.stderr, dynamic_ncols=True, disable=None, mininterval=0.5)


def _tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def say(text: str) -> None:
    """One line on stderr (what a long phase is about to do), flushed at once."""
    print(text, file=sys.stderr, flush=True)


def _duration(s: float) -> str:
    s = max(int(round(s)), 0)
    return f"{s} s" if s < 90 else f"{s // 60} min {s % 60:02d} s" if s < 5400 else f"{s / 3600:.1f} h"


class LogProgress:
    """Progress as plain log lines on stderr (see the module's text); the part of tqdm's
    interface the commands use (``update``, ``n``, ``close``, a context manager)."""

    def __init__(self, iterable=None, total=None, initial: int = 0, unit: str = "it", desc: str = "",
                 every: float | None = None, clock=time.monotonic, **_):
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.iterable, self.total, self.n, self.unit, self.desc = iterable, total, initial, unit, desc
        self._initial, self._every, self._clock = initial, every, clock
        self._start = self._last = clock()
        self._closed = False
        self._logged = False
        self._said = None  # the count the last line said

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self._clock()
        every = LOG_EVERY if self._every is None else self._every
        if now - self._last >= every:
            self._last, self._logged, self._said = now, True, self.n
            say(self.line(now))

    def __iter__(self):
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def set_description(self, desc: str, refresh: bool = True) -> None:
        self.desc = desc

    def set_postfix(self, *args, **kw) -> None:
        pass  # the line says done/total, rate and ETA; a bar's extra fields stay on the terminal

    def line(self, now: float | None = None) -> str:
        now = self._clock() if now is None else now
        dt = max(now - self._start, 1e-9)
        rate = (self.n - self._initial) / dt
        done = f"{self.n:,}/{self.total:,}" if self.total is not None else f"{self.n:,}"
        text = f"{self.desc}: {done} {self.unit}, {rate:,.1f} {self.unit}/s" if self.desc else \
            f"{done} {self.unit}, {rate:,.1f} {self.unit}/s"
        if self.total is not None and self.n < self.total:
            text += f", ETA {_duration((self.total - self.n) / rate)}" if rate > 0 else ", ETA unknown"
        elif self.total is not None:
            text += f", done in {_duration(dt)}"
        return text

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._logged and self._said != self.n:  # a phase that logged ends with a line; a short one is quiet
                say(self.line())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def progress_bar(**kw):
    """A tqdm bar on stderr on a terminal; :class:`LogProgress` lines off one."""
    if not _tty():
        return LogProgress(**kw)
    from tqdm import tqdm

    return tqdm(**{**_PROGRESS, **kw})


def _check_workers(ctx, param, value):
    if value is not None:
        check_workers(value)
    return value


def workers_option(f):
    """``--workers N`` (default: all cores)."""
    return click.option("--workers", type=int, default=None, callback=_check_workers,
                        help="Threads to use (default: all cores). Results do not depend on it.")(f)
