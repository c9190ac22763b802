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

from ...citations import FRACTALDB, FRACTALDB_IJCV
from ..base import BoundFamily, Family, RenderedBlock
from ...ifs.system import IFS, Categories, load_categories
from ...ifs.render import CPURenderer, RenderConfig, image_name, render_previews
from .search import PURPOSES, search
from .settings import FractalSettings, parse_rows
from . import study

__all__ = ["FractalFamily", "FractalSettings", "FractalBound", "Categories", "sample_key"]


def sample_key(category: int, weight: int, draw: int, flip: int) -> str:
    """``c00042-w03-k7-f2``: category 42, weight row 3, patch draw 7, flip 2."""
    return f"c{category:05d}-w{weight:02d}-k{draw}-f{flip}"


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
        rows = cfg.weight_row_ids() if parse_rows(cfg.weight_rows) else None  # all: identity first
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
