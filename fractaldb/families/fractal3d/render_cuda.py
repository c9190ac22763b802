"""GPU 3-D fractal rendering: :class:`~.model.Fractal3DRenderer`'s twin (numba-cuda).

Same interface, same images bit for bit (:mod:`.kernels_cuda` repeats the CPU
kernels' arithmetic without fused multiply-adds).  The host derives the keys
and cameras (the CPU renderer's own code), the scaled maps and the factors that
replace a diverging instance (the CPU's policy); the device runs the chaos games
(one thread per cloud), the NaN check and the projection (one thread per image
and point).  Built only for ``device="cuda"``; the
constructor checks for a GPU (:func:`fractaldb.gpu.gpu_start`).
"""

from __future__ import annotations

import numpy as np

from ...errors import ConfigError
from ...gpu import launch_lock
from ..base import CUDARendererBase
from ...ifs.policy import RETRIES
from .model import Fractal3DRenderConfig, Fractal3DRenderer, _padded, replacement_accepted, replacement_factors

__all__ = ["Fractal3DCUDARenderer"]


class Fractal3DCUDARenderer(CUDARendererBase):
    """Renders (category, instance) blocks on the GPU; one per thread.

    Args:
        cfg: render settings.
        max_batch: most blocks (clouds) per launch.

    Raises:
        ConfigError: without numba-cuda, without a usable GPU, or with a bad ``max_batch``.
    """

    def __init__(self, cfg: Fractal3DRenderConfig, max_batch: int = 1024):
        super().__init__(cfg, max_batch)  # the checks; self._cuda, self._k (kernels_cuda), cfg, max_batch
        from ...kernels.cuda_common import MAX_GRID, TPB

        self._grid, self._tpb = MAX_GRID, TPB
        self._host = Fractal3DRenderer(cfg)  # keys, cameras, weight table: the CPU renderer's code
        self._lock = launch_lock(own_stream=False)

    def keys(self, pairs):
        return self._host.keys(pairs)

    def _clouds(self, items, factors, keys):
        """Chaos games and normalisation of ``items`` scaled by ``factors`` (one row each) on
        the device: ``(device clouds (n, 3, points - 1), host NaN flags (n, 3))``."""
        cuda, KC, c = self._cuda, self._k, self.cfg
        n = len(items)
        maps, cum, counts = _padded([cls for cls, _, _ in items], np.asarray(factors, dtype=np.float64))
        divisor = float(c.points) if c.compat == "official" else float(c.points - 1)
        d_clouds = cuda.device_array((n, 3, c.points - 1), dtype=np.float64)
        grid = max(1, min(-(-n // self._tpb), self._grid))
        KC.cloud_kernel[grid, self._tpb](cuda.to_device(maps), cuda.to_device(cum), cuda.to_device(counts),
                                        cuda.to_device(np.asarray(keys, dtype=np.uint64)), divisor, d_clouds)
        flags = cuda.device_array((n, 3), dtype=np.int64)
        KC.nan_kernel[max(1, min(-(-3 * n // self._tpb), self._grid)), self._tpb](d_clouds, flags)
        return d_clouds, flags.copy_to_host()

    def _replace(self, items, keys, d_clouds, nan) -> list:
        """The CPU renderer's diverging-instance policy (:meth:`~.model.Fractal3DRenderer.finite_cloud`):
        each attempt of every item still diverging in one launch, judged on the host by the
        same :func:`~.model.replacement_accepted`; ``replaced`` per item."""
        replaced = [False] * len(items)
        bad = [j for j, axes in enumerate(nan) if axes] if self.cfg.replaces else []
        for j in bad:
            replaced[j] = None
        flags, var = np.zeros(3, dtype=np.int64), np.zeros(3)
        for attempt in range(RETRIES + 1):
            if not bad:
                break
            factors = [replacement_factors(self._host.table[items[j][2]], attempt) for j in bad]
            d_try, _ = self._clouds([items[j] for j in bad], factors, [keys[j] for j in bad])
            host = d_try.copy_to_host()
            still = []
            for t, j in enumerate(bad):
                d_clouds[j].copy_to_device(d_try[t])  # the last attempt stays, as on the CPU
                if replacement_accepted(host[t], attempt, self.cfg.variance, flags, var):
                    replaced[j] = factors[t]
                else:
                    still.append(j)
            bad = still
        return replaced

    def _launch(self, items, keys, views, out):
        """Clouds of ``items`` and the ``views`` (a list per item) into ``out``; returns the
        NaN axes of each item's own cloud and what replaced it (as the CPU renderer)."""
        cuda, KC, c = self._cuda, self._k, self.cfg
        cams = np.concatenate([self._host.cameras(k, i, v, keys[1][j]) for j, ((_, k, i), v) in
                               enumerate(zip(items, views))])
        image_cloud = np.concatenate([np.full(len(v), j, dtype=np.int64) for j, v in enumerate(views)])
        with self._lock:
            d_clouds, flags = self._clouds(items, [self._host.table[i] for _, _, i in items], keys[0])
            nan = ["".join(a for a, f in zip("xyz", row) if f) for row in flags]
            replaced = self._replace(items, list(keys[0]), d_clouds, nan)
            flat = out.reshape(out.size)
            KC.zero_kernel[max(1, min(-(-out.size // self._tpb), self._grid)), self._tpb](flat)
            total = len(cams) * (c.points - 1)
            KC.project_kernel[max(1, min(-(-total // self._tpb), self._grid)), self._tpb](
                d_clouds, cuda.to_device(image_cloud), cuda.to_device(cams), (c.point_size - 1) // 2, out)
        return nan, replaced

    def render(self, cls, category: int, instance: int, views=None, out=None, keys=None):
        """The CPU renderer's :meth:`~.model.Fractal3DRenderer.render`: host images, NaN axes and
        what replaced a diverging cloud."""
        c = self.cfg
        views = list(range(c.n_views)) if views is None else list(views)
        if keys is None:
            ck, vk = self.keys([(category, instance)])
            keys = (ck[0], vk[0])
        shape = (len(views), c.size, c.size, 1)
        if out is not None and (tuple(out.shape) != shape or out.dtype != np.uint8):
            raise ValueError(f"out must be a uint8 array of shape {shape}, got {out.dtype} {out.shape}")
        d_out = self._cuda.device_array(shape, dtype=np.uint8)
        nan, replaced = self._launch([(cls, category, instance)], ([keys[0]], [keys[1]]), [views], d_out)
        host = d_out.copy_to_host() if out is None else d_out.copy_to_host(out)
        return host, nan[0], replaced[0]

    def render_many_device(self, items, out=None):
        """Every item's views in one ``(n_items * n_views, S, S, 1)`` device array."""
        items = list(items)
        c = self.cfg
        shape = (len(items) * c.n_views, c.size, c.size, 1)
        if out is None:
            out = self._cuda.device_array(shape, dtype=np.uint8)
        elif not hasattr(out, "copy_to_host") or tuple(out.shape) != shape or out.dtype != np.uint8:
            raise ConfigError(f"out must be a numba.cuda device array of shape {shape} and dtype uint8")
        if items:
            ck, vk = self.keys([(k, i) for _, k, i in items])
            for s in range(0, len(items), self.max_batch):
                part = items[s:s + self.max_batch]
                self._launch(part, (ck[s:s + len(part)], vk[s:s + len(part)]), [list(range(c.n_views))] * len(part),
                             out[s * c.n_views:(s + len(part)) * c.n_views])
        return out

    def render_many(self, items):
        """Each item's block of all views, on the host."""
        for cls, k, i in items:
            yield self.render(cls, k, i)[0]

