"""The ``fractaldb`` command line (installed as ``fractaldb.cli``).

:func:`run` is the installed entry point: it imports the command line itself, so
a Ctrl-C while Python is still loading it (click, the package) is the same one
line and exit code as one during a command, not a traceback.
"""

import sys


def run() -> None:
    """``fractaldb``: :func:`fractaldb.cli.main.main`, with an interrupt during start-up one line."""
    try:
        from .main import main
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.stderr.flush()
        raise SystemExit(130)
    main()
