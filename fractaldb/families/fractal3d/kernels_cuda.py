"""CUDA twins of the 3-D fractal kernels (numba-cuda): the same arithmetic as
:mod:`.kernels`, operation for operation.

Every ``a * b + c`` goes through :func:`~fractaldb.kernels.cuda_common._mul` /
:func:`~fractaldb.kernels.cuda_common._add` so NVVM cannot fuse it into an FMA
(see :mod:`fractaldb.kernels.cuda_common`); divisions are IEEE (``div.rn.f64``)
as on the CPU.  One thread per cloud for the chaos game (it is sequential), one
thread per (image, point) for the projection.  Importing this module imports
``numba.cuda``; only :mod:`.render_cuda` does, lazily.
"""

from __future__ import annotations

import numpy as np
from numba import cuda, float32, float64, int64

from ...kernels.cuda_common import _add, _mul, device_twin, uniform
from . import kernels as K

#: :func:`.kernels.normalise`, compiled from its own code (one body: the same bits on both).
normalise = device_twin(K.normalise)

__all__ = ["cloud_kernel", "nan_kernel", "zero_kernel", "project_kernel"]


@cuda.jit
def cloud_kernel(maps, cum, n_maps, keys, divisor, clouds):
    """``clouds[b]`` = :func:`.kernels.chaos_game` then :func:`.kernels.normalise` of item ``b``."""
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for b in range(start, clouds.shape[0], stride):
        pts = clouds[b]
        p = maps[b]
        x = 0.0
        y = 0.0
        z = 0.0
        n = pts.shape[1]
        for i in range(n):
            u = uniform(keys[b], i)
            for m in range(n_maps[b]):
                if u <= cum[b, m]:
                    nx = _add(_add(_add(_mul(x, p[m, 0]), _mul(y, p[m, 1])), _mul(z, p[m, 2])), p[m, 9])
                    ny = _add(_add(_add(_mul(x, p[m, 3]), _mul(y, p[m, 4])), _mul(z, p[m, 5])), p[m, 10])
                    nz = _add(_add(_add(_mul(x, p[m, 6]), _mul(y, p[m, 7])), _mul(z, p[m, 8])), p[m, 11])
                    x = nx
                    y = ny
                    z = nz
                    break
            pts[0, i] = x
            pts[1, i] = y
            pts[2, i] = z
        normalise(pts, divisor)


@cuda.jit
def nan_kernel(clouds, flags):
    """``flags[b, r]`` = 1 if row ``r`` of cloud ``b`` holds a NaN (one thread per row)."""
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for t in range(start, clouds.shape[0] * 3, stride):
        b = t // 3
        r = t - 3 * b
        f = 0
        for i in range(clouds.shape[2]):
            if clouds[b, r, i] != clouds[b, r, i]:
                f = 1
                break
        flags[b, r] = f


@cuda.jit
def zero_kernel(flat):
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for i in range(start, flat.shape[0], stride):
        flat[i] = 0


@cuda.jit
def project_kernel(clouds, image_cloud, cams, half, out):
    """:func:`.kernels.project_points` of image ``j``'s cloud with camera ``cams[j]``
    (squares of side ``2 half + 1``) into ``out[j, :, :, 0]``; one thread per (image,
    point), grid-stride.  Threads write only 255, so overlapping squares race harmlessly."""
    n = clouds.shape[2]
    total = out.shape[0] * n
    size = out.shape[1]
    hs = size * 0.5
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for t in range(start, total, stride):
        j = t // n
        i = t - j * n
        b = image_cloud[j]
        cam = cams[j]
        x = float64(float32(clouds[b, 0, i]))  # the float32 vertex buffer
        y = float64(float32(clouds[b, 1, i]))
        z = float64(float32(clouds[b, 2, i]))
        d = _add(_add(_add(_mul(cam[6], x), _mul(cam[7], y)), _mul(cam[8], z)), cam[9])
        if not (d >= cam[11] and d <= cam[12]):
            continue
        k = cam[10] / d
        nx = _mul(_add(_add(_mul(cam[0], x), _mul(cam[1], y)), _mul(cam[2], z)), k)
        ny = _mul(_add(_add(_mul(cam[3], x), _mul(cam[4], y)), _mul(cam[5], z)), k)
        if not (nx >= -1.0 and nx <= 1.0 and ny >= -1.0 and ny <= 1.0):
            continue
        col = int64(_mul(hs, _add(1.0, nx)))
        row = int64(_mul(hs, _add(1.0, ny)))
        if half == 0:
            if col < size and row < size:
                out[j, row, col, 0] = 255
            continue
        for r in range(max(row - half, 0), min(row + half + 1, size)):
            for c in range(max(col - half, 0), min(col + half + 1, size)):
                out[j, r, c, 0] = 255
