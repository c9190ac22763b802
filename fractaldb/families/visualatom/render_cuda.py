"""GPU VisualAtom rendering: :class:`~.model.VisualAtomRenderer`'s twin (numba-cuda), the same bytes.

In official mode the host replays each instance's noise and grays (CPython's stream is
sequential: the CPU kernels themselves); in modern mode the GPU draws them from each image's
key (:func:`fractaldb.contours.kernels_cuda.keyed_fill`, the CPU's stream and noise law compiled
for the device); the host draws the centres.  The GPU computes the vertices and rasterises every edge of a batch at once, keeping the highest
orbit per pixel (:mod:`fractaldb.contours.kernels_cuda`), which is what drawing in order gives.
Imported only for ``device="cuda"``.
"""

from __future__ import annotations

import itertools

import numpy as np

from ...contours import orbits as O
from ...contours.pyrandom import py_randint, skip
from ..base import CUDARendererBase
from . import kernels as K
from .model import Item, VisualAtomRenderConfig, state_array, trig

__all__ = ["VisualAtomCUDARenderer"]


class VisualAtomCUDARenderer(CUDARendererBase):
    """Renders VisualAtom items on the GPU, ``max_batch`` images per launch.

    Raises:
        ConfigError: without numba-cuda or a usable GPU, or a bad ``max_batch``.
    """

    kernels = "...contours.kernels_cuda"

    def __init__(self, cfg: VisualAtomRenderConfig, max_batch: int = 256):
        super().__init__(cfg, max_batch)

    def _instances(self, item: Item):
        """The packed-instance dicts of the item's images (host noise, grays, centre)."""
        cfg, cls = self.cfg, item.cls
        base = {"trig": trig(cls.vertices, cls.wave1, cls.wave2), "r0": float(cls.radius), "ox": cls.oval_x,
                "oy": cls.oval_y, "c": cls.noise, "lam": cls.line_width, "alpha": 1.0, "wave": True,
                "centre_first": True}

        def fresh():
            return np.empty((cls.orbits, 2, cls.vertices)), np.empty(cls.orbits, dtype=np.int32)

        if item.block < 0:  # noise and grays drawn on the device (keyed_fill)
            key = np.uint64(item.key)
            n = 2 * cls.orbits * cls.vertices + cls.orbits
            yield {**base, "orbits": cls.orbits, "key": key,
                   "cy": K.keyed_centre(key, n, cfg.size, cfg.start_pos),
                   "cx": K.keyed_centre(key, n + 1, cfg.size, cfg.start_pos)}
            return
        st = state_array(cls.state)
        skip(st, np.int64(cls.offsets[item.block]))
        cy, cx = cls.centres[item.block]
        for i in range(item.count):
            P, grays = fresh()
            O.replay_draws(st, 0, 255, False, P, grays)
            yield {**base, "P": P, "grays": grays, "cy": cy, "cx": cx}
            if i + 1 < item.count:
                cy = (cfg.size + py_randint(st, -cfg.start_pos, cfg.start_pos)) / 2
                cx = (cfg.size + py_randint(st, -cfg.start_pos, cfg.start_pos)) / 2

    def render_many_device(self, items, out=None):
        """All items' images in one device array ``(n, size, size, channels)`` uint8.

        Instances are made ``max_batch`` at a time, just before their launch: an official
        instance's replayed noise is about 0.8 MB of float64 at the presets' sizes, so making
        a pipeline group's 8,000 at once would hold gigabytes of host memory."""
        cuda, KC = self._cuda, self._k
        items = list(items)
        s, c = self.cfg.size, self.cfg.channels
        n = sum(1 if item.block < 0 else item.count for item in items)
        if out is None:
            out = cuda.device_array((n, s, s, c), dtype=np.uint8)
        instances = (d for item in items for d in self._instances(item))
        for start in range(0, n, self.max_batch):
            part = list(itertools.islice(instances, self.max_batch))
            for t, d in enumerate(part):
                d["target"] = t
            gray = cuda.device_array((len(part), s, s), dtype=np.uint8)
            tables = KC.pack(part)
            if part and "key" in part[0]:  # modern: every item keyed
                tables = KC.keyed_fill(tables, [d["key"] for d in part], 0, 255, self.cfg.perlin_grad == "fixed")
            KC.trace_batch(tables, np.zeros(len(part), dtype=np.uint8), gray)
            KC.spread_channels(gray, out[start:start + len(part)])
        return out

    def render_many(self, items):
        """Every item's images as host ``(size, size, channels)`` arrays, in order."""
        items = list(items)
        if items:
            yield from self.render_many_device(items).copy_to_host()
