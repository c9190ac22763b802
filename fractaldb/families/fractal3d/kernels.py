"""Numba kernels of the 3-D fractal family: the chaos game, the joint
normalisation with its centroid, the variance gate and the point projection.

Dumb kernels over preallocated arrays (see :mod:`fractaldb._jit`); the slow,
literal NumPy twins are in ``tests/fractal3d_reference.py`` and
``tests/test_fractal3d.py`` compares them with the JIT on and off.
"""

from __future__ import annotations

import numpy as np

from ..._jit import kernel
from ...kernels.arith import add, mul
from ...kernels.random import splitmix64

__all__ = ["view_uniforms", "chaos_game", "normalise", "nan_rows", "variances", "passes", "search_batch", "project_points"]

_INV53 = 1.0 / 9007199254740992.0


@kernel
def view_uniforms(keys, out):
    """``out[v, j]`` = uniform draw ``j`` of ``keys[v]`` (``out`` is ``(n, 2)``)."""
    for v in range(keys.shape[0]):
        for j in range(out.shape[1]):
            out[v, j] = np.float64(splitmix64(keys[v], j) >> np.uint64(11)) * _INV53


@kernel
def chaos_game(maps, cum, n_maps, key, out):
    """The original's chaos game from (0, 0, 0): ``out[:, i]`` is point ``i``.

    ``maps[m]`` holds a..l of map ``m`` (``x' = a x + b y + c z + j`` ...),
    ``cum[m]`` the running sum of the probabilities; uniform ``i`` (draw ``i``
    of ``key``) picks the first map with ``u <= cum[m]``.  When none does
    (``cum`` rounds below 1) the point repeats, as the original's loop keeps
    its last value.  Sums are evaluated left to right as the original writes them.
    """
    x = 0.0
    y = 0.0
    z = 0.0
    for i in range(out.shape[1]):
        u = np.float64(splitmix64(key, i) >> np.uint64(11)) * _INV53
        for m in range(n_maps):
            if u <= cum[m]:
                p = maps[m]
                nx = x * p[0] + y * p[1] + z * p[2] + p[9]
                ny = x * p[3] + y * p[4] + z * p[5] + p[10]
                nz = x * p[6] + y * p[7] + z * p[8] + p[11]
                x = nx
                y = ny
                z = nz
                break
        out[0, i] = x
        out[1, i] = y
        out[2, i] = z


@kernel
def normalise(pts, divisor):
    """In place: ``q = ((v - min) / (max - min)) * 2 - 1`` with one min and max over
    all coordinates (NaN if any coordinate is NaN, as ``np.min`` gives), then each
    row minus its sum (left to right) over ``divisor``."""
    lo = np.inf
    hi = -np.inf
    has_nan = False
    for r in range(3):
        for i in range(pts.shape[1]):
            v = pts[r, i]
            if v != v:
                has_nan = True
            if v < lo:
                lo = v
            if v > hi:
                hi = v
    if has_nan:
        lo = np.nan
        hi = np.nan
    span = hi - lo
    for r in range(3):
        s = 0.0
        for i in range(pts.shape[1]):
            q = add(mul((pts[r, i] - lo) / span, 2.0), -1.0)  # each rounded alone: the GPU twin's bits
            pts[r, i] = q
            s = add(s, q)
        c = s / divisor
        for i in range(pts.shape[1]):
            pts[r, i] = pts[r, i] - c


@kernel
def nan_rows(pts, out):
    """``out[r]`` = 1 if row ``r`` of ``pts`` holds a NaN, else 0."""
    for r in range(3):
        out[r] = 0
        for i in range(pts.shape[1]):
            if pts[r, i] != pts[r, i]:
                out[r] = 1
                break


@kernel
def variances(pts, out):
    """``out[r]`` = the population variance (ddof 0) of row ``r`` (sequential sums)."""
    n = pts.shape[1]
    for r in range(3):
        s = 0.0
        for i in range(n):
            s += pts[r, i]
        mean = s / n
        v = 0.0
        for i in range(n):
            d = pts[r, i] - mean
            v += d * d
        out[r] = v / n


@kernel
def passes(pts, nan_all, threshold, flags, var):
    """The search's gate on a normalised cloud: no NaN in the y row (``nan_all`` = 0,
    the original) or in any row (``nan_all`` = 1), and the variance of every row
    strictly above ``threshold``.  ``flags`` and ``var`` are scratch (3,) arrays."""
    nan_rows(pts, flags)
    if flags[1] != 0 or (nan_all != 0 and (flags[0] != 0 or flags[2] != 0)):
        return False
    variances(pts, var)
    return var[0] > threshold and var[1] > threshold and var[2] > threshold


@kernel
def search_batch(maps, cum, n_maps, keys, divisor, nan_all, threshold, scratch, accepted):
    """Evaluate candidates: ``accepted[c]`` = 1 when candidate ``c`` passes the gate.

    ``maps`` ``(B, 7, 12)``, ``cum`` ``(B, 7)``, ``n_maps`` ``(B,)``, ``keys``
    ``(B,)`` uint64, ``scratch`` ``(3, points - 1)``; the gate is :func:`passes`.
    """
    flags = np.zeros(3, dtype=np.int64)
    var = np.zeros(3, dtype=np.float64)
    for c in range(maps.shape[0]):
        chaos_game(maps[c], cum[c], n_maps[c], keys[c], scratch)
        normalise(scratch, divisor)
        accepted[c] = 1 if passes(scratch, nan_all, threshold, flags, var) else 0


@kernel
def project_points(pts, cam, half, out):
    """Splat float32 points into ``out`` (``(S, S)`` uint8, cleared by the caller) as
    white (255) squares of side ``2 half + 1``, seen by the camera ``cam`` (float64[13]).

    ``cam`` = (s, u, f, dist, cot(fovy / 2), near, far): the camera's right, up
    and forward unit vectors (gluLookAt's), the camera at ``-dist * f`` looking
    at the origin (:func:`fractaldb.families.fractal3d.model.camera`).  In eye
    coordinates ``x_e = s . p``, ``y_e = u . p`` and the depth
    ``d = -z_e = f . p + dist``.  gluPerspective with aspect 1 and the viewport
    of side S give ``x_w = S/2 (1 + cot x_e / d)``, ``y_w = S/2 (1 + cot y_e / d)``;
    a point is kept when ``near <= d <= far`` and both NDC lie in [-1, 1] (GL
    clips a point by its vertex); it lights pixel ``(row floor(y_w), column
    floor(x_w))`` (GL's bottom-up rows saved as they are: world +y points down in
    the image) and, for ``half > 0`` (GL point size ``2 half + 1``: an odd size's
    square is centred on that pixel), the pixels within ``half`` of it in both
    directions that lie in the image.  Depth order does not matter: every point
    has the one colour.
    """
    size = out.shape[0]
    hs = size * 0.5
    s0, s1, s2 = cam[0], cam[1], cam[2]
    u0, u1, u2 = cam[3], cam[4], cam[5]
    f0, f1, f2 = cam[6], cam[7], cam[8]
    dist, cot, near, far = cam[9], cam[10], cam[11], cam[12]
    for i in range(pts.shape[1]):
        x = np.float64(pts[0, i])
        y = np.float64(pts[1, i])
        z = np.float64(pts[2, i])
        d = f0 * x + f1 * y + f2 * z + dist
        if not (d >= near and d <= far):
            continue  # also drops NaN points
        k = cot / d  # one division per point (the reference divides clip by w)
        nx = (s0 * x + s1 * y + s2 * z) * k
        ny = (u0 * x + u1 * y + u2 * z) * k
        if not (nx >= -1.0 and nx <= 1.0 and ny >= -1.0 and ny <= 1.0):
            continue
        # x_w, y_w in [0, size]: truncation is floor here
        col = np.int64(hs * (1.0 + nx))
        row = np.int64(hs * (1.0 + ny))
        if half == 0:
            if col < size and row < size:  # NDC exactly 1 falls on the far edge
                out[row, col] = 255
            continue
        for r in range(max(row - half, 0), min(row + half + 1, size)):
            for c in range(max(col - half, 0), min(col + half + 1, size)):
                out[r, c] = 255
