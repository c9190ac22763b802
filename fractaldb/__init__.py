"""fractaldb: formula-driven pretraining data (FractalDB), fast and reproducible.

Data flows one way::

    config -> seeds -> categories (search) -> render -> encode -> output

The public API is re-exported here; kernels live in ``fractaldb.kernels``.
"""

from __future__ import annotations

__version__ = "0.1.0.dev0"

from .errors import ConfigError as ConfigError
from .errors import FractalDBError as FractalDBError
from .errors import InputError as InputError
from .errors import OutputError as OutputError
from .ifs import IFS as IFS
from .ifs import load_categories as load_categories
from .ifs import read_csv as read_csv
from .ifs import write_csv as write_csv
from .render import RenderConfig as RenderConfig
from .render import create_renderer as create_renderer
from .search import SearchConfig as SearchConfig
from .search import search as search
from .search import write_categories as write_categories
