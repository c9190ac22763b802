"""What every command shares, whoever defines it (the CLI or a family package):
progress bars on stderr and the ``--workers`` option."""

from __future__ import annotations

import sys

import click

from .safety import check_workers

__all__ = ["progress_bar", "workers_option"]

_PROGRESS = dict(file=sys.stderr, dynamic_ncols=True, disable=None, mininterval=0.5)


def progress_bar(**kw):
    """A tqdm bar on stderr (hidden when stderr is not a terminal)."""
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
