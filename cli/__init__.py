"""The ``fractaldb`` command line (installed as ``fractaldb.cli``)."""
