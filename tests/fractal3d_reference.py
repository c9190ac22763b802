"""Slow, literal NumPy references of the 3-D fractal family (not a test module).

Each function follows the original's code path step by step (ryosuke-yamada/
3dfractaldb ae70984: ``IteratedFunctionSystem.py``, ``category_search.py``,
``instance.py``, ``image_render/render.py``) with the fixed-point stream in
place of NumPy's global one, and -- for the renderer -- the OpenGL pipeline
written out as matrices: gluLookAt, gluPerspective, the clip test, the
perspective divide and the viewport transform.  Nothing here shares code with
the kernels it checks, except the uniform stream.
"""

from __future__ import annotations

import math

import numpy as np

from fractaldb.kernels.random import fill_uniform


def chaos_game(maps13, weights, key, point_num):
    """``ifs_function.set_param`` + ``calculate``: lists, dicts, the first map with
    ``rand[i] <= select_function[j]``; returns ``(3, point_num - 1)``."""
    functions, select, temp = [], [], 0.0
    for row in maps13:
        vals = [float(v) * float(w) for v, w in zip(row[:12], weights)]
        functions.append(dict(zip("abcdefghijkl", vals)))
        temp += float(row[12])
        select.append(temp)
    rand = np.empty(point_num)
    fill_uniform(np.uint64(key), rand)
    xs, ys, zs = [], [], []
    px = py = pz = 0.0
    nx, ny, nz = px, py, pz  # the original would raise here if no map matches at i = 0
    for i in range(point_num - 1):
        for j in range(len(select)):
            if rand[i] <= select[j]:
                f = functions[j]
                nx = px * f["a"] + py * f["b"] + pz * f["c"] + f["j"]
                ny = px * f["d"] + py * f["e"] + pz * f["f"] + f["k"]
                nz = px * f["g"] + py * f["h"] + pz * f["i"] + f["l"]
                break
        xs.append(nx), ys.append(ny), zs.append(nz)
        px, py, pz = nx, ny, nz
    return np.array((xs, ys, zs), dtype=float)


def normalise(point, divisor):
    """``min_max`` (axis=None, normalize 1.0) then ``centoroid`` with ``sum(row) / divisor``."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        lo = point.min(axis=None, keepdims=True)
        hi = point.max(axis=None, keepdims=True)
        q = ((point - lo) / (hi - lo)) * (1.0 - (-1.0)) - 1.0
        c = [sum(q[r]) / divisor for r in range(3)]
        return np.array([(q[r] - c[r]).tolist() for r in range(3)])


def gate(point, threshold, nan_all):
    """The search's test: no NaN in y (or any row), and ``np.var`` of each row > threshold."""
    nan = np.isnan(point).any(axis=1)
    if nan[1] or (nan_all and nan.any()):
        return False
    var = np.var(point, axis=1)
    return bool(var[0] > threshold and var[1] > threshold and var[2] > threshold)


def look_at(eye, center, up):
    """gluLookAt's 4x4 matrix (column vectors: ``M @ [x, y, z, 1]``)."""
    eye, center, up = (np.asarray(v, dtype=np.float64) for v in (eye, center, up))
    f = center - eye
    f = f / np.linalg.norm(f)
    s = np.cross(f, up)
    s = s / np.linalg.norm(s)
    u = np.cross(s, f)
    m = np.identity(4)
    m[0, :3], m[1, :3], m[2, :3] = s, u, -f
    t = np.identity(4)
    t[:3, 3] = -eye
    return m @ t


def perspective(fovy_deg, aspect, near, far):
    """gluPerspective's 4x4 matrix."""
    f = 1.0 / math.tan(math.radians(fovy_deg) / 2.0)
    m = np.zeros((4, 4))
    m[0, 0] = f / aspect
    m[1, 1] = f
    m[2, 2] = (far + near) / (near - far)
    m[2, 3] = 2.0 * far * near / (near - far)
    m[3, 2] = -1.0
    return m


def render(points, eye, up, size, fovy=45.0, near=1.0, far=100.0, point_size=1):
    """GL_POINTS of ``point_size`` into a ``size`` x ``size`` framebuffer, read back bottom-up
    and saved as is: ``(size, size)`` uint8, 255 where a point lands.  A point is clipped by
    its vertex; an odd size's square (GL's non-antialiased point) is centred on the pixel
    ``(floor(xw), floor(yw))`` and cut at the framebuffer's edges."""
    pts = np.asarray(points, dtype=np.float32).astype(np.float64)  # the float32 vertex buffer
    homog = np.vstack([pts, np.ones(pts.shape[1])])
    clip = perspective(fovy, 1.0, near, far) @ look_at(eye, (0.0, 0.0, 0.0), up) @ homog
    img = np.zeros((size, size), dtype=np.uint8)
    for i in range(clip.shape[1]):
        x, y, z, w = clip[:, i]
        if not (-w <= x <= w and -w <= y <= w and -w <= z <= w):
            continue  # point clipping (NaN fails too)
        xd, yd = x / w, y / w
        xw = (xd + 1.0) * (size / 2.0)  # glViewport(0, 0, size, size)
        yw = (yd + 1.0) * (size / 2.0)
        col, row = math.floor(xw), math.floor(yw)  # the pixel whose centre the size-1 square covers
        h = (point_size - 1) // 2
        for r in range(row - h, row + h + 1):
            for c in range(col - h, col + h + 1):
                if 0 <= c < size and 0 <= r < size:
                    img[r, c] = 255  # glReadPixels row 0 = the bottom row, saved as image row 0
    return img
