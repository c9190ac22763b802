"""Pillow's width-1 ``ImageDraw.line`` on a 2-D array, in numba (FDSL.md §1.3).

``draw.line((x0, y0, x1, y1), fill=g, width=1)`` on an image ``H x W``:

1. the float endpoints become ints by truncation toward zero (a C cast: -0.9 -> 0);
2. Bresenham from (X0, Y0) to (X1, Y1), the final point excluded: with dx = |X1 - X0|,
   dy = |Y1 - Y0| and steps sx, sy (+-1), pixel i (0 <= i < max(dx, dy)) is
   ``(X0 + sx*i, Y0 + sy*floor((2*i*dy + dx) / (2*dx)))`` when dx > dy, else the same
   with x and y swapped (:func:`line_pixel`, the closed form of Pillow's loop);
3. then one dot at (X1, Y1): a zero-length edge draws one pixel;
4. every pixel is bounds-checked alone (an edge with both ends outside still draws its
   visible part); 5. pixels are overwritten (no blending, no antialiasing).

Direction matters: A -> B and B -> A differ in general.

Speed (the trace of one VisualAtom instance, docs/benchmarks.md): the kernels the orbit tracer
calls per edge (``line_steps``, ``walk_inside``, ``plot``) are inlined into their callers at
numba's IR level (``inline="always"``: called, they cost a call per edge), and the walks step
the minor axis by multiplying with a 0/1 flag instead of branching on it (the branch goes
either way as often as not).  Together 1.2-2.2x on six VisualAtom classes' traces
(benchmarks/bench_trace.py, A/B).
``draw_line``, the rare path of edges that leave the frame, stays a call: inlined, it made the
tracer slower.

Kernels (``img``: 2-D uint8 ``(H, W)``; ``idx``: an int32 array of the same shape, or
``(0, 0)`` for none; ``value`` a byte, ``index`` written into ``idx``):

* :func:`line_pixel(X0, Y0, dx, dy, sx, sy, i)` -> ``(x, y)``: pixel ``i`` of step 2;
* :func:`line_steps(X0, Y0, X1, Y1)` -> ``(dx, dy, sx, sy, n)``: ``n = max(dx, dy)`` pixels
  before the end dot;
* :func:`draw_line(img, idx, x0, y0, x1, y1, value, index)`: the whole call (1-5);
* :func:`walk_inside(img, X0, Y0, X1, Y1, dx, dy, sx, sy, n, value)`: steps 2-3 for an integer
  edge whose bounding box lies in the frame (no bounds checks).
  Endpoints must lie within +-2^31 (a C int); edges farther out are skipped.
"""

from __future__ import annotations

import numpy as np

from .._jit import kernel

__all__ = ["line_pixel", "line_steps", "draw_line", "walk_inside", "plot", "LIMIT"]

#: Endpoint coordinates must stay below this in magnitude (Pillow casts to a C int).
LIMIT = 2147483647.0


@kernel(inline="always")
def line_steps(X0, Y0, X1, Y1):
    """``(dx, dy, sx, sy, n)`` of the integer edge (X0, Y0) -> (X1, Y1); ``n = max(dx, dy)``."""
    dx = X1 - X0
    sx = np.int64(1)
    if dx < 0:
        dx = -dx
        sx = np.int64(-1)
    dy = Y1 - Y0
    sy = np.int64(1)
    if dy < 0:
        dy = -dy
        sy = np.int64(-1)
    return dx, dy, sx, sy, max(dx, dy)


@kernel
def line_pixel(X0, Y0, dx, dy, sx, sy, i):
    """Pixel ``i`` (``0 <= i < max(dx, dy)``) of Pillow's Bresenham walk, in closed form."""
    if dx > dy:
        return X0 + sx * i, Y0 + sy * ((2 * i * dy + dx) // (2 * dx))
    return X0 + sx * ((2 * i * dx + dy) // (2 * dy)), Y0 + sy * i


@kernel(inline="always")
def plot(img, idx, x, y, value, index):
    """One pixel if inside the frame (and its index when ``idx`` is not empty)."""
    if 0 <= x < img.shape[1] and 0 <= y < img.shape[0]:
        img[y, x] = value
        if idx.shape[0] > 0:
            idx[y, x] = index


@kernel(inline="always")
def walk_inside(img, X0, Y0, X1, Y1, dx, dy, sx, sy, n, value):
    """:func:`draw_line`'s walk for an edge whose bounding box lies in the frame (no checks)."""
    x, y = X0, Y0
    if dx > dy:
        e = 2 * dy - dx
        for _ in range(n):
            img[y, x] = value
            m = np.int64(e >= 0)  # step the minor axis: as often as not, so no branch
            y += sy * m
            e += 2 * dy - 2 * dx * m
            x += sx
    else:
        e = 2 * dx - dy
        for _ in range(n):
            img[y, x] = value
            m = np.int64(e >= 0)
            x += sx * m
            e += 2 * dx - 2 * dy * m
            y += sy
    img[Y1, X1] = value


@kernel
def draw_line(img, idx, x0, y0, x1, y1, value, index):
    """``ImageDraw.line((x0, y0, x1, y1), fill=value, width=1)`` into ``img`` (and ``index`` into ``idx``)."""
    if not (abs(x0) < LIMIT and abs(y0) < LIMIT and abs(x1) < LIMIT and abs(y1) < LIMIT):
        return
    X0 = np.int64(x0)  # truncation toward zero, as C's cast
    Y0 = np.int64(y0)
    X1 = np.int64(x1)
    Y1 = np.int64(y1)
    h = img.shape[0]
    w = img.shape[1]
    # Every pixel of the edge lies in the endpoints' bounding box: outside the frame, none is drawn.
    if max(X0, X1) < 0 or min(X0, X1) >= w or max(Y0, Y1) < 0 or min(Y0, Y1) >= h:
        return
    dx, dy, sx, sy, n = line_steps(X0, Y0, X1, Y1)
    if idx.shape[0] == 0 and min(X0, X1) >= 0 and max(X0, X1) < w and min(Y0, Y1) >= 0 and max(Y0, Y1) < h:
        walk_inside(img, X0, Y0, X1, Y1, dx, dy, sx, sy, n, value)
        return
    # Pillow's error-term walk: the pixels of line_pixel, without a division per pixel.
    x, y = X0, Y0
    if dx > dy:
        e = 2 * dy - dx
        for _ in range(n):
            plot(img, idx, x, y, value, index)
            m = np.int64(e >= 0)
            y += sy * m
            e += 2 * dy - 2 * dx * m
            x += sx
    else:
        e = 2 * dx - dy
        for _ in range(n):
            plot(img, idx, x, y, value, index)
            m = np.int64(e >= 0)
            x += sx * m
            e += 2 * dx - 2 * dy * m
            y += sy
    plot(img, idx, X1, Y1, value, index)
