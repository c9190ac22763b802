"""The index registry: one module per index format in this package, found by import.

An **index** is a derived file (or files) beside the shards that some reader needs:
a function of the manifest (and, for some, of the shards' bytes), never listed in
the manifest, always rebuildable with ``fractaldb index DIR --for NAME``.  Each
format is a subclass of :class:`Index` in its own module of
:mod:`fractaldb.indexes`, registered with :func:`register_index`; every module of
the package is imported when the registry is first asked, so a new index is one
new module.  The CLI's ``--for`` choices and ``generate --index`` come from here.
"""

from __future__ import annotations

import importlib
import os
import pkgutil

from ..errors import ConfigError

__all__ = ["Index", "register_index", "indexes", "get_index", "reader_names", "write_at_generate",
           "write_missing_at_generate", "check_at_generate"]

_REGISTRY: dict = {}
_LOADED = False


class Index:
    """One index format.  Subclasses set the attributes and implement :meth:`write`
    (indexes that read the shards implement :meth:`add_shard` and :meth:`finish`)."""

    #: The name ``--for`` takes.
    name: str = ""
    #: One line for ``--help``.
    help: str = ""
    #: Whether it reads every shard (``index`` then checks each shard's sha256 first).
    reads_shards: bool = False
    #: Whether ``generate`` writes it at the end of every run (else only when asked).
    at_generate: bool = False
    #: Whether it is the dataset card (``generate(card=False)`` skips it).
    is_card: bool = False
    #: The files it writes whatever the dataset (their absence means it was never written).
    files: tuple = ()

    def __init__(self, store, manifest: dict, dataset=None, asked: bool = False):
        self.store, self.manifest, self.dataset = store, manifest, dataset
        #: Whether a user asked for this index (``fractaldb index``), rather than ``generate``
        #: writing it by the way.
        self.asked = asked
        self.written: list = []
        self.pending: list = []

    def preflight(self) -> None:
        """Refuse, before anything is written, what this index must not overwrite (nothing by default)."""

    def put(self, name: str, data: bytes) -> None:
        """One file of the index, written (through the store's safe write) by :meth:`flush` once
        every shard was read and checked: a damaged shard leaves no index half written."""
        self.pending.append((name, data))

    def flush(self) -> list:
        """Write the files :meth:`put` gave; every name written so far."""
        for name, data in self.pending:
            self.store.write(name, data)
            self.written.append(name)
        self.pending = []
        return self.written

    def add_shard(self, tar_id: int, name: str, data: bytes) -> None:
        """One shard's bytes (checked against the manifest), in order (``reads_shards``)."""

    def write(self) -> None:
        """Write the files that need only the manifest (and the dataset)."""

    def finish(self) -> list:
        """Everything written, after :meth:`write` and every :meth:`add_shard`."""
        self.write()
        return self.flush()

    def check(self) -> list:
        """Problems of its files against the manifest (their meaning, not their bytes: older
        versions wrote fewer fields), for ``verify``; none by default (not checked)."""
        return []

    def rebuild_command(self) -> str:
        """The command that writes this index's files again."""
        return f"fractaldb index {self.store.url} --for {self.name}"

    def missing(self, name: str) -> str:
        return f"{name}: missing (a derived file: '{self.rebuild_command()}' writes it)"

    def mismatch(self, name: str) -> str:
        return f"{name}: does not match the manifest (a derived file: '{self.rebuild_command()}' writes it again)"


def register_index(cls):
    """Class decorator: add an :class:`Index` subclass under its ``name``."""
    if not (isinstance(cls, type) and issubclass(cls, Index) and cls.name):
        raise ConfigError(f"an index must be an Index subclass with a name, got {cls!r}")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ConfigError(f"an index named {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls
    return cls


def _load() -> None:
    """Import every module of this package (each registers its index)."""
    global _LOADED
    if not _LOADED:
        for info in pkgutil.iter_modules([os.path.dirname(__file__)]):
            if info.name != "registry":
                importlib.import_module(f"{__package__}.{info.name}")
        _LOADED = True


def indexes() -> dict:
    """``{name: Index subclass}`` of every known index, by name."""
    _load()
    return dict(sorted(_REGISTRY.items()))


def reader_names() -> tuple:
    """The names ``fractaldb index --for`` accepts."""
    return tuple(indexes())


def get_index(name: str):
    """The index ``name``, or a one-line :class:`ConfigError` naming the known ones."""
    known = indexes()
    if name not in known:
        raise ConfigError(f"unknown reader {name!r}; choose from {', '.join(known)}")
    return known[name]


def write_at_generate(store, manifest: dict, dataset, card: bool = True) -> list:
    """The indexes ``generate`` writes at the end of every run (``card``: the dataset card too)."""
    written = []
    for cls in indexes().values():
        if cls.at_generate and (card or not cls.is_card):
            written += cls(store, manifest, dataset).finish()
    return written


def write_missing_at_generate(store, manifest: dict, dataset) -> list:
    """The indexes ``generate`` writes of which a file is missing (``regenerate`` in a folder
    rebuilt shard by shard from its manifest); those present are left as they are."""
    written = []
    for cls in indexes().values():
        if cls.at_generate and any(not store.exists(name) for name in cls.files):
            written += cls(store, manifest, dataset).finish()
    return written


def check_at_generate(store, manifest: dict) -> list:
    """Problems of the derived files ``generate`` writes, against the manifest (``verify``);
    each names the command that writes the file again."""
    return [p for cls in indexes().values() if cls.at_generate for p in cls(store, manifest).check()]
