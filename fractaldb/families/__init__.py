"""The family registry: families are found through the ``fractaldb.families``
entry-point group, the built-in ones exactly as a third-party package's.

>>> from fractaldb.families import list_families, get_family
>>> list_families()[:3]
['colorfractal', 'fractal', 'fractal3d']

A package adds a family by declaring, in its ``pyproject.toml``::

    [project.entry-points."fractaldb.families"]
    myfamily = "mypackage.myfamily:MyFamily"

where ``MyFamily`` is a :class:`~fractaldb.families.base.Family` subclass (or an
instance of one) whose ``name`` is the entry point's name.  Nothing in
fractaldb names a family: presets, plan, shards, loaders, preview, export, card,
CLI and the transfer study loop over :func:`list_families` or ask
:func:`get_family` by the name a preset or manifest gives.  A family is imported
only when it is first asked for (listing names imports none).
:func:`register_family` adds a family object directly (a script or a test).

Order (listings, messages): the ``fractaldb`` distribution's families by name, then
every other distribution's, by distribution and family name; families given to
:func:`register_family` after them.  Nothing written to a dataset depends on it (a
dataset's label order is its config's ``families`` list).
"""

from __future__ import annotations

import difflib
import threading
from importlib import metadata

from ..errors import ConfigError
from ..gpu import DEVICES, check_device
from .base import BoundFamily, Family, RenderedBlock, Renderer, StudyArm

__all__ = ["Family", "BoundFamily", "Renderer", "RenderedBlock", "StudyArm", "register_family", "get_family",
           "create_family", "unregister_family", "list_families", "all_families", "create_renderer", "family_of_config",
           "legacy_default_family", "category_reader", "check_device",
           "ENTRY_POINT_GROUP", "DEVICES"]

#: The entry-point group families register in.
ENTRY_POINT_GROUP = "fractaldb.families"

_LOCK = threading.RLock()
_LOADED: dict = {}      # name -> Family (loaded or registered)
_ENTRIES: dict = {}     # name -> entry point, not loaded yet
_ORDER: list = []       # every known name, in order
_DISCOVERED = False


def _discover() -> None:
    """Read the entry points once (names only: nothing is imported)."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    with _LOCK:
        if _DISCOVERED:
            return
        found = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
        own = sorted((ep for ep in found if _dist_name(ep) == "fractaldb"), key=lambda e: e.name)
        others = sorted((ep for ep in found if _dist_name(ep) != "fractaldb"), key=lambda e: (_dist_name(e), e.name))
        for ep in own + others:
            if ep.name in _ENTRIES and _ENTRIES[ep.name].value != ep.value:
                raise ConfigError(f"two installed packages declare a family named {ep.name!r} "
                                  f"({_ENTRIES[ep.name].value} and {ep.value}); uninstall one")
            if ep.name not in _ENTRIES and ep.name not in _LOADED:
                _ENTRIES[ep.name] = ep
                _ORDER.append(ep.name)
        if not own:
            raise ConfigError("no built-in families are registered: fractaldb's package metadata is missing or "
                              "stale; reinstall it (pip install -e . in a checkout)")
        _DISCOVERED = True


def _dist_name(ep) -> str:
    dist = getattr(ep, "dist", None)
    return (dist.metadata["Name"] or "").lower() if dist is not None else ""


def _check(family: Family, where: str) -> Family:
    """A family's metadata, checked once when it is loaded or registered."""
    import dataclasses

    from ..citations import Paper
    from ..labels import KINDS
    from ..seeds import declare_purposes

    if not isinstance(family, Family) or not isinstance(family.name, str) or not family.name.isidentifier():
        raise ConfigError(f"{where}: a family must be a Family instance with an identifier name, got {family!r}")

    def bad(what):
        return ConfigError(f"{where}: family {family.name!r} {what}")

    if not (isinstance(family.settings, type) and dataclasses.is_dataclass(family.settings)):
        raise bad("has no settings dataclass")
    fields = {f.name: f for f in dataclasses.fields(family.settings)}
    seed = fields.get("seed")
    if seed is None or seed.default is not dataclasses.MISSING or seed.default_factory is not dataclasses.MISSING:
        raise bad("settings need a 'seed' field without a default (the dataset seed is always passed)")
    if family.count_key not in fields:
        raise bad(f"count_key {family.count_key!r} is not one of its settings")
    if family.label_kind not in KINDS:
        raise bad(f"label_kind {family.label_kind!r} is not one of {', '.join(KINDS)}")
    if not (isinstance(family.bound, type) and issubclass(family.bound, BoundFamily)):
        raise bad("needs a BoundFamily subclass as 'bound'")
    if not all(isinstance(p, Paper) for p in family.papers):
        raise bad("papers must be fractaldb.citations.Paper entries")
    unknown = set(family.small) - set(fields)
    if unknown:
        raise bad(f"small settings name unknown keys {sorted(unknown)}")
    unknown = set(family.absent_means) - set(fields) | ({"seed"} & set(family.absent_means))
    if unknown:
        raise bad(f"absent_means names keys that are not its settings {sorted(unknown)}")
    if not all(isinstance(a, StudyArm) for a in family.study_arms.values()):
        raise bad("study_arms must map names to StudyArm")
    try:
        declare_purposes(family.name, family.purposes)
    except ValueError as exc:
        raise bad(f"purposes: {exc}") from None
    return family



def _load(name: str) -> Family:
    ep = _ENTRIES[name]
    try:
        obj = ep.load()
    except Exception as exc:  # noqa: BLE001 - a broken plugin is one line, not a traceback
        raise ConfigError(f"family {name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}; "
                          "fix or uninstall the package that provides it") from None
    family = obj() if isinstance(obj, type) else obj
    _check(family, f"entry point {name} = {ep.value}")
    if family.name != name:
        raise ConfigError(f"entry point {name} = {ep.value} gives a family named {family.name!r}; "
                          "the two names must be equal")
    return family


def register_family(family: Family) -> Family:
    """Add ``family`` (an instance) under ``family.name`` without an entry point; returns it.

    Raises:
        ConfigError: not a valid family, or the name is taken by a different family.
    """
    _discover()
    with _LOCK:
        _check(family, "register_family")
        known = _LOADED.get(family.name) or (_load(family.name) if family.name in _ENTRIES else None)
        if known is not None and type(known) is not type(family):
            raise ConfigError(f"a family named {family.name!r} is already registered")
        _ENTRIES.pop(family.name, None)
        _LOADED[family.name] = family
        if family.name not in _ORDER:
            _ORDER.append(family.name)
    _check_legacy_default()
    return family


def unregister_family(name: str) -> None:
    """Remove a family added with :func:`register_family` (a test's or a script's; families of
    entry points stay).  Its random-stream purposes stay declared: codes are never reused."""
    with _LOCK:
        if name in _ENTRIES or name not in _LOADED:
            raise ConfigError(f"family {name!r} was not added with register_family")
        del _LOADED[name]
        _ORDER.remove(name)


def list_families() -> list:
    """Names of the known families, in order (nothing is imported)."""
    _discover()
    return list(_ORDER)


def get_family(name: str) -> Family:
    """The family ``name`` (imported on first use), or a one-line :class:`ConfigError` with a suggestion."""
    _discover()
    family = _LOADED.get(name) if isinstance(name, str) else None
    if family is not None:
        return family
    with _LOCK:
        if isinstance(name, str) and name in _ENTRIES:
            family = _LOADED[name] = _load(name)
            del _ENTRIES[name]
            return family
        if isinstance(name, str) and name in _LOADED:
            return _LOADED[name]
    close = difflib.get_close_matches(str(name), _ORDER, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ConfigError(f"unknown family {name!r}; {hint}choose from {', '.join(_ORDER)}") from None


#: Alias kept for symmetry with ``create_renderer``: families are singletons.
create_family = get_family


def all_families() -> list:
    """Every known family, loaded, in order."""
    return [get_family(n) for n in list_families()]


def _check_legacy_default() -> None:
    marked = [f.name for f in _LOADED.values() if f.legacy_default]
    if len(marked) > 1:
        raise ConfigError(f"families {marked} each claim to be the default of presets naming none; "
                          "at most one may set legacy_default")


def legacy_default_family() -> str:
    """The family of presets and manifests that name none (fractaldb 0.1 wrote such)."""
    families = all_families()
    _check_legacy_default()
    for family in families:
        if family.legacy_default:
            return family.name
    raise ConfigError("this config names no family and no installed family is the default; add "
                      f"'families: [NAME]' (one of {', '.join(list_families())})")


def category_reader() -> tuple | None:
    """``(preset, "section.key")`` of the family that makes datasets from a category folder
    (``Family.category_folder``), for the hints of commands given one; None if none does."""
    for family in all_families():
        if family.category_folder is not None:
            preset, key = family.category_folder
            return preset, f"{family.name}.{key}"
    return None


def family_of_config(cfg) -> Family:
    """The family whose settings or render-config type ``cfg`` is."""
    for family in all_families():
        if isinstance(cfg, family.config_types):
            return family
    raise ConfigError(f"no family renders a {type(cfg).__name__}; pass a family's settings or render config")


def create_renderer(family, cfg, device: str = "cpu", **device_options):
    """The renderer of ``family`` (a name or Family) for ``device`` (``cpu`` or ``cuda``).

    ``cfg`` is the family's settings (or its render config); ``device_options``
    go to the GPU renderer (e.g. ``max_batch``).  CPU and GPU renderers follow
    one protocol (:class:`~fractaldb.families.base.Renderer`) and give the
    same images.

    Raises:
        ConfigError: an unknown family or device, or ``cuda`` without a usable GPU.
    """
    fam = family if isinstance(family, Family) else get_family(family)
    check_device(device)
    if device == "cpu" and device_options:
        raise ConfigError(f"device options {sorted(device_options)} apply to --device cuda only")
    return fam.create_renderer(cfg, device, **device_options)


def __getattr__(name):
    if name == "DEFAULT_FAMILY":  # 0.2's constant: now each family says whether it is the default
        return legacy_default_family()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
