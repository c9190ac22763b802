"""The family registry: the one place outside the family packages that names a family.

>>> from fractaldb.families import list_families, get_family
>>> list_families()
['fractal', 'perlin', 'onepfrac', 'fractal3d', 'colorfractal', 'multifractal']

A family is an object implementing :class:`~fractaldb.families.base.Family`;
:func:`register_family` adds one (a third-party package can register its own),
and everything else -- presets, plan, shards, loaders, preview, export, CLI --
loops over :func:`list_families` or asks :func:`get_family` by the name a
preset or manifest gives.
"""

from __future__ import annotations

import difflib

from ..errors import ConfigError
from .base import Family, RenderedBlock, Renderer
from .colorfractal import ColorFractalFamily, MultiFractalFamily
from .fractal import FractalFamily
from .onepfrac import OnePFracFamily
from .fractal3d import Fractal3DFamily
from .perlin import PerlinFamily

__all__ = ["Family", "Renderer", "RenderedBlock", "register_family", "get_family", "create_family", "list_families",
           "create_renderer", "family_of_config", "DEFAULT_FAMILY"]

_REGISTRY: dict = {}

#: The family of a preset that names none (every preset before families existed).
DEFAULT_FAMILY = "fractal"


def register_family(family: Family) -> Family:
    """Add ``family`` (an instance) under ``family.name``; returns it."""
    if not isinstance(family, Family) or not family.name or not family.name.isidentifier():
        raise ConfigError(f"a family must be a Family instance with an identifier name, got {family!r}")
    if family.name in _REGISTRY and type(_REGISTRY[family.name]) is not type(family):
        raise ConfigError(f"a family named {family.name!r} is already registered")
    _REGISTRY[family.name] = family
    return family


def list_families() -> list:
    """Names of the registered families, in registration order."""
    return list(_REGISTRY)


def get_family(name: str) -> Family:
    """The registered family ``name``, or a one-line :class:`ConfigError` with a suggestion."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"unknown family {name!r}; {hint}choose from {', '.join(_REGISTRY)}") from None


#: Alias kept for symmetry with ``create_renderer``: families are singletons.
create_family = get_family


def family_of_config(cfg) -> Family:
    """The family whose settings or render-config type ``cfg`` is."""
    for family in _REGISTRY.values():
        if isinstance(cfg, getattr(family, "config_types", ())):
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
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device {device!r}; choose cpu or cuda")
    if device == "cpu" and device_options:
        raise ConfigError(f"device options {sorted(device_options)} apply to --device cuda only")
    return fam.create_renderer(cfg, device, **device_options)


register_family(FractalFamily())
register_family(PerlinFamily())
register_family(OnePFracFamily())
register_family(Fractal3DFamily())
register_family(ColorFractalFamily())
register_family(MultiFractalFamily())
