"""GPU instance rendering: :class:`~fractaldb.ifs.render.CPURenderer`'s twin (numba-cuda).

:class:`CUDARenderer` has the CPU renderer's interface and gives the same
:class:`~fractaldb.ifs.render.Block` -- images, fill, factors and degenerate
record -- bit for bit: it consumes the same random streams (modern: the keyed
splitmix64 streams of :mod:`fractaldb.seeds`; official: the shared
``np.random.seed(100)`` uniforms, copied to the device once) and runs the
same arithmetic (see :mod:`fractaldb.ifs.kernels_cuda`).  On top of
``render_block`` it renders many blocks per launch into GPU memory
(:meth:`CUDARenderer.render_many_device`) and hands them to PyTorch without
a copy (:meth:`CUDARenderer.to_torch`).

Nothing here runs at import of :mod:`fractaldb`: :func:`fractaldb.families.create_renderer`
imports this module only for ``device="cuda"``, and the renderer checks for a
GPU when it is built, raising :class:`~fractaldb.errors.ConfigError` with
:data:`NO_GPU` when there is none.

What runs on the host: the per-launch set-up (weighted maps, and the stream
keys of every block and draw, derived together by
:func:`~fractaldb.seeds.stream_keys`) and the degenerate-variant decisions (a
few numbers per block; the re-rendered variants run on the GPU).  Everything
per point -- map selection, chaos game, NaN trim, rescale, fill rate, raster
-- runs on the GPU; per launch the host waits for the GPU once per
chaos-game pass, for the fill counts.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError
from ..families.base import CUDARendererBase
from ..gpu import NO_GPU, NO_NUMBA_CUDA, cuda_available, gpu_start, launch_lock  # noqa: F401 - re-exported
from .policy import RETRIES, attempt_factors, degenerate_record, grow_buffer, normalise_jobs, official_uniforms
from .render import Block, RenderConfig, color_table
from ..seeds import stream_keys

__all__ = ["CUDARenderer", "NO_GPU", "NO_NUMBA_CUDA", "cuda_available", "gpu_start"]

#: Fewest scratch slots of one launch of degenerate-variant attempts (about 5 MB
#: each at the original settings); a renderer uses ``max(_RETRY_SLOTS, max_batch)``.
_RETRY_SLOTS = 256


class _Scratch:
    """Device buffers for up to ``cap`` blocks (slots) of one launch."""

    def __init__(self, cuda, cfg: RenderConfig, cap: int, need_owner: bool):
        n, size = cfg.points, cfg.size
        self.cap = cap
        self.xs = cuda.device_array((cap, n), dtype=np.float64)
        self.ys = cuda.device_array((cap, n), dtype=np.float64)
        self.sel = cuda.device_array((cap, max(1, (n + 6) // 8)), dtype=np.uint64)  # map index per step
        self.px = cuda.device_array((cap, n), dtype=np.int32)
        self.py = cuda.device_array((cap, n), dtype=np.int32)
        self.nan = cuda.device_array(cap, dtype=np.int32)
        self.npts = cuda.device_array(cap, dtype=np.int32)
        self.hits = cuda.device_array((cap, (size * size + 63) // 64), dtype=np.uint64)
        self.filled = cuda.device_array(cap, dtype=np.int64)
        shape = (cap, size, size) if need_owner else (1, 1, 1)
        self.owner = cuda.device_array(shape, dtype=np.int32)


class CUDARenderer(CUDARendererBase):
    """Renders blocks on the GPU; one instance per thread, like :class:`CPURenderer`.

    Args:
        cfg: render settings (validated by :class:`RenderConfig`).
        max_batch: most (category, weight) blocks per launch.  Device scratch
            is about ``points * 25 + size**2 * 4`` bytes per block (5.5 MB at
            the original settings), allocated once for the largest batch seen;
            with ``degenerate="replace"``, once a degenerate variant appears,
            up to ``max(256, max_batch)`` retry slots of ``points * 25`` bytes
            more.

    Raises:
        ConfigError: without numba-cuda, or without a usable GPU (:data:`NO_GPU`).
    """

    def __init__(self, cfg: RenderConfig, max_batch: int = 256):
        super().__init__(cfg, max_batch)  # the checks; self._cuda, self._k (kernels_cuda), cfg, max_batch
        cuda = self._cuda
        n = cfg.points
        self.table = cfg.weight_table()
        self.colors = color_table(cfg.color)
        self._official = cfg.compat == "official"
        self._need_owner = cfg.mode == "patch" or cfg.color == "color"
        if self._official:
            # The same uniforms as CPURenderer.official_u: np.random.seed(100) before every render.
            self.official_u = official_uniforms(n)
            u = self.official_u
        else:
            u = np.zeros(1, dtype=np.float64)
        # Every launch and copy of this renderer goes to its own stream: renderers
        # of several host threads run concurrently on the GPU.
        self._stream = cuda.stream()
        self._lock = launch_lock(own_stream=True)
        self._d_u = cuda.to_device(np.ascontiguousarray(u, dtype=np.float64))
        self._d_colors = cuda.to_device(self.colors)
        self._scratch = None
        self._retry = None
        self._dev_block = None
        self._buffer = None
        self._dev_many = self._host_many = None
        #: Chaos games (blocks and degenerate-variant attempts) whose diverging
        #: points were NaN-trimmed so far.
        self.nan_trimmed = 0

    # ------------------------------------------------------------------ public interface

    def block_buffer(self, draws: int) -> np.ndarray:
        """A reusable host ``(draws * flips, H, W, C)`` buffer, as :meth:`CPURenderer.block_buffer`."""
        cfg = self.cfg
        need = draws * cfg.flips
        self._buffer = grow_buffer(self._buffer, need, cfg.images_per_block, (cfg.size, cfg.size, cfg.channels))
        return self._buffer[:need]

    def render_block(self, category: int, ifs, weight: int, out: np.ndarray | None = None,
                     draws=None) -> Block:
        """Render all flips of ``draws`` (default: every draw) of ``(category, weight)``.

        Same contract as :meth:`CPURenderer.render_block`: the images land in
        host memory, ``out[k * flips + t]`` for the k-th requested draw.
        """
        cfg = self.cfg
        draws = list(range(cfg.draws)) if draws is None else list(draws)
        k = len(draws) * cfg.flips
        if self._dev_block is None or self._dev_block.shape[0] < k:
            self._dev_block = self._cuda.device_array(
                (max(k, cfg.images_per_block), cfg.size, cfg.size, cfg.channels), dtype=np.uint8)
        dev = self._dev_block[:k]
        _, blocks = self.render_many_device([(category, ifs, weight, draws)], out=dev, with_blocks=True)
        if out is None:
            out = np.empty((k, cfg.size, cfg.size, cfg.channels), dtype=np.uint8)
        if k:
            if out.flags.c_contiguous and out.shape == dev.shape and out.dtype == np.uint8:
                dev.copy_to_host(out, stream=self._stream)
            else:
                out[...] = dev.copy_to_host(stream=self._stream)
            self._stream.synchronize()
        block = blocks[0]
        block.images = out
        return block

    def render_many(self, jobs):
        """Render ``(category, ifs, weight[, draws])`` jobs, up to ``max_batch`` per launch.

        Same contract as :meth:`CPURenderer.render_many
        <fractaldb.ifs.render.CPURenderer.render_many>`: one :class:`Block` per
        job, in order, whose host images are valid until the next block is
        requested.  Each launch's images come to the host in one copy.
        """
        cfg = self.cfg
        jobs = normalise_jobs(jobs, cfg.draws)
        for start in range(0, len(jobs), self.max_batch):
            batch = jobs[start:start + self.max_batch]
            n = sum(len(j[3]) for j in batch) * cfg.flips
            shape = (n, cfg.size, cfg.size, cfg.channels)
            if self._dev_many is None or self._dev_many.shape[0] < n:
                # Grown to the largest launch seen; pinned host memory copies at full speed.
                self._dev_many = self._host_many = None
                self._dev_many = self._cuda.device_array(shape, dtype=np.uint8)
                self._host_many = self._cuda.pinned_array(shape, dtype=np.uint8)
            dev, host = self._dev_many[:n], self._host_many[:n]
            with self._lock:
                _, blocks = self.render_many_device(batch, out=dev, with_blocks=True)
                if n:
                    dev.copy_to_host(host, stream=self._stream)
                    self._stream.synchronize()
            offset = 0
            for block in blocks:
                k = len(block.draws) * cfg.flips
                block.images = host[offset:offset + k]
                offset += k
                yield block

    def render_many_device(self, jobs, out=None, with_blocks: bool = False):
        """Render many blocks, leaving the images in GPU memory.

        Args:
            jobs: ``(category, ifs, weight)`` or ``(category, ifs, weight, draws)``
                tuples; up to ``max_batch`` blocks run per launch.
            out: optional ``numba.cuda`` device array ``(n_images, H, W, C)`` uint8.
            with_blocks: also return one :class:`Block` per job, whose
                ``images`` is a view of the device array.

        Returns:
            The device array of every job's images, job after job, each in
            ``draw * flips + flip`` order (as :meth:`render_block`); with
            ``with_blocks``, ``(device array, blocks)``.  Rendering one block
            alone or among others gives the same images.
        """
        cfg = self.cfg
        jobs = normalise_jobs(jobs, cfg.draws)
        total = sum(len(j[3]) for j in jobs) * cfg.flips
        shape = (total, cfg.size, cfg.size, cfg.channels)
        if out is None:
            out = self._cuda.device_array(shape, dtype=np.uint8)
        elif tuple(out.shape) != shape:
            raise ConfigError(f"out must have shape {shape}, got {tuple(out.shape)}")
        blocks = []
        offset = 0
        for start in range(0, len(jobs), self.max_batch):
            batch = jobs[start:start + self.max_batch]
            with self._lock:
                meta = self._render_batch(batch, out, offset)
            for (category, _, weight, draws), (fill, factors, record) in zip(batch, meta):
                k = len(draws) * cfg.flips
                if with_blocks:  # slicing a device array costs tens of microseconds: only when asked
                    blocks.append(Block(category, weight, out[offset:offset + k], fill, factors, record, draws))
                offset += k
        return (out, blocks) if with_blocks else out

    #: The name of :meth:`render_many_device` before 0.2 (kept for existing callers).
    render_blocks_device = render_many_device

    # ------------------------------------------------------------------ launches

    def _scratch_for(self, blocks: int) -> _Scratch:
        if self._scratch is None or self._scratch.cap < blocks:
            self._scratch = None  # free the old buffers first
            self._scratch = _Scratch(self._cuda, self.cfg, blocks, self._need_owner)
        return self._scratch

    def _grid(self, inner: int, outer: int, tpb: int) -> tuple:
        """(x, y) grid: ``inner`` items per slot over x, ``outer`` slots over y."""
        g = self._k.MAX_GRID
        return (max(1, min(math.ceil(inner / tpb), g)), max(1, min(outer, g)))

    def _points(self, sc: _Scratch, act: np.ndarray, maps, cum, nmaps, keys) -> np.ndarray:
        """Chaos game, NaN trim, rescale and fill of the slots ``act`` (all on the GPU).

        Returns the distinct-pixel counts of every slot (only ``act``'s are new).
        """
        cuda, KC, cfg, st = self._cuda, self._k, self.cfg, self._stream
        n, size = cfg.points, cfg.size
        a = len(act)
        d_act = cuda.to_device(act, stream=st)
        KC.select_kernel[self._grid(sc.sel.shape[1], a, KC.TPB), KC.TPB, st](
            d_act, cum, nmaps, keys, self._d_u, self._official, n - 1, sc.sel)
        chaos_grid = max(1, min(math.ceil(a / KC.CHAOS_TPB), KC.MAX_GRID))
        KC.chaos_game_kernel[chaos_grid, KC.CHAOS_TPB, st](d_act, maps, nmaps, sc.sel, sc.xs, sc.ys)
        KC.rescale_kernel[max(1, min(a, KC.MAX_GRID)), KC.TPB, st](
            d_act, sc.xs, sc.ys, size, size, cfg.pad, self._official, sc.px, sc.py, sc.npts, sc.nan)
        bitmap = sc.hits.shape[1] * 8
        if bitmap <= KC.FILL_SHARED_BYTES:
            KC.fill_shared_kernel[max(1, min(a, KC.MAX_GRID)), KC.TPB, st, bitmap](
                d_act, sc.px, sc.py, sc.npts, size, size, sc.hits, sc.filled)
        else:
            KC.clear_fill_kernel[self._grid(sc.hits.shape[1], a, KC.TPB), KC.TPB, st](d_act, sc.hits, sc.filled)
            KC.fill_kernel[self._grid(n, a, KC.TPB), KC.TPB, st](d_act, sc.px, sc.py, sc.npts, size, size,
                                                             sc.hits, sc.filled)
        filled = sc.filled.copy_to_host(stream=st)
        nan = sc.nan.copy_to_host(stream=st)
        st.synchronize()
        self.nan_trimmed += int(np.count_nonzero(nan[act]))
        return filled

    def _replace(self, sc: _Scratch, jobs: list, bad: list, factors: list, fills: list, cum, nmaps, keys) -> None:
        """The ``replace`` policy for the degenerate slots ``bad``, as the CPU decides it.

        The CPU tries the shrunken factors one attempt after another and keeps
        the first whose fill passes (the identity last).  Every attempt is a
        pure function of the block and the attempt number, so here all
        attempts of all degenerate blocks run together (in separate slots,
        ``max(256, max_batch)`` per launch) and the first passing one is
        picked: the CPU's factors, points and fill, in one launch instead of
        up to ``RETRIES + 1`` sequential ones.  The chosen points (and fill
        bitmap) move into the block's slot on the GPU.
        """
        cuda, KC, cfg, st = self._cuda, self._k, self.cfg, self._stream
        tries = RETRIES + 1
        group = max(1, max(_RETRY_SLOTS, self.max_batch) // tries)
        for start in range(0, len(bad), group):
            part = bad[start:start + group]
            n = len(part) * tries
            if self._retry is None or self._retry.cap < n:
                self._retry = None
                self._retry = _Scratch(cuda, cfg, n, False)
            rsc = self._retry
            maps = np.zeros((n,) + (cum.shape[1], 6), dtype=np.float64)
            rcum = np.repeat(cum[part], tries, axis=0)
            rnmaps = np.repeat(nmaps[part], tries)
            rkeys = np.repeat(keys[part], tries)
            candidates = []
            for i, s in enumerate(part):
                ifs = jobs[s][1]
                for a in range(tries):
                    f = attempt_factors(factors[s], a)
                    maps[i * tries + a, :ifs.n_maps] = ifs.weighted(f)
                    candidates.append(f)
            counts = self._points(rsc, np.arange(n, dtype=np.int32),
                                  *(cuda.to_device(x, stream=st) for x in (maps, rcum, rnmaps, rkeys)))
            chosen = []
            for i, s in enumerate(part):
                for a in range(tries):
                    j = i * tries + a
                    fill = int(counts[j]) / cfg.size**2
                    if fill >= cfg.min_fill:
                        break
                factors[s], fills[s] = candidates[j], fill
                chosen.append(j)
            src = cuda.to_device(np.array(chosen, dtype=np.int32), stream=st)
            dst = cuda.to_device(np.array(part, dtype=np.int32), stream=st)
            KC.copy_slots_kernel[self._grid(cfg.points, len(part), KC.TPB), KC.TPB, st](
                src, dst, rsc.px, rsc.py, rsc.npts, rsc.hits, sc.px, sc.py, sc.npts, sc.hits)

    def _render_batch(self, jobs: list, images, offset: int) -> list:
        """Render ``jobs`` (at most ``max_batch``) into ``images[offset:]``.

        Returns ``(fill, factors, record)`` per job, as :meth:`CPURenderer.render_block` decides them.
        """
        cuda, KC, cfg = self._cuda, self._k, self.cfg
        b = len(jobs)
        if b == 0:
            return []
        sc = self._scratch_for(b)
        size = cfg.size
        m_max = max(ifs.n_maps for _, ifs, _, _ in jobs)
        maps = np.zeros((b, m_max, 6), dtype=np.float64)
        cum = np.full((b, m_max), 2.0, dtype=np.float64)
        nmaps = np.empty(b, dtype=np.int32)
        keys = stream_keys(cfg.seed, "render-points", [(category, weight) for category, _, weight, _ in jobs])
        factors = []
        for s, (category, ifs, weight, _) in enumerate(jobs):
            f = self.table[weight].copy()
            factors.append(f)
            maps[s, :ifs.n_maps] = ifs.weighted(f)
            cum[s, :ifs.n_maps] = ifs.cumulative()
            nmaps[s] = ifs.n_maps
        d_maps, d_cum, d_nmaps, d_keys = (cuda.to_device(x, stream=self._stream) for x in (maps, cum, nmaps, keys))
        act = np.arange(b, dtype=np.int32)
        counts = self._points(sc, act, d_maps, d_cum, d_nmaps, d_keys)
        fills = [int(counts[s]) / size**2 for s in range(b)]
        records = [None] * b

        # The degenerate-variant policy, exactly as CPURenderer.render_block.
        if cfg.compat == "modern" and cfg.degenerate != "keep":
            bad = [s for s in range(b) if fills[s] < cfg.min_fill]
            for s in bad:
                category, _, weight, _ = jobs[s]
                records[s] = degenerate_record(category, weight, factors[s], fills[s], cfg.degenerate)
            if cfg.degenerate == "replace" and bad:
                self._replace(sc, jobs, bad, factors, fills, cum, nmaps, keys)
                for s in bad:
                    records[s].update(replaced_by=factors[s].tolist(), replaced_fill=fills[s])

        # Raster: owners (phase 1), then every draw and flip (phase 2).
        d_act = cuda.to_device(act, stream=self._stream)
        patch = cfg.mode == "patch"
        if self._need_owner:
            st = self._stream
            KC.clear_owner_kernel[self._grid(size * size, b, KC.TPB), KC.TPB, st](d_act, sc.owner)
            KC.owner_kernel[self._grid(cfg.points, b, KC.TPB), KC.TPB, st](d_act, sc.px, sc.py, sc.npts, patch,
                                                                       sc.owner)
        # Job s composes draws d_first[s] .. d_first[s + 1] - 1 (of every job's draws, in order).
        d_first = np.zeros(b + 1, dtype=np.int32)
        np.cumsum([len(job[3]) for job in jobs], out=d_first[1:])
        n_draws = int(d_first[-1])
        if n_draws:
            if patch:
                d_key = stream_keys(cfg.seed, "render-patches",
                                    [(category, weight, d) for category, _, weight, draws in jobs for d in draws])
            else:
                d_key = np.zeros(n_draws, dtype=np.uint64)
            d_base = (offset + cfg.flips * np.arange(n_draws)).astype(np.int32)
            mode = KC.COMPOSE_PATCH if patch else (
                KC.COMPOSE_POINT_COLOR if cfg.color == "color" else KC.COMPOSE_POINT_GRAY)
            KC.compose_kernel[self._grid(size * size, b, KC.TPB), KC.TPB, self._stream](
                d_act, *(cuda.to_device(x, stream=self._stream) for x in (d_first, d_key, d_base)),
                sc.px, sc.py, sc.owner, sc.hits, self._d_colors, mode, cfg.flips, images)
        return [(fills[s], factors[s], records[s]) for s in range(b)]
