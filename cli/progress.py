"""Progress bars of the command line: one tqdm configuration for every command.

A leaf module (it imports no other ``fractaldb.cli`` module), so the command
modules import it at the top without a cycle through ``cli/main.py``.
"""

from __future__ import annotations

import sys

#: Bars go to stderr (stdout stays for results), are off when stderr is not a terminal.
PROGRESS = dict(file=sys.stderr, dynamic_ncols=True, disable=None, mininterval=0.5)


def tqdm_bar(**kw):
    """A ``tqdm`` bar with :data:`PROGRESS` settings; ``kw`` adds to or overrides them."""
    from tqdm import tqdm

    return tqdm(**{**PROGRESS, **kw})
