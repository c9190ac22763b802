"""One settings schema for every key a user can set.

Dataset keys (:class:`fractaldb.config.DatasetSettings`), each family's section
(its ``settings`` dataclass) and training keys (:class:`fractaldb.train.config.TrainSettings`)
are all frozen dataclasses whose fields are made with :func:`setting`: the
default, the help text, the allowed values in words and a check live on the
field, and everything else derives from it -- preset validation
(:func:`coerce`), ``fractaldb presets show``, error messages, and the command
line's options (:func:`option`: type, choices, default shown and help).

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class S:
...     size: int = setting(64, "Image side.", "an integer in 8..4096", lambda v: 8 <= v <= 4096)
>>> settings_of(S)["size"].default
64
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .safety import check_bound

__all__ = ["setting", "Setting", "settings_of", "coerce", "defaults", "option"]


def setting(default, help: str, allowed: str | None = None, check=None, kind=None, choices=None, bound=True):
    """A dataclass field of a settings schema.

    Args:
        default: the default value (a list is copied for each instance).
        help: one line for ``--help``, ``presets show`` and docs.
        allowed: the allowed values in words (error messages); derived from ``choices``
            when omitted.
        check: ``check(value) -> bool`` beyond the type; derived from ``choices`` when omitted.
        kind: the YAML type a preset gives (``int``, ``float``, ``str``, ``bool``, ``list`` or
            ``"range"`` for a ``[low, high]`` pair); by default the default value's type.
        choices: the allowed values, when they are a fixed list (the CLI offers them).
        bound: check an integer against the memory and count bounds
            (:func:`fractaldb.safety.check_bound`); False for identifiers such as seeds.
    """
    if choices is not None:
        choices = tuple(choices)
        allowed = allowed or " | ".join(map(str, choices))
        check = check or (lambda v, c=choices: v in c)
    meta = {"help": help, "allowed": allowed or "", "check": check, "kind": kind or type(default),
            "choices": choices, "bound": bound}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class Setting:
    """One key of a schema, as :func:`settings_of` lists it."""

    name: str
    kind: Any
    default: Any
    help: str
    allowed: str
    check: Any
    choices: tuple | None = None
    bound: bool = True


def settings_of(cls) -> dict:
    """``{key: Setting}`` of a settings dataclass, in declaration order (fields made
    with :func:`setting` only)."""
    out = {}
    for f in dataclasses.fields(cls):
        if "help" not in f.metadata:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        m = f.metadata
        out[f.name] = Setting(f.name, m["kind"], default, m["help"], m["allowed"], m["check"], m.get("choices"),
                              m.get("bound", True))
    return out


def defaults(cls) -> dict:
    """``{key: default}`` of a settings dataclass (fresh copies of lists)."""
    return {k: s.default for k, s in settings_of(cls).items()}


def coerce(setting: Setting, value, where: str):
    """``value`` checked and converted to the setting's kind, or :class:`ConfigError`
    naming ``where``, the allowed values and what was given."""
    kind, allowed = setting.kind, setting.allowed
    bad = ConfigError(f"{where} must be {allowed}, got {value!r}")
    if kind == "range":
        if not (isinstance(value, (list, tuple)) and len(value) == 2
                and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)):
            raise bad
        value = list(value)
    elif kind is list:
        if not isinstance(value, (list, tuple)):
            raise bad
        value = list(value)
    elif kind is bool:
        if not isinstance(value, bool):
            raise bad
    else:
        if kind is str and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)  # weights: 0.4 written without quotes
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise bad
    try:
        ok = setting.check is None or setting.check(value)
    except (TypeError, ValueError):  # a list of the wrong things, say
        ok = False
    if not ok:
        raise bad
    if setting.bound:
        check_bound(setting.name, value, where)  # every count and size is bounded by memory
    return value


def option(setting: Setting, *, flag: str | None = None, default=None, show_default: bool = True, help=None,
           dest: str | None = None, **extra):
    """A ``click`` option for ``setting``: its type, its choices, its default and its help.

    ``default`` None (the usual case for commands whose defaults come from a preset or
    recipe) shows the schema's default in the help text; ``default=...`` sets a real one.
    ``flag`` and ``dest`` rename the option and its parameter (default: the key's).
    """
    import click

    name = flag or "--" + setting.name.replace("_", "-")
    types = {int: int, float: float, str: str}
    if setting.kind is bool:
        stem = name[2:]
        decls = [f"--{stem}/--no-{stem}"]
        kw = {}
    else:
        decls = [name]
        kw = {"type": click.Choice(setting.choices) if setting.choices else types.get(setting.kind, str)}
    kw.update(extra)
    if kw.get("type", "") is None:
        del kw["type"]
    text = help or setting.help
    if default is None and show_default and setting.default not in (None, "", []):
        shown = ",".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in setting.default) \
            if isinstance(setting.default, list) else setting.default
        text = f"{text} [default: {shown}]"
    return click.option(*decls, dest or setting.name, default=default, show_default=default is not None, help=text,
                        **kw)
