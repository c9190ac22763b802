"""Deprecated alias of :mod:`fractaldb.ifs.constants` (moved below the families in 0.3)."""

from ..._compat import alias_module

alias_module(__name__, "fractaldb.ifs.constants")
