"""The fractal family's settings: the ``fractal:`` section of a preset."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ...encode import FORMATS
from ...errors import ConfigError
from ...ifs import constants as C
from ...ifs.render import RenderConfig
from ...parallel import default_workers
from ...schema import setting
from .search import SAMPLERS, SearchConfig

__all__ = ["FractalSettings", "parse_rows"]


@lru_cache(maxsize=64)
def parse_rows(text) -> tuple | None:
    """``"all"`` -> ``()``; ``"0,3"`` -> ``(0, 3)``; anything else (repeats, negatives, words) -> None."""
    text = str(text).strip().lower()
    if text == "all":
        return ()
    try:
        rows = tuple(int(v) for v in text.split(","))
    except ValueError:
        return None
    return rows if all(r >= 0 for r in rows) and len(set(rows)) == len(rows) else None


@lru_cache(maxsize=64)
def _row_ids(weights: str, weight_rows: str) -> tuple:
    """The rows ``weight_rows`` selects of the table ``weights`` (cached: asked once per sample)."""
    return parse_rows(weight_rows) or tuple(range(len(RenderConfig(weights=weights).weight_table())))


def _render_setting(name: str, **override):
    """A section key whose default, help and check are :class:`RenderConfig`'s."""
    f = RenderConfig.__dataclass_fields__[name]
    m = {**f.metadata, **override}
    return setting(f.default, m["help"], m["allowed"], m["check"], m["kind"])


@dataclass(frozen=True, kw_only=True)
class FractalSettings:
    """The ``fractal:`` section of a preset (defaults: the original's settings, our
    modern render mode), plus the dataset seed."""

    sampler: str = setting("official", "Category search: official (replays the original loop), modern "
                           "(seeded per candidate) or svd (sigma-factor, every candidate accepted).",
                           " | ".join(SAMPLERS), lambda v: v in SAMPLERS)
    categories: int = setting(1000, "Categories to search (or to load from category_dir).", "an integer > 0",
                              lambda v: v > 0)
    fill_rate: float = setting(C.SEARCH_FILL_RATE, "Fill-rate threshold of the search.", "a number in (0, 1]",
                               lambda v: 0.0 < v <= 1.0)
    search_points: int = setting(C.SEARCH_POINTS, "Chaos-game points per search candidate.", "an integer >= 2",
                                 lambda v: v >= 2)
    image_size: int = _render_setting("size")
    points: int = _render_setting("points")
    mode: str = _render_setting("mode")
    color: str = _render_setting("color")
    weights: str = _render_setting("weights")
    weight_rows: str = setting("all", "Weight-table rows rendered per category: all, or row indices (OFDB: 0).",
                               "all, or comma-separated row indices of the weight table such as 0 or 0,2,5 "
                               "(no repeats)", lambda v: parse_rows(v) is not None)
    patches: int = _render_setting("patches")
    flips: int = _render_setting("flips")
    compat: str = _render_setting("compat")
    degenerate: str = _render_setting("degenerate")
    image_format: str = setting("png", "Stored image format.", " | ".join(FORMATS), lambda v: v in FORMATS)
    category_dir: str = setting("", "A category folder to load instead of searching ('' to search).",
                                "a folder path, or '' to search")
    seed: int

    def __post_init__(self):
        table = self.render_config().weight_table()  # cross-key checks (size vs pad, weights syntax)
        rows = parse_rows(self.weight_rows)
        if rows is None or (rows and max(rows) >= len(table)):
            raise ConfigError(f"weight_rows {self.weight_rows!r} does not fit weights {self.weights!r}: give all, or "
                              f"distinct row indices 0..{len(table) - 1} separated by commas")
        if not self.category_dir:
            self.search_config(1)  # refuses a search that could never finish, before any work

    def weight_row_ids(self) -> tuple:
        """The weight-table rows rendered per category, in block order (block ``b`` renders row ``[b]``)."""
        return _row_ids(self.weights, self.weight_rows)

    def render_config(self) -> RenderConfig:
        return RenderConfig(mode=self.mode, color=self.color, size=self.image_size, points=self.points,
                            weights=self.weights, patches=self.patches, flips=self.flips, compat=self.compat,
                            seed=self.seed, degenerate=self.degenerate)

    def search_config(self, workers: int | None = None) -> SearchConfig:
        return SearchConfig(sampler=self.sampler, categories=self.categories, seed=self.seed,
                            fill_rate=self.fill_rate, points=self.search_points, workers=workers or default_workers())
