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

import math
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from . import constants as C
from .errors import ConfigError
from .ifs import IFS
from .kernels import ifs as K
from .seeds import stream_key
from .weights import parse_weights

__all__ = [
    "RenderConfig", "CPURenderer", "Block", "create_renderer", "color_table",
    "flip", "image_name", "render_blocks", "DEGENERATE_POLICIES",
]

MODES = ("point", "patch")
COLORS = ("gray", "color")
COMPATS = ("official", "modern")
DEGENERATE_POLICIES = ("replace", "record", "keep")
#: How far a degenerate weight factor is pulled towards 1 per retry (0.75,
#: not 0.5: halving would turn 1.8 into 1.4, a copy of another table row).
_SHRINK = 0.75
_RETRIES = 8


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
            ``"none"``; see :mod:`fractaldb.weights`.
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

    mode: str = "patch"
    color: str = "gray"
    size: int = C.RENDER_SIZE
    points: int = C.RENDER_POINTS
    pad: int = C.PAD
    weights: str = C.RENDER_WEIGHT_STEP
    patches: int = C.RENDER_PATCHES
    flips: int = C.RENDER_FLIPS
    compat: str = "modern"
    seed: int = 0
    degenerate: str = "replace"
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


class CPURenderer(PointScratch):
    """Renders blocks on the calling thread; one instance per thread."""

    device = "cpu"

    def __init__(self, cfg: RenderConfig):
        super().__init__(cfg.points, cfg.size)
        self.cfg = cfg
        n = cfg.points
        self.table = cfg.weight_table()
        self.colors = color_table(cfg.color)
        self.raster = np.zeros((cfg.size, cfg.size, cfg.channels), dtype=np.uint8)
        if cfg.compat == "official":
            # The original calls np.random.seed(100) before every render: all
            # images share the first ``points`` uniforms of that stream.
            self.official_u = np.random.RandomState(C.RENDER_COMPAT_SEED).random_sample(n)[: n - 1]

    def block_buffer(self, draws: int) -> np.ndarray:
        """A reusable ``(draws * flips, H, W, C)`` output buffer owned by this renderer.

        Reusing it keeps megabyte-sized allocations out of the per-block
        loop (under Dask's ``MALLOC_TRIM_THRESHOLD_`` each one is a fresh mmap:
        35 % slower).
        """
        cfg = self.cfg
        need = draws * cfg.flips
        if getattr(self, "_buffer", None) is None or self._buffer.shape[0] < need:
            self._buffer = np.empty((cfg.images_per_block, cfg.size, cfg.size, cfg.channels), dtype=np.uint8)
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
        factors = self.table[weight].copy()
        cum = ifs.cumulative()
        key = stream_key(cfg.seed, "render-points", category, weight)
        m = self._points(ifs.weighted(factors), cum, key)
        fill = K.count_filled(self.px, self.py, m, cfg.size, cfg.size, self.bits) / cfg.size**2
        record = None
        if cfg.compat == "modern" and cfg.degenerate != "keep" and fill < cfg.min_fill:
            record = {"category": category, "weight": weight, "factors": factors.tolist(),
                      "fill": fill, "action": cfg.degenerate}
            if cfg.degenerate == "replace":
                original = factors.copy()
                for attempt in range(_RETRIES + 1):
                    factors = 1.0 + (original - 1.0) * (_SHRINK ** (attempt + 1)) if attempt < _RETRIES \
                        else np.ones(6)
                    m = self._points(ifs.weighted(factors), cum, key)
                    fill = K.count_filled(self.px, self.py, m, cfg.size, cfg.size, self.bits) / cfg.size**2
                    if fill >= cfg.min_fill:
                        break
                record.update(replaced_by=factors.tolist(), replaced_fill=fill)
        for k, d in enumerate(draws):
            self.raster[:] = 0
            if cfg.mode == "patch":
                mask_key = stream_key(cfg.seed, "render-patches", category, weight, d)
                K.draw_patches(self.px, self.py, m, self.colors, mask_key, self.raster)
            else:
                K.draw_points(self.px, self.py, m, self.colors, self.raster)
            for t in range(cfg.flips):
                out[k * cfg.flips + t] = flip(self.raster, t)
        return Block(category, weight, out, fill, factors, record, list(draws))

    def render_many(self, jobs):
        """Render ``(category, ifs, weight[, draws])`` jobs one after another.

        Yields one :class:`Block` per job, in order.  Its images live in this
        renderer's reusable buffer: use them (encode, copy) before asking for
        the next block.  :meth:`CUDARenderer.render_many
        <fractaldb.render_cuda.CUDARenderer.render_many>` has the same
        contract and renders many jobs per launch.
        """
        for job in jobs:
            category, ifs, weight = job[:3]
            draws = range(self.cfg.draws) if len(job) < 4 or job[3] is None else job[3]
            yield self.render_block(category, ifs, weight, draws=draws, out=self.block_buffer(len(draws)))


def create_renderer(cfg: RenderConfig, device: str = "cpu"):
    """The renderer for ``device``: ``cpu``, or ``cuda`` (:class:`~fractaldb.render_cuda.CUDARenderer`,
    the same interface and the same blocks; :class:`ConfigError` without a usable GPU)."""
    if device == "cuda":
        # Imported here: importing fractaldb never imports numba.cuda.  Raises
        # ConfigError without numba-cuda or without a usable GPU.
        from .render_cuda import CUDARenderer

        return CUDARenderer(cfg)
    if device != "cpu":
        raise ConfigError(f"unknown device {device!r}; choose cpu or cuda")
    return CPURenderer(cfg)


def render_blocks(categories, cfg: RenderConfig, workers: int = 1, category_ids=None, consume=None,
                  device: str = "cpu"):
    """Render every (category, weight) block on ``workers`` threads.

    Args:
        categories: sequence of :class:`~fractaldb.ifs.IFS`.
        cfg: render settings.
        workers: threads; each has its own renderer.
        category_ids: category numbers (default ``0..len-1``), used in names and seeds.
        consume: ``consume(block)`` called on the worker thread right after
            the block is rendered (encode and write there, in parallel).
        device: ``cpu`` or ``cuda`` (same images; see docs/gpu.md).

    Yields:
        The result of ``consume(block)`` (or the block), in (category, weight) order.
    """
    if category_ids is None:
        category_ids = range(len(categories))
    jobs = [(cid, ifs, w) for cid, ifs in zip(category_ids, categories) for w in range(len(cfg.weight_table()))]
    if device == "cuda":
        yield from _render_blocks_gpu(jobs, cfg, workers, consume)
        return
    local = threading.local()

    def run(job):
        if not hasattr(local, "renderer"):
            local.renderer = create_renderer(cfg, device)
        block = local.renderer.render_block(*job)
        return consume(block) if consume is not None else block

    if workers <= 1:
        for job in jobs:
            yield run(job)
        return
    with ThreadPoolExecutor(workers) as pool:
        # Bounded look-ahead keeps memory flat on long runs.
        window = 4 * workers
        futures = [pool.submit(run, j) for j in jobs[:window]]
        nxt = window
        for i in range(len(jobs)):
            result = futures[i].result()
            futures[i] = None
            if nxt < len(jobs):
                futures.append(pool.submit(run, jobs[nxt]))
                nxt += 1
            yield result


def _render_blocks_gpu(jobs, cfg: RenderConfig, workers: int, consume):
    """:func:`render_blocks` on the GPU: one renderer launches many blocks at a
    time from this thread; ``consume`` (encoding, writing) runs on ``workers``
    threads meanwhile."""
    renderer = create_renderer(cfg, "cuda")
    window = 4 * max(workers, 1)
    pending = deque()
    with ThreadPoolExecutor(max(workers, 1)) as pool:
        for block in renderer.render_many(jobs):
            block.images = block.images.copy()  # the launch's host buffer is reused
            pending.append(pool.submit(consume, block) if consume is not None else block)
            while len(pending) > window:
                head = pending.popleft()
                yield head.result() if consume is not None else head
        while pending:
            head = pending.popleft()
            yield head.result() if consume is not None else head
