"""fractaldb: formula-driven pretraining data (FractalDB, Perlin noise, ...), fast and reproducible.

Data flows one way::

    config -> seeds -> classes (each family's search) -> plan -> render -> encode -> output

Families (``fractaldb.families``) are plugins found by entry point; the public API is
re-exported here.  Importing ``fractaldb`` is cheap: the families, the IFS model and
the names a family exports (the FractalDB search: ``search``, ``SearchConfig``,
``write_categories``) are imported when first used.
"""

from __future__ import annotations

import warnings as _warnings

from ._version import __version__ as __version__
from .errors import ConfigError as ConfigError
from .errors import FractalDBError as FractalDBError
from .errors import InputError as InputError
from .errors import OutputError as OutputError

#: Names re-exported from modules below the families, imported on first use.
_LAZY = {
    "IFS": "fractaldb.ifs.system", "load_categories": "fractaldb.ifs.system", "read_csv": "fractaldb.ifs.system",
    "write_csv": "fractaldb.ifs.system", "RenderConfig": "fractaldb.ifs.render",
    "get_family": "fractaldb.families", "list_families": "fractaldb.families",
    "register_family": "fractaldb.families",
}


def __getattr__(name: str):
    import importlib

    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        value = _family_export(name)
    globals()[name] = value
    return value


def _family_export(name: str):
    """A name some family exports at the top level (``Family.exports``)."""
    import importlib

    from .families import get_family, list_families

    for family in list_families():
        target = get_family(family).exports.get(name)
        if target is not None:
            module, _, attr = target.partition(":")
            return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'fractaldb' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


def create_renderer(family, cfg=None, device: str = "cpu", **device_options):
    """A renderer: ``create_renderer(family, cfg, device, **device_options)``
    (:func:`fractaldb.families.create_renderer`).

    The 0.1 form ``create_renderer(cfg, device)`` (a render config first) still
    works and warns: the family is the one whose config that is.
    """
    from .families import create_renderer as _create_renderer
    from .families import family_of_config

    if not isinstance(family, str) and not hasattr(family, "create_renderer"):
        _warnings.warn("create_renderer(cfg, device) is deprecated; use create_renderer(family, cfg, device)",
                       DeprecationWarning, stacklevel=2)
        device = cfg if isinstance(cfg, str) else device
        family, cfg = family_of_config(family), family
    return _create_renderer(family, cfg, device, **device_options)
