"""Instance rendering: (category, weight) blocks of patch draws and flips.

One chaos game serves a whole block: for a category and one weight row, the
points are iterated and rescaled once; then each of ``patches`` mask draws
is rasterised and written out in each of ``flips`` orientations.  With the
original recommended settings a block is 10 x 4 = 40 images.

Two modes:

``compat="official"``
    The original renderer's semantics: every render uses the uniforms of
    ``np.random.seed(100)``, the original NaN trimming and rescale, and no
    degenerate-variant handling.  Point mode gives the original's pixels
    exactly.  Patch masks, which the original draws from Python's unseeded
    ``random``, come from our seeded stream.
default (modern)
    Uniforms and masks come from streams keyed by (seed, category, weight,
    draw), so any image can be regenerated alone; near-empty weight variants
    (SPEC 9) are detected and, by default, replaced (see :class:`RenderConfig`).

The renderer (:class:`CPURenderer`) validates nothing per call and owns its
scratch buffers; :func:`create_renderer` validates the configuration once.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from . import constants as C
from ..errors import ConfigError
from ..families.base import HostRenderer, setting
from ..seeds import declare_purposes, stream_key
from . import kernels as K
from .system import IFS
from .policy import RETRIES, attempt_factors, degenerate_record, grow_buffer, normalise_jobs, official_uniforms
from .weights import parse_weights

#: The renderer's random streams (shared by every family that renders IFS instances).
PURPOSES = declare_purposes("ifs", {
    "render-points": 3,   # chaos-game uniforms of a render (category, weight)
    "render-patches": 4,  # patch masks of a render (category, weight, draw)
})

__all__ = [
    "RenderConfig", "CPURenderer", "Block", "color_table",
    "flip", "image_name", "render_previews", "DEGENERATE_POLICIES",
]

MODES = ("point", "patch")
COLORS = ("gray", "color")
COMPATS = ("official", "modern")
DEGENERATE_POLICIES = ("replace", "record", "keep")
#: Largest image side drawn with the last-writer raster (kernels.patch_owners); larger
#: images, and blocks of one draw, paste every patch in order (kernels.draw_patches):
#: the same pixels either way.
LAST_WRITER_MAX_SIZE = 1024


@dataclass(frozen=True)
class RenderConfig:
    """How instances are drawn (defaults: the original's recommended settings).

    Attributes:
        mode: ``point`` (one pixel per point) or ``patch`` (3x3 random patches).
        color: ``gray`` (value 127) or ``color`` (hue cycles with the point index).
        size: image side in pixels.
        points: chaos-game points per image.
        pad: border in pixels.
        weights: a step (``"0.4"``), a factor list (``"0.2,0.6,1.4,1.8"``) or
            ``"none"``; see :mod:`fractaldb.ifs.weights`.
        patches: patch re-draws per weight (point mode: always one).
        flips: orientations per draw, 1..4.
        compat: ``official`` (the original's streams and semantics) or ``modern``.
        seed: dataset seed of every keyed stream.
        degenerate: what modern mode does with a weight variant whose point
            raster fills less than ``min_fill``: ``replace`` pulls the changed
            factor towards 1 (its distance times 0.75, up to 8 times, else the
            identity) and records it; ``record`` only records; ``keep`` does
            neither.  Official mode always keeps.
        min_fill: fill-rate floor of a weight variant (point raster, this size).
    """

    mode: str = setting("patch", "point (one pixel per point) or patch (3x3 random patches).", " | ".join(MODES),
                        lambda v: v in MODES)
    color: str = setting("gray", "gray (value 127) or color (hue cycles with the point index).",
                         " | ".join(COLORS), lambda v: v in COLORS)
    size: int = setting(C.RENDER_SIZE, "Image side in pixels.", "an integer in 16..8192",
                        lambda v: 16 <= v <= 8192)
    points: int = setting(C.RENDER_POINTS, "Chaos-game points per image.", "an integer >= 2", lambda v: v >= 2)
    pad: int = setting(C.PAD, "Border in pixels.", "an integer >= 0", lambda v: v >= 0)
    weights: str = setting(C.RENDER_WEIGHT_STEP, "Weight table: a step (0.4), factors (0.2,0.6,1.4,1.8) or none.",
                           "a step such as 0.4, a factor list, or none")
    patches: int = setting(C.RENDER_PATCHES, "Patch re-draws per weight.", "an integer > 0", lambda v: v > 0)
    flips: int = setting(C.RENDER_FLIPS, "Orientations per draw (1..4).", "an integer in 1..4",
                         lambda v: 1 <= v <= 4)
    compat: str = setting("modern", "official: the original renderer's streams and semantics; modern: keyed streams.",
                          " | ".join(COMPATS), lambda v: v in COMPATS)
    seed: int = setting(1, "Seed of the point and mask streams.", "an integer in 0..2**32-1",
                        lambda v: 0 <= v < 2**32)
    degenerate: str = setting("replace", "Near-empty weight variants (modern mode): replace, record or keep.",
                              " | ".join(DEGENERATE_POLICIES), lambda v: v in DEGENERATE_POLICIES)
    min_fill: float = 0.01

    def __post_init__(self):
        if self.mode not in MODES:
            raise ConfigError(f"unknown mode {self.mode!r}; choose point or patch")
        if self.color not in COLORS:
            raise ConfigError(f"unknown color {self.color!r}; choose gray or color")
        if self.compat not in COMPATS:
            raise ConfigError(f"unknown compat {self.compat!r}; choose official or modern")
        if self.degenerate not in DEGENERATE_POLICIES:
            raise ConfigError(f"unknown degenerate policy {self.degenerate!r}; choose replace, record or keep")
        for name in ("size", "points", "pad", "patches", "flips", "seed"):
            if not isinstance(getattr(self, name), int) or isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be an integer, got {getattr(self, name)!r}")
        if self.pad < 0:
            raise ConfigError(f"pad must be >= 0, got {self.pad}")
        if self.size < 2 * self.pad + 4:
            raise ConfigError(
                f"size {self.size} is too small for pad {self.pad}; use a size of at least {2 * self.pad + 4}"
            )
        if self.size > 8192:
            raise ConfigError(f"size must be at most 8192, got {self.size}")
        if self.points < 2:
            raise ConfigError(f"points must be >= 2, got {self.points}")
        if self.patches < 1:
            raise ConfigError(f"patches must be >= 1, got {self.patches}")
        if not 1 <= self.flips <= 4:
            raise ConfigError(f"flips must be 1..4, got {self.flips}")
        if not 0 <= self.seed < 2**63:
            raise ConfigError(f"seed must be in 0..2**63-1, got {self.seed}")
        if not 0.0 <= self.min_fill < 1.0:
            raise ConfigError(f"min_fill must be in [0, 1), got {self.min_fill}")
        parse_weights(self.weights)  # raises on a bad spec

    @property
    def draws(self) -> int:
        """Mask draws per weight (``patches``; one in point mode)."""
        return self.patches if self.mode == "patch" else 1

    @property
    def channels(self) -> int:
        return 3 if self.color == "color" else 1

    @property
    def images_per_block(self) -> int:
        return self.draws * self.flips

    def weight_table(self) -> np.ndarray:
        return parse_weights(self.weights)


def color_table(color: str) -> np.ndarray:
    """``(K, C)`` uint8 colours indexed by ``point index % K``.

    Gray: one entry, 127.  Colour: the original's 128-step HSI hue cycle
    (S = I = 0.75), including its channel order and ``uint8`` truncation.
    """
    if color == "gray":
        return np.full((1, 1), C.GRAY, dtype=np.uint8)
    n = C.COLOR_PERIOD
    out = np.empty((n, 3), dtype=np.uint8)
    for i in range(n):
        s = 0.75
        hue = 2.0 * math.pi * (float(i % n) / float(n))
        if hue >= 2.0 * math.pi:
            hue -= 2.0 * math.pi
        h = math.floor((3.0 / math.pi) * hue)
        inten = 0.75
        p = inten * (1.0 - s)
        q = inten * (1.0 - s * ((3.0 / math.pi) * hue - h))
        t = inten * (1.0 - s * ((1.0 - (3.0 / math.pi) * hue) + h))
        iv, pv, qv, tv = (int(v * 255.0) for v in (inten, p, q, t))
        out[i] = [(pv, tv, iv), (pv, iv, qv), (tv, iv, pv), (iv, qv, pv), (iv, pv, tv), (qv, pv, iv)][h]
    return out


def flip(raster: np.ndarray, t: int) -> np.ndarray:
    """Orientation ``t`` of a raster (a view).

    The original first flips the raster top<->bottom (image y grows
    downwards), then applies flip type ``t``: 0 as is, 1 top<->bottom,
    2 left<->right, 3 both.
    """
    base = raster[::-1]
    if t == 0:
        return base
    if t == 1:
        return raster
    if t == 2:
        return base[:, ::-1]
    return raster[:, ::-1]


def image_name(category: int, weight: int, draw: int, flip_type: int) -> str:
    """The original file stem: ``00000_03_count_7_flip2``."""
    return f"{category:05d}_{weight:02d}_count_{draw}_flip{flip_type}"


@dataclass
class Block:
    """The images of one (category, weight), in ``draw * flips + flip`` order."""

    category: int
    weight: int
    images: np.ndarray                       # (draws * flips, H, W, C) uint8
    fill: float                              # point-raster fill of the variant drawn
    factors: np.ndarray                      # the 6 factors actually used
    record: dict | None = None               # set when the variant was degenerate
    draws: list | None = None                # the draws rendered, in order

    def names(self, flips: int):
        for k in range(self.images.shape[0]):
            yield image_name(self.category, self.weight, self.draws[k // flips], k % flips)


class PointScratch:
    """Per-thread buffers of one chaos game of ``n`` points rasterised at ``size``²
    (shared by the renderer and the category search)."""

    def __init__(self, n: int, size: int):
        steps = max(n - 1, 1)  # one uniform and one map index per step
        self.u = np.empty(steps, dtype=np.float64)
        self.idx = np.empty(steps, dtype=np.int8)
        self.xs = np.empty(n, dtype=np.float64)
        self.ys = np.empty(n, dtype=np.float64)
        self.keep = np.empty(n, dtype=np.bool_)
        self.px = np.empty(n, dtype=np.int32)
        self.py = np.empty(n, dtype=np.int32)
        self.bits = np.zeros((size * size + 63) // 64, dtype=np.uint64)


class CPURenderer(HostRenderer, PointScratch):
    """Renders blocks on the calling thread; one instance per thread."""

    def __init__(self, cfg: RenderConfig):
        super().__init__(cfg.points, cfg.size)
        self.cfg = cfg
        n = cfg.points
        self.table = cfg.weight_table()
        self.colors = color_table(cfg.color)
        self.grids = None  # last-writer scratch, made on first use (_owner_scratch)
        if cfg.compat == "official":
            # The original calls np.random.seed(100) before every render: all
            # images share the first ``points`` uniforms of that stream.
            self.official_u = official_uniforms(n)

    def block_buffer(self, draws: int) -> np.ndarray:
        """A reusable ``(draws * flips, H, W, C)`` output buffer owned by this renderer.

        Reusing it keeps megabyte-sized allocations out of the per-block
        loop (under Dask's ``MALLOC_TRIM_THRESHOLD_`` each one is a fresh mmap:
        35 % slower).
        """
        cfg = self.cfg
        need = draws * cfg.flips
        self._buffer = grow_buffer(getattr(self, "_buffer", None), need, cfg.images_per_block,
                                   (cfg.size, cfg.size, cfg.channels))
        return self._buffer[:need]

    def _points(self, maps: np.ndarray, cum: np.ndarray, key) -> int:
        """Chaos game + NaN trim + rescale into ``px, py``; returns the point count."""
        cfg = self.cfg
        u = self.official_u if cfg.compat == "official" else self.u
        if cfg.compat != "official":
            K.fill_uniform(key, self.u)
        K.select_maps(cum, u, self.idx)
        K.chaos_game(maps, self.idx, self.xs, self.ys)
        m = K.trim_nan(self.xs, self.ys, self.keep)
        K.rescale(self.xs, self.ys, m, cfg.size, cfg.size, cfg.pad, self.px, self.py, cfg.compat == "official")
        return m

    def _variant(self, category: int, ifs: IFS, weight: int, need_fill: bool = True):
        """The block's points (chaos game, NaN trim, rescale into ``px, py``) after the
        degenerate-variant policy; ``(m, fill, factors, record)``.  ``fill`` is None when
        ``need_fill`` is False and the policy does not need it (official mode, ``keep``)."""
        cfg = self.cfg
        factors = self.table[weight].copy()
        cum = ifs.cumulative()
        key = stream_key(cfg.seed, "render-points", category, weight)
        m = self._points(ifs.weighted(factors), cum, key)
        policy = cfg.compat == "modern" and cfg.degenerate != "keep"
        fill = None
        if need_fill or policy:
            fill = K.count_filled(self.px, self.py, m, cfg.size, cfg.size, self.bits) / cfg.size**2
        record = None
        if policy and fill < cfg.min_fill:
            record = degenerate_record(category, weight, factors, fill, cfg.degenerate)
            if cfg.degenerate == "replace":
                original = factors.copy()
                for attempt in range(RETRIES + 1):
                    factors = attempt_factors(original, attempt)
                    m = self._points(ifs.weighted(factors), cum, key)
                    fill = K.count_filled(self.px, self.py, m, cfg.size, cfg.size, self.bits) / cfg.size**2
                    if fill >= cfg.min_fill:
                        break
                record.update(replaced_by=factors.tolist(), replaced_fill=fill)
        return m, fill, factors, record

    def _draw_rasters(self, category: int, weight: int, m: int, draws, rasters) -> None:
        """Each draw's raster into ``rasters[k]`` (zeroed here).

        Patch mode finds each pixel's last writer once (:func:`kernels.patch_owners
        <fractaldb.ifs.kernels.patch_owners>`) and writes only those
        pixels per draw: the pixels of the sequential overwrite."""
        cfg = self.cfg
        rasters[:] = 0
        if cfg.mode != "patch":
            for k in range(len(draws)):
                K.draw_points(self.px, self.py, m, self.colors, rasters[k])
            return
        if len(draws) < 2 or cfg.size > LAST_WRITER_MAX_SIZE:
            # One draw: pasting every patch once costs less than finding the last
            # writers; very large images: the scratch (~30 bytes a pixel) would not pay.
            for k, d in enumerate(draws):
                mask_key = stream_key(cfg.seed, "render-patches", category, weight, d)
                K.draw_patches(self.px, self.py, m, self.colors, mask_key, rasters[k])
            return
        self._owner_scratch()
        owned, uniq = K.patch_owners(self.px, self.py, m, self.grids, self.own_pix,
                                     self.own_shift, self.own_slot, self.own_uniq, self.pos_slot)
        for k, d in enumerate(draws):
            mask_key = stream_key(cfg.seed, "render-patches", category, weight, d)
            K.draw_owned(self.own_pix, self.own_shift, self.own_slot, owned, self.own_uniq, uniq, self.colors,
                         mask_key, self.masks, rasters[k])

    def _owner_scratch(self) -> None:
        """The buffers of :func:`kernels.patch_owners <fractaldb.ifs.kernels.patch_owners>`
        (about 30 bytes per pixel), made once."""
        if self.grids is not None:
            return
        size, n = self.cfg.size, self.cfg.points
        cells = size * size
        self.grids = np.zeros((3, size, size), dtype=np.int32)
        self.own_pix = np.empty(cells, dtype=np.int32)
        self.own_shift = np.empty(cells, dtype=np.uint8)
        self.own_slot = np.empty(cells, dtype=np.int32)
        self.own_uniq = np.empty(min(n, cells) + 1, dtype=np.int32)
        self.pos_slot = np.full(cells + 1, -1, dtype=np.int32)
        self.masks = np.empty(min(n, cells), dtype=np.uint16)

    def render_block(self, category: int, ifs: IFS, weight: int, out: np.ndarray | None = None,
                     draws=None) -> Block:
        """Render all flips of ``draws`` (default: every draw) of ``(category, weight)``.

        Images land in ``out[k * flips + t]`` for the k-th requested draw; the
        chaos game runs once whatever the number of draws.
        """
        cfg = self.cfg
        draws = range(cfg.draws) if draws is None else draws
        if out is None:
            out = np.empty((len(draws) * cfg.flips, cfg.size, cfg.size, cfg.channels), dtype=np.uint8)
        m, fill, factors, record = self._variant(category, ifs, weight)
        rasters = self._rasters(len(draws))
        self._draw_rasters(category, weight, m, draws, rasters)
        for k in range(len(draws)):
            for t in range(cfg.flips):
                out[k * cfg.flips + t] = flip(rasters[k], t)
        return Block(category, weight, out, fill, factors, record, list(draws))

    def _rasters(self, draws: int) -> np.ndarray:
        """A reusable ``(draws, H, W, C)`` buffer: one raster per draw."""
        cfg = self.cfg
        self._draws = grow_buffer(getattr(self, "_draws", None), draws, cfg.draws, (cfg.size, cfg.size, cfg.channels))
        return self._draws[:draws]

    def render_views(self, jobs):
        """Like :meth:`render_many`, but each block's ``images`` is a list of views
        (``draw * flips + flip`` order) of one raster per draw, flipped by strides
        (:func:`flip`): no flip copies; ``fill`` is None unless the
        degenerate-variant policy measured it.  What shards are packed from."""
        cfg = self.cfg
        for category, ifs, weight, draws in normalise_jobs(jobs, cfg.draws):
            m, fill, factors, record = self._variant(category, ifs, weight, need_fill=False)
            rasters = self._rasters(len(draws))
            self._draw_rasters(category, weight, m, draws, rasters)
            images = [flip(rasters[k], t) for k in range(len(draws)) for t in range(cfg.flips)]
            yield Block(category, weight, images, fill, factors, record, list(draws))

    def render_many(self, jobs):
        """Render ``(category, ifs, weight[, draws])`` jobs one after another.

        Yields one :class:`Block` per job, in order.  Its images live in this
        renderer's reusable buffer: use them (encode, copy) before asking for
        the next block.  :meth:`CUDARenderer.render_many
        <fractaldb.ifs.render_cuda.CUDARenderer.render_many>` has the same
        contract and renders many jobs per launch.
        """
        for category, ifs, weight, draws in normalise_jobs(jobs, self.cfg.draws):
            yield self.render_block(category, ifs, weight, draws=draws, out=self.block_buffer(len(draws)))

    def render_many_device(self, jobs, out: np.ndarray | None = None) -> np.ndarray:
        """Every job's images in one array, job after job (each in ``draw * flips + flip``
        order): :meth:`CUDARenderer.render_many_device
        <fractaldb.ifs.render_cuda.CUDARenderer.render_many_device>` on the CPU,
        whose "device" is host memory."""
        cfg = self.cfg
        jobs = normalise_jobs(jobs, cfg.draws)
        total = sum(len(j[3]) for j in jobs) * cfg.flips
        out = np.empty((total, cfg.size, cfg.size, cfg.channels), dtype=np.uint8) if out is None else out
        offset = 0
        for category, ifs, weight, draws in jobs:
            k = len(draws) * cfg.flips
            self.render_block(category, ifs, weight, draws=draws, out=out[offset:offset + k])
            offset += k
        return out



def render_previews(cfg: RenderConfig, categories, per_class: int, limit: int, rows=None) -> list:
    """Contact-sheet images of the first ``limit`` categories: the identity weight
    first, then ``per_class - 1`` more weights (first draw, flip 0 each); or, when
    ``rows`` (weight-table rows) is given, the first ``per_class`` of them.

    ``categories`` is a sequence of ``(id, IFS)`` pairs (e.g. :class:`~fractaldb.families.fractal.Categories`).
    """
    cfg = dataclasses.replace(cfg, patches=1, flips=1)
    renderer = CPURenderer(cfg)
    table = cfg.weight_table()
    if rows is None:
        identity = int(np.argmax(np.all(table == 1.0, axis=1)))
        weights = [identity] + [w for w in range(len(table)) if w != identity][: per_class - 1]
    else:
        weights = list(rows)[:per_class]
    return [renderer.render_block(cid, ifs, w, draws=[0]).images[0].copy()
            for cid, ifs in list(categories)[:limit] for w in weights]
