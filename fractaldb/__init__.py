"""fractaldb: formula-driven pretraining data (FractalDB, Perlin noise), fast and reproducible.

Data flows one way::

    config -> seeds -> classes (each family's search) -> plan -> render -> encode -> output

Families (``fractaldb.families``) are plugins; the public API is re-exported here.
"""

from __future__ import annotations

import warnings as _warnings

from ._version import __version__ as __version__
from .errors import ConfigError as ConfigError
from .errors import FractalDBError as FractalDBError
from .errors import InputError as InputError
from .errors import OutputError as OutputError
from .families import create_renderer as _create_renderer
from .families import family_of_config as _family_of_config
from .families import get_family as get_family
from .families import list_families as list_families
from .families import register_family as register_family
from .ifs.system import IFS as IFS
from .ifs.system import load_categories as load_categories
from .ifs.system import read_csv as read_csv
from .ifs.system import write_csv as write_csv
from .ifs.render import RenderConfig as RenderConfig
from .families.fractal.search import SearchConfig as SearchConfig
from .families.fractal.search import search as search
from .families.fractal.search import write_categories as write_categories


def create_renderer(family, cfg=None, device: str = "cpu", **device_options):
    """A renderer: ``create_renderer(family, cfg, device, **device_options)``
    (:func:`fractaldb.families.create_renderer`).

    The 0.1 form ``create_renderer(cfg, device)`` (a render config first) still
    works and warns: the family is the one whose config that is.
    """
    if not isinstance(family, str) and not hasattr(family, "create_renderer"):
        _warnings.warn("create_renderer(cfg, device) is deprecated; use create_renderer(family, cfg, device)",
                       DeprecationWarning, stacklevel=2)
        device = cfg if isinstance(cfg, str) else device
        family, cfg = _family_of_config(family), family
    return _create_renderer(family, cfg, device, **device_options)
