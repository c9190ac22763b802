"""The FractalDB family: IFS categories found by the fill-rate search, rendered
as (category, weight) blocks of patch draws and flips.

Modules: :mod:`.ifs` (the IFS model and the original CSV format),
:mod:`.weights` (weight tables), :mod:`.search` (the category search),
:mod:`.render` (CPU renderer), :mod:`.render_cuda` (its GPU twin),
:mod:`.policy` (host-side decisions both renderers share), :mod:`.kernels`,
:mod:`.kernels_search` and :mod:`.kernels_cuda` (numba kernels), and
:mod:`.constants` (the original's constants).  This module is the family's
face to the rest of fractaldb (:class:`FractalFamily`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ...encode import FORMATS
from ...errors import ConfigError
from ...parallel import default_workers
from ...citations import FRACTALDB, FRACTALDB_IJCV
from ..base import BoundFamily, Family, RenderedBlock, setting
from ...ifs import constants as C
from ...ifs.system import IFS, Categories, load_categories
from ...ifs.render import CPURenderer, RenderConfig, image_name, render_previews
from .search import PURPOSES, SAMPLERS, SearchConfig, search
from . import study

__all__ = ["FractalFamily", "FractalSettings", "FractalBound", "Categories", "sample_key"]


def sample_key(category: int, weight: int, draw: int, flip: int) -> str:
    """``c00042-w03-k7-f2``: category 42, weight row 3, patch draw 7, flip 2."""
    return f"c{category:05d}-w{weight:02d}-k{draw}-f{flip}"


@lru_cache(maxsize=64)
def _parse_rows(text) -> tuple | None:
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
    return _parse_rows(weight_rows) or tuple(range(len(RenderConfig(weights=weights).weight_table())))


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
                               "(no repeats)", lambda v: _parse_rows(v) is not None)
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
        rows = _parse_rows(self.weight_rows)
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


class FractalBound(BoundFamily):
    """FractalDB bound to a dataset: a block is one (category, weight row) with its
    ``patches x flips`` images (offset = draw * flips + flip)."""

    settings: FractalSettings
    classes: Categories

    @property
    def blocks_per_class(self) -> int:
        return len(self.settings.weight_row_ids())

    @property
    def images_per_block(self) -> int:
        return self.settings.render_config().images_per_block

    @property
    def channels(self) -> int:
        return self.settings.render_config().channels

    def class_docs(self) -> list:
        return [{"id": cid, "rows": ifs.rows().tolist()} for cid, ifs in zip(self.classes.ids, self.classes.systems)]

    def sample_key(self, klass, block, offset):
        draw, flip = divmod(offset, self.settings.flips)
        return sample_key(self.classes.ids[klass], self.settings.weight_row_ids()[block], draw, flip)

    def sample_meta(self, klass, block, offset):
        cfg = self.settings
        draw, flip = divmod(offset, cfg.flips)
        return {"category": self.classes.ids[klass], "weight": cfg.weight_row_ids()[block], "draw": draw,
                "flip": flip, "seed": cfg.seed, "compat": cfg.compat}

    def render_blocks(self, renderer, jobs):
        classes, flips, rows = self.classes, self.settings.flips, self.settings.weight_row_ids()
        jobs = list(jobs)
        # One chaos game per (category, weight), only the draws the offsets need.
        draws = [sorted({o // flips for o in offsets}) for _, _, offsets in jobs]
        native = [(classes.ids[k], classes.systems[k], rows[w], d) for (k, w, _), d in zip(jobs, draws)]
        # The CPU renderer hands out flipped views of one raster per draw (no flip copies).
        render = getattr(renderer, "render_views", renderer.render_many)
        for (k, w, offsets), d, block in zip(jobs, draws, render(native) if native else ()):
            where = {draw: i for i, draw in enumerate(d)}
            images = [block.images[where[o // flips] * flips + o % flips] for o in offsets]
            yield RenderedBlock(k, w, list(offsets), images, {"factors": [float(f) for f in block.factors]},
                                block.record)

    def render_device(self, renderer, blocks):
        rows = self.settings.weight_row_ids()
        jobs = [(self.classes.ids[k], self.classes.systems[k], rows[w]) for k, w in blocks]
        return [(list(range(len(blocks))), renderer.render_many_device(jobs))]

    def preview_images(self, per_class, limit):
        cfg = self.settings
        rows = cfg.weight_row_ids() if _parse_rows(cfg.weight_rows) else None  # all: identity first
        return render_previews(cfg.render_config(), self.classes, per_class, limit, rows)


class FractalFamily(Family):
    name = "fractal"
    summary = "FractalDB: IFS categories (fill-rate search) x weight variants x patch draws x flips"
    description = ("FractalDB fractal categories: each class is an iterated function system (IFS) found by a "
                   "fill-rate search; its images are chaos-game renderings of weight variants, patch draws and "
                   "flips of that system")
    papers = (FRACTALDB, FRACTALDB_IJCV)
    purposes = PURPOSES
    small = {"sampler": "modern", "categories": 2, "image_size": 32, "points": 2000, "weights": "none",
             "patches": 2, "flips": 2}
    study_arms = study.ARMS
    legacy_default = True  # fractaldb 0.1 presets and manifests were all FractalDB
    category_folder = ("fractaldb-1k", "category_dir")
    settings = FractalSettings
    count_key = "categories"
    legacy_keys = {k: k for k in ("sampler", "categories", "fill_rate", "search_points", "image_size", "points",
                                  "mode", "color", "weights", "patches", "flips", "compat", "degenerate",
                                  "image_format", "category_dir")}
    config_types = (FractalSettings, RenderConfig)
    exports = {"search": "fractaldb.families.fractal.search:search",
               "SearchConfig": "fractaldb.families.fractal.search:SearchConfig",
               "write_categories": "fractaldb.families.fractal.search:write_categories"}
    cpu_renderer = CPURenderer
    cuda_renderer = "fractaldb.ifs.render_cuda.CUDARenderer"
    bound = FractalBound

    def find_classes(self, settings: FractalSettings, workers: int, progress=None) -> Categories:
        if settings.category_dir:
            ids, systems = load_categories(settings.category_dir)
            return Categories(ids[: settings.categories], systems[: settings.categories])
        result = search(settings.search_config(workers), progress=progress)
        return Categories(range(len(result.categories)), result.categories)

    def classes_from_docs(self, docs: list) -> Categories:
        return Categories([d["id"] for d in docs], [IFS.from_rows(d["rows"]) for d in docs])

    def export_path(self, meta, ext):
        cid = meta["category"]
        return f"{cid:05d}/{image_name(cid, meta['weight'], meta['draw'], meta['flip'])}.{ext}"

    def commands(self):
        from . import commands

        return [commands.search, commands.render]

    def params_preview(self):
        from . import commands

        return commands
