"""SegRCDB on the GPU: :class:`~fractaldb.families.segrcdb.model.SegRCDBRenderer`'s twin (numba-cuda).

The host draws each polygon's class, centre, noise and grays through the CPU renderer's own
:class:`~fractaldb.families.segrcdb.model.Specs`; the device rasterises a batch of images at once
with :func:`fractaldb.contours.kernels_cuda.trace_batch` (per pixel the highest orbit wins,
``atomicMax``), and maps each pixel's orbit to its gray (the image) and its class id (the
mask).  Same bytes as the CPU, images and masks.

Imported only for ``device="cuda"``.
"""

from __future__ import annotations

import numpy as np

from ...gpu import launch_lock
from ..base import CUDARendererBase
from .model import Specs

__all__ = ["SegRCDBCUDARenderer"]


class SegRCDBCUDARenderer(Specs, CUDARendererBase):
    """Methods as the CPU renderer's; images ``(S, S, 1)`` uint8, masks ``(S, S)`` uint8."""

    kernels = "fractaldb.contours.kernels_cuda"

    def __init__(self, cfg, max_batch: int = 16):
        super().__init__(cfg, max_batch)
        self._setup(cfg)
        self._lock = launch_lock(own_stream=False)

    def _trace(self, images: list):
        """Device ``(images (n, S, S, 1) uint8, labels (n, S, S) int32)`` of lists of polygons."""
        s, n = self.cfg.image_size, len(images)
        flat = []
        for i, polygons in enumerate(images):
            for d in polygons:
                d["target"] = i
                flat.append(d)
        img = self._cuda.device_array((n, s, s), dtype=np.uint8)
        lab = self._cuda.device_array((n, s, s), dtype=np.int32)
        with self._lock:
            self._k.trace_batch(self._k.pack(flat), np.zeros(n, np.uint8), img, lab)
        return img.reshape(n, s, s, 1), lab

    def _host(self, images: list):
        img, lab = self._trace(images)
        return list(zip(img.copy_to_host(), lab.copy_to_host().astype(np.uint8)))

    def image(self, n: int):
        return self._host([list(self.modern_polygons(n, copy=True))])[0]

    def images(self, numbers) -> list:
        """``[(image, mask), ...]`` of modern images ``numbers`` in one launch (host arrays)."""
        return self._host([list(self.modern_polygons(n, copy=True)) for n in numbers])

    def official(self, worker: int, offsets):
        batch = []
        for polygons in self.official_images(worker, offsets, copy=True):
            batch.append(list(polygons))
            if len(batch) == self.max_batch:
                yield from self._host(batch)
                batch = []
        if batch:
            yield from self._host(batch)

    def render_many_device(self, jobs, out=None):
        return self._trace([list(self.modern_polygons(n, copy=True)) for n in jobs])[0]

    def render_many(self, jobs):
        jobs = list(jobs)
        for i in range(0, len(jobs), self.max_batch):
            yield from self.render_many_device(jobs[i:i + self.max_batch]).copy_to_host()
