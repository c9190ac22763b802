"""Errors for people.

Every problem a user can cause raises :class:`FractalDBError` (or a subclass)
with a message that names the bad value, what is allowed and how to fix it.
The command line shows it as one line and exits with code 2; library users
can catch it as a ``ValueError``.
"""

from __future__ import annotations

__all__ = ["FractalDBError", "ConfigError", "InputError", "OutputError"]


class FractalDBError(ValueError):
    """Base class of every user-facing error."""


class ConfigError(FractalDBError):
    """A setting is outside its allowed range or of the wrong type."""


class InputError(FractalDBError):
    """An input file or directory is missing or malformed."""


class OutputError(FractalDBError):
    """The output location cannot be written."""
