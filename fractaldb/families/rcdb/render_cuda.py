"""RCDB on the GPU: :class:`~fractaldb.families.rcdb.model.RCDBRenderer`'s twin (numba-cuda).

The host draws what a CPU instance draws -- the placement, the noise ``P`` and the grays,
replayed from the script's stream (official) or keyed (modern), through the same
:class:`~fractaldb.families.rcdb.model.Specs` -- and the device rasterises a batch of
instances at once with :func:`fractaldb.contours.kernels_cuda.trace_batch`: vertices by the
CPU's own scalar steps, every edge in parallel, per pixel the highest orbit wins
(``atomicMax``), which is what drawing in order gives.  Same bytes as the CPU.

Imported only for ``device="cuda"``; without a usable GPU the renderer raises
:class:`~fractaldb.errors.ConfigError` when it is built.
"""

from __future__ import annotations

import numpy as np

from ...gpu import launch_lock
from ..base import CUDARendererBase
from .model import Scratch, Specs

__all__ = ["RCDBCUDARenderer"]


class RCDBCUDARenderer(Specs, CUDARendererBase):
    """Jobs and methods as the CPU renderer's; images ``(S, S, 1)`` uint8."""

    kernels = "fractaldb.contours.kernels_cuda"

    def __init__(self, cfg, max_batch: int = 64):
        super().__init__(cfg, max_batch)
        self.scratch = Scratch(cfg)
        self._lock = launch_lock(own_stream=False)

    def _trace(self, specs: list):
        """Device images ``(n, S, S, 1)`` of the instances ``specs`` (one image each), on white."""
        s = self.cfg.image_size
        for i, d in enumerate(specs):
            d["target"] = i
        img = self._cuda.device_array((len(specs), s, s), dtype=np.uint8)
        with self._lock:
            self._k.trace_batch(self._k.pack(specs), np.full(len(specs), 255, np.uint8), img)
        return img.reshape(len(specs), s, s, 1)

    def _batches(self, specs):
        batch = []
        for d in specs:
            batch.append(d)
            if len(batch) == self.max_batch:
                yield batch
                batch = []
        if batch:
            yield batch

    def modern(self, cls, key) -> np.ndarray:
        return self._trace([self.modern_spec(cls, key, copy=True)]).copy_to_host()[0]

    def official(self, klass: int, offsets):
        for batch in self._batches(self.official_specs(klass, offsets, copy=True)):
            yield from self._trace(batch).copy_to_host()

    def render_many_device(self, jobs, out=None):
        jobs = list(jobs)
        return self._trace([self.modern_spec(cls, key, copy=True) for cls, key in jobs])

    def render_many(self, jobs):
        for batch in self._batches(iter(jobs)):
            yield from self.render_many_device(batch).copy_to_host()
