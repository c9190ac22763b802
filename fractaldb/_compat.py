"""Deprecated module paths: a module that moved keeps its old name as an alias."""

from __future__ import annotations

import importlib
import sys
import warnings


def alias_module(old: str, new: str) -> None:
    """Make the module being imported as ``old`` the module ``new`` (same object, every
    name), with a :class:`DeprecationWarning` naming the new path.  Called as the only
    statement of the old module's file."""
    warnings.warn(f"{old} moved to {new}; import it from there", DeprecationWarning, stacklevel=3)
    sys.modules[old] = importlib.import_module(new)
