"""Slow, obviously-correct references for the RCDB and SegRCDB families, written from
../shared/FDSL.md (sections 1, 3 and 4) and nothing else.

Pure Python: the random numbers come from CPython's own ``random.Random`` (the published
scripts' generator, so official-mode replay is checked against the real thing), the noise is a
line-by-line transcription of the noise law of FDSL 1.2 in float32 NumPy scalars, and the lines
are Pillow's own ``ImageDraw.line(..., width=1)``.  Every image is a fresh Pillow image drawn edge
by edge in the published order.  Tests compare the families' fast paths with these.
"""

from __future__ import annotations

import math
import random

import numpy as np
from PIL import Image, ImageDraw

F32 = np.float32

#: Ken Perlin's reference permutation of 0..255 (the table the noise library indexes).
PERM = (
    151, 160, 137, 91, 90, 15, 131, 13, 201, 95, 96, 53, 194, 233, 7, 225, 140, 36, 103, 30, 69, 142, 8, 99, 37,
    240, 21, 10, 23, 190, 6, 148, 247, 120, 234, 75, 0, 26, 197, 62, 94, 252, 219, 203, 117, 35, 11, 32, 57, 177,
    33, 88, 237, 149, 56, 87, 174, 20, 125, 136, 171, 168, 68, 175, 74, 165, 71, 134, 139, 48, 27, 166, 77, 146,
    158, 231, 83, 111, 229, 122, 60, 211, 133, 230, 220, 105, 92, 41, 55, 46, 245, 40, 244, 102, 143, 54, 65, 25,
    63, 161, 1, 216, 80, 73, 209, 76, 132, 187, 208, 89, 18, 169, 200, 196, 135, 130, 116, 188, 159, 86, 164, 100,
    109, 198, 173, 186, 3, 64, 52, 217, 226, 250, 124, 123, 5, 202, 38, 147, 118, 126, 255, 82, 85, 212, 207, 206,
    59, 227, 47, 16, 58, 17, 182, 189, 28, 42, 223, 183, 170, 213, 119, 248, 152, 2, 44, 154, 163, 70, 221, 153,
    101, 155, 167, 43, 172, 9, 129, 22, 39, 253, 19, 98, 108, 110, 79, 113, 224, 232, 178, 185, 112, 104, 218, 246,
    97, 228, 251, 34, 242, 193, 238, 210, 144, 12, 191, 179, 162, 241, 81, 51, 145, 235, 249, 14, 239, 107, 49, 192,
    214, 31, 181, 199, 106, 157, 184, 84, 204, 176, 115, 121, 50, 45, 127, 4, 150, 254, 138, 236, 205, 93, 222, 114,
    67, 29, 24, 72, 243, 141, 128, 195, 78, 66, 215, 61, 156, 180)


def grad(h: int, d):
    """FDSL 1.2 step 4: (h & 7) + 1 when bit 3 is clear, else -1 (the library's sign bug)."""
    g = F32(-1.0) if h & 8 else F32((h & 7) + 1)
    return g * d


def pnoise1(u: float) -> float:
    """FDSL 1.2: the library's 1-D noise at ``u`` with its default arguments (float32)."""
    x = F32(u)                                   # step 1: the binding parses a C float
    fl = F32(math.floor(x))
    i = int(fl) % 1024
    ii = (i + 1) % 1024
    i, ii = i & 255, ii & 255                    # step 2
    t = x - fl
    f = t * t * t * (t * (t * F32(6) - F32(15)) + F32(10))   # step 3
    a = grad(PERM[i], t)
    b = grad(PERM[ii], t - F32(1))
    return float((a + f * (b - a)) * F32(0.4))   # step 5


def draw_edge(draw: ImageDraw.ImageDraw, x0, y0, x1, y1, fill) -> None:
    """One polygon edge: Pillow's width-1 line, drawn from vertex v to v + 1 (FDSL 1.3)."""
    draw.line((x0, y0, x1, y1), fill=fill, width=1)


# ---------------------------------------------------------------------------------- RCDB (FDSL 3)

RCDB_SCRIPT = dict(vertex_num=200, perlin_min=0, line_width=0.1, radius_min=0, line_num_min=1, oval_rate=2,
                   start_pos=400, image_size=512)


def _rcdb_class(rng: random.Random, p: dict):
    """FDSL 3.1 items 1-4: V, K, c, lambda (the class parameters)."""
    while True:
        v = int(rng.expovariate(1 / 100))
        if 2 < v <= p["vertex_num"]:
            break
    k = rng.randint(p["line_num_min"], p["line_num_min"] + 199)
    c = rng.uniform(p["perlin_min"], p["perlin_min"] + 4)
    lam = rng.uniform(0.0, p["line_width"])
    return v, k, c, lam


def _rcdb_placement(rng: random.Random, p: dict):
    """FDSL 3.1 items 5-9 (also 3.2 step 5): r0, ox, oy, cy, cx of one instance."""
    r0 = rng.randint(p["radius_min"], p["radius_min"] + 100)
    ox = rng.uniform(1, p["oval_rate"])
    oy = rng.uniform(1, p["oval_rate"])
    s = p["image_size"]
    cy = (s + rng.randint(-p["start_pos"], p["start_pos"])) / 2
    cx = (s + rng.randint(-p["start_pos"], p["start_pos"])) / 2
    return r0, ox, oy, cy, cx


def _rcdb_next_placement(rng: random.Random, p: dict):
    """FDSL 3.2 step 5: ox, oy, r0, cy, cx redrawn for the next instance (this order)."""
    ox = rng.uniform(1, p["oval_rate"])
    oy = rng.uniform(1, p["oval_rate"])
    r0 = rng.randint(p["radius_min"], p["radius_min"] + 100)
    s = p["image_size"]
    cy = (s + rng.randint(-p["start_pos"], p["start_pos"])) / 2
    cx = (s + rng.randint(-p["start_pos"], p["start_pos"])) / 2
    return r0, ox, oy, cy, cx


def rcdb_instance(rng: random.Random, v, k, c, lam, r0, ox, oy, cy, cx, size=512, gray=None) -> np.ndarray:
    """FDSL 3.2 steps 1-3: one RCDB image (white, orbits accumulated around the origin, the
    centre added when drawing); ``gray(rng)`` draws an orbit's gray (the script: randint(0, size / 2),
    a float bound, so 0..256 at 512 px, clipped to 255 by Pillow)."""
    im = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(im)
    step = (math.pi * 2) / v
    xs = [math.cos(step * j) * r0 * ox for j in range(v)]
    ys = [math.sin(step * j) * r0 * oy for j in range(v)]
    for _ in range(k):
        g = rng.randint(0, size // 2) if gray is None else gray(rng)
        g = min(g, 255)
        nx = [pnoise1(rng.uniform(0, 10000)) * c * 2 - c for _ in range(v)]
        ny = [pnoise1(rng.uniform(0, 10000)) * c * 2 - c for _ in range(v)]
        for j in range(v):
            xs[j] -= math.cos(step * j) * (nx[j] - lam)
            ys[j] -= math.sin(step * j) * (ny[j] - lam)
        for j in range(v):
            n = (j + 1) % v
            draw_edge(draw, xs[j] + cx, ys[j] + cy, xs[n] + cx, ys[n] + cy, (g, g, g))
    return np.asarray(im)


def rcdb_official(classes: int, instances: int, workers: int, worker: int, params: dict | None = None,
                  render: bool = True):
    """Everything worker ``worker`` of ``workers`` makes (FDSL 1.5, 3.1-3.2): yields
    ``(class, instance, params dict, image or None)``; ``render=False`` still consumes every
    random number (the draws are the same) but keeps no image."""
    p = dict(RCDB_SCRIPT, **(params or {}))
    rng = random.Random(worker + 1)
    per = classes // workers
    for cat in range(worker * per, (worker + 1) * per):
        v, k, c, lam = _rcdb_class(rng, p)
        r0, ox, oy, cy, cx = _rcdb_placement(rng, p)
        for inst in range(instances):
            doc = dict(V=v, K=k, c=c, lam=lam, r0=r0, ox=ox, oy=oy, cy=cy, cx=cx)
            img = rcdb_instance(rng, v, k, c, lam, r0, ox, oy, cy, cx, p["image_size"])
            yield cat, inst, doc, (img if render else None)
            r0, ox, oy, cy, cx = _rcdb_next_placement(rng, p)


# ------------------------------------------------------------------------------ SegRCDB (FDSL 4)

SEG_SCRIPT = dict(vertex_num=500, line_num_min=1, line_num_max=50, perlin_min=0, perlin_max=4, line_width=0.1,
                  radius_min=0, radius_max=50, oval_rate=2)


def segrcdb_table(classes: int = 254, params: dict | None = None) -> list:
    """FDSL 4.1: the class table from one ``seed(0)`` stream; entry j is class id j + 1."""
    p = dict(SEG_SCRIPT, **(params or {}))
    rng = random.Random(0)
    out = []
    for _ in range(classes):
        while True:
            v = int(rng.expovariate(1 / (p["vertex_num"] / 5)))
            if 2 < v <= p["vertex_num"]:
                break
        k = rng.randint(p["line_num_min"], p["line_num_max"])
        c = rng.uniform(p["perlin_min"], p["perlin_max"])
        lam = rng.uniform(0.0, p["line_width"])
        r0 = rng.randint(p["radius_min"], p["radius_max"])
        ox = rng.uniform(1, p["oval_rate"])
        oy = rng.uniform(1, p["oval_rate"])
        out.append(dict(V=v, K=k, c=c, lam=lam, r0=r0, ox=ox, oy=oy))
    return out


def segrcdb_image(rng: random.Random, table: list, polygons: int = 32, size: int = 512, start_pos: int = 512):
    """FDSL 4.2-4.3 (mask mode M1): one image and its mask (class ids, 0 background)."""
    im = Image.new("RGB", (size, size), (0, 0, 0))
    mk = Image.new("L", (size, size), 0)
    draw, mdraw = ImageDraw.Draw(im), ImageDraw.Draw(mk)
    for _ in range(polygons):
        cid = rng.randint(1, len(table))
        t = table[cid - 1]
        v, r0 = t["V"], float(t["r0"])
        cy = (size + rng.randint(-start_pos, start_pos)) / 2
        cx = (size + rng.randint(-start_pos, start_pos)) / 2
        step = (math.pi * 2) / v
        xs = [math.cos(step * j) * r0 * t["ox"] + cx for j in range(v)]
        ys = [math.sin(step * j) * r0 * t["oy"] + cy for j in range(v)]
        c, lam = t["c"], t["lam"]
        for _ in range(t["K"]):
            g = rng.randint(0, 255)
            nx = [pnoise1(rng.uniform(0, 10000)) * c * 2 - c for _ in range(v)]
            ny = [pnoise1(rng.uniform(0, 10000)) * c * 2 - c for _ in range(v)]
            for j in range(v):
                xs[j] -= math.cos(step * j) * (nx[j] - lam)
                ys[j] -= math.sin(step * j) * (ny[j] - lam)
            for j in range(v):          # the mask first (M1), then the image
                n = (j + 1) % v
                draw_edge(mdraw, xs[j], ys[j], xs[n], ys[n], cid)
            for j in range(v):
                n = (j + 1) % v
                draw_edge(draw, xs[j], ys[j], xs[n], ys[n], (g, g, g))
    return np.asarray(im), np.asarray(mk)


def segrcdb_official(images: int, workers: int, worker: int, table: list, polygons: int = 32, size: int = 512,
                     start_pos: int = 512, count: int | None = None):
    """The first ``count`` images of worker ``worker`` (FDSL 4.2): yields ``(file number, image, mask)``."""
    per = images // workers
    rng = random.Random(worker + 1)
    for k in range(per if count is None else min(count, per)):
        img, mask = segrcdb_image(rng, table, polygons, size, start_pos)
        yield per * worker + k, img, mask


def digest(a: np.ndarray) -> str:
    """FDSL 2.6's hashing: sha256 of the C-order uint8 array, first 16 hex digits."""
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(a, dtype=np.uint8).tobytes()).hexdigest()[:16]
