"""GPU Perlin rendering: :class:`~fractaldb.families.perlin.model.PerlinRenderer`'s twin (numba-cuda).

:class:`PerlinCUDARenderer` has the CPU renderer's interface and input checks
and gives the same images, and the same float field, bit for bit (see
:mod:`fractaldb.families.perlin.kernels_cuda` for why).  On top of ``render`` it
renders many instances per launch into GPU memory
(:meth:`PerlinCUDARenderer.render_many_device`) and hands them to PyTorch
without a copy (:meth:`PerlinCUDARenderer.to_torch`).

Nothing here runs at import of :mod:`fractaldb` or :mod:`fractaldb.families.perlin.model`:
:func:`fractaldb.families.create_renderer` imports this module only for
``device="cuda"``, and the renderer checks for a GPU when it is built, raising
:class:`~fractaldb.errors.ConfigError` with :data:`~fractaldb.gpu.NO_GPU`
when there is none.

The host's share of a launch is a few numbers per instance: the class's
octave table (cached per class), its gain and palette, and the key.  The
lattice (permutation and offsets) is drawn on the device.
"""

from __future__ import annotations

import numpy as np

from ...errors import ConfigError
from .model import (MAX_OCTAVES, PALETTES, PerlinClass, PerlinRenderConfig, channels, check_channels, class_gain,
                    host_out, octave_table)
from ...gpu import NO_GPU, NO_NUMBA_CUDA, launch_lock  # noqa: F401 - re-exported
from ..base import CUDARendererBase

__all__ = ["PerlinCUDARenderer", "NO_GPU", "NO_NUMBA_CUDA"]

#: Palette order of the stacked lookup tables on the device.
_PALETTE_NAMES = tuple(PALETTES)


class _ClassTable:
    """Per-class rows of the launch tables (see :mod:`fractaldb.families.perlin.kernels_cuda`), one row per class seen.

    A launch picks its rows by class id with one fancy index per table, so
    the host's work per instance is a dictionary look-up and a key.
    """

    def __init__(self, cfg: PerlinRenderConfig):
        self.cfg = cfg
        self.ids: dict = {}  # PerlinClass -> row
        self._rows: list = []
        self._stacked = None

    def id(self, cls: PerlinClass) -> int:
        i = self.ids.get(cls)
        if i is None:
            cfg = self.cfg
            freqs, amps, periods = octave_table(cls, cfg.size, cfg.tileable)
            n = len(freqs)
            steps = np.zeros(MAX_OCTAVES, dtype=np.float64)
            # NumPy's float64 division, as the CPU kernel's ``freqs[o] / size``: both IEEE, the same value.
            steps[:n] = freqs / cfg.size
            a = np.zeros(MAX_OCTAVES, dtype=np.float64)
            a[:n] = amps
            p = np.zeros(MAX_OCTAVES, dtype=np.int64)
            p[:n] = periods
            self._rows.append((steps, a, p, n, class_gain(amps), _PALETTE_NAMES.index(cls.palette)))
            self._stacked = None
            i = self.ids[cls] = len(self._rows) - 1
        return i

    def rows(self, ids: np.ndarray) -> tuple:
        """``(steps, amps, periods, noct, gains, lut_id)`` of the classes ``ids``, one row per instance."""
        if self._stacked is None:
            cols = list(zip(*self._rows))
            self._stacked = (np.stack(cols[0]), np.stack(cols[1]), np.stack(cols[2]),
                             np.array(cols[3], dtype=np.int32), np.array(cols[4], dtype=np.float64),
                             np.array(cols[5], dtype=np.int32))
        return tuple(t[ids] for t in self._stacked)


class PerlinCUDARenderer(CUDARendererBase):
    """Renders Perlin instances on the GPU; one renderer per thread, like :class:`~fractaldb.families.perlin.model.PerlinRenderer`.

    Args:
        cfg: render settings (validated by :class:`~fractaldb.families.perlin.model.PerlinRenderConfig`).
        max_batch: most instances per launch (one thread block each).  Larger
            batches fill a big GPU better (on an H100, 4096 renders 256 px
            images about 1.3 times as fast as 1024, see docs/gpu.md);
            ``render_many_device`` splits longer lists into launches of this
            size, with the same images.  The device tables take about 400
            bytes per instance.

    Raises:
        ConfigError: without numba-cuda (:data:`NO_NUMBA_CUDA`), without a
            usable GPU (:data:`NO_GPU`), or with a bad ``max_batch``.
    """

    def __init__(self, cfg: PerlinRenderConfig, max_batch: int = 4096):
        super().__init__(cfg, max_batch)  # the checks; self._cuda, self._k (kernels_cuda), cfg, max_batch
        from ...kernels.cuda_common import MAX_GRID

        cuda = self._cuda
        self._max_grid = MAX_GRID
        self._classes = _ClassTable(cfg)
        self._lock = launch_lock(own_stream=False)
        self._d_luts = cuda.to_device(np.stack([PALETTES[p] for p in _PALETTE_NAMES]))
        n = cfg.size
        #: Host buffer of :meth:`render_field` (as the CPU renderer's ``field``).
        self.field = np.empty((n, n), dtype=np.float64)
        self._d_field = None
        self._d_image = {}  # channels -> (1, size, size, C) device buffer of render()

    # ------------------------------------------------------------------ public interface

    def shape(self, cls: PerlinClass) -> tuple:
        """``(size, size, C)`` of a render of ``cls``."""
        return (self.cfg.size, self.cfg.size, channels(cls.palette))

    def render_field(self, cls: PerlinClass, key) -> np.ndarray:
        """The float octave sum ``v`` on the host (the renderer's own buffer, overwritten by the next call).

        Bit-identical to :meth:`PerlinRenderer.render_field <fractaldb.families.perlin.model.PerlinRenderer.render_field>`.
        """
        cuda, KP = self._cuda, self._k
        n = self.cfg.size
        if self._d_field is None:
            self._d_field = cuda.device_array((1, n, n), dtype=np.float64)
        keys, steps, amps, periods, noct, _, _ = self._tables([(cls, key)])
        KP.perlin_field_kernel[1, KP.PERLIN_TPB](keys, steps, amps, periods, noct, self._d_field)
        self._d_field.copy_to_host(self.field.reshape(1, n, n))
        return self.field

    def render(self, cls: PerlinClass, key, out: np.ndarray | None = None) -> np.ndarray:
        """One instance in host memory: ``(size, size, C)`` uint8, C = 1 for ``gray``, 3 otherwise.

        Same contract and checks as :meth:`PerlinRenderer.render <fractaldb.families.perlin.model.PerlinRenderer.render>`.

        Args:
            cls: the class.
            key: :func:`~fractaldb.families.perlin.model.instance_key` of (seed, class index, instance).
            out: optional C-contiguous uint8 host array of that shape to write into.

        Returns:
            ``out`` (or a new array) holding the image.

        Raises:
            ValueError: ``out`` has the wrong shape, dtype or layout.
        """
        shape = self.shape(cls)
        out = host_out(shape, out)
        c = shape[2]
        if c not in self._d_image:
            self._d_image[c] = self._cuda.device_array((1,) + shape, dtype=np.uint8)
        dev = self.render_many_device([(cls, key)], out=self._d_image[c])
        dev.copy_to_host(out.reshape((1,) + shape))
        return out

    def render_many_device(self, items, out=None):
        """Render many instances, leaving the images in GPU memory.

        Args:
            items: ``(PerlinClass, key)`` pairs whose palettes have the same
                channel count (all ``gray``, or all colour); classes, octave
                counts and palettes may otherwise differ.  Up to ``max_batch``
                instances run per launch.
            out: optional ``numba.cuda`` device array ``(len(items), size, size, C)`` uint8.

        Returns:
            The device array, ``[i]`` = the image of ``items[i]``, bit-identical
            to :meth:`render` of that item alone (C = 1 when ``items`` is empty
            and no ``out`` is given).

        Raises:
            ConfigError: the items' channel counts differ, or ``out`` is not a
                device array of that shape and dtype.
        """
        cfg = self.cfg
        items = list(items)
        c = check_channels(items) if items else (out.shape[3] if out is not None and len(out.shape) == 4 else 1)
        shape = (len(items), cfg.size, cfg.size, c)
        if out is None:
            out = self._cuda.device_array(shape, dtype=np.uint8)
        elif not hasattr(out, "copy_to_host") or tuple(getattr(out, "shape", ())) != shape \
                or getattr(out, "dtype", None) != np.uint8:
            t = type(out)
            kind = "a device array" if hasattr(out, "copy_to_host") else f"a {t.__module__.split('.')[0]}.{t.__name__}"
            raise ConfigError(f"out must be a numba.cuda device array of shape {shape} and dtype uint8, "
                              f"got {kind} of shape {tuple(getattr(out, 'shape', ()))} and dtype "
                              f"{getattr(out, 'dtype', None)}")
        KP = self._k
        for start in range(0, len(items), self.max_batch):
            batch = items[start:start + self.max_batch]
            with self._lock:  # launches on the default stream: one sequence at a time per process
                keys, steps, amps, periods, noct, gains, lut = self._tables(batch)
                grid = max(1, min(len(batch), self._max_grid))
                KP.perlin_image_kernel[grid, KP.PERLIN_TPB](keys, steps, amps, periods, noct, gains, lut,
                                                            self._d_luts, out[start:start + len(batch)])
        return out

    def render_many(self, items):
        """Render ``(PerlinClass, key)`` items, ``max_batch`` per launch and one channel
        count at a time; yields each item's host image, in order (valid until the next
        launch's images are requested)."""
        items = list(items)
        by_channels = {}
        for i, (cls, _) in enumerate(items):
            by_channels.setdefault(channels(cls.palette), []).append(i)
        images = [None] * len(items)
        for c, idx in sorted(by_channels.items()):
            for start in range(0, len(idx), self.max_batch):
                part = idx[start:start + self.max_batch]
                host = self.render_many_device([items[i] for i in part]).copy_to_host()
                for i, img in zip(part, host):
                    images[i] = img
        for i in range(len(items)):
            yield images[i]
            images[i] = None


    # ------------------------------------------------------------------ launches

    def _tables(self, batch: list) -> tuple:
        """The per-instance tables of ``batch`` on the device (see :mod:`fractaldb.families.perlin.kernels_cuda`)."""
        n = len(batch)
        keys = np.empty(n, dtype=np.uint64)
        ids = np.empty(n, dtype=np.int64)
        table = self._classes
        for s, (cls, key) in enumerate(batch):
            ids[s] = table.id(cls)
            keys[s] = key
        to = self._cuda.to_device
        return (to(keys),) + tuple(to(a) for a in table.rows(ids))
