"""A slow, obviously correct VisualAtom reference written from FDSL.md §2 (not from the original
code): Python's own ``random``, the noise law step by step, Pillow's ``ImageDraw.line`` on an RGB
image.  ``worker_run`` is one worker of the original's thread split."""

from __future__ import annotations

import math
import random

import numpy as np
from PIL import Image, ImageDraw

from contour_reference import pnoise1_slow


def class_params(rng: random.Random, r: dict) -> dict:
    """§2.1, in its draw order."""
    p = {"vertices": rng.randint(*r["vertices"]), "orbits": rng.randint(*r["orbits"]),
         "noise": rng.uniform(r["perlin_min"], r["perlin_min"] + 4), "line_width": rng.uniform(0.0, r["line_width"]),
         "radius": rng.randint(r["radius_min"], r["radius_min"] + 50), "wave1": rng.randint(*r["waves"])}
    while True:
        p["wave2"] = rng.randint(*r["waves"])
        if p["wave2"] != p["wave1"] or p["wave1"] == 0:
            break
    p["oval_x"] = rng.uniform(1, r["oval_rate"])
    p["oval_y"] = rng.uniform(1, r["oval_rate"])
    return p


def centre(rng: random.Random, r: dict) -> tuple:
    cy = (r["image_size"] + rng.randint(-r["start_pos"], r["start_pos"])) / 2
    cx = (r["image_size"] + rng.randint(-r["start_pos"], r["start_pos"])) / 2
    return cy, cx


def instance(rng: random.Random, p: dict, cy: float, cx: float, size: int) -> np.ndarray:
    """§2.2 steps 1-3: one RGB image."""
    im = Image.new("RGB", (size, size), (0, 0, 0))
    draw = ImageDraw.Draw(im)
    V = p["vertices"]
    step = 2 * math.pi / V
    xs = [math.cos(step * v) * p["radius"] * p["oval_x"] + cx for v in range(V)]
    ys = [math.sin(step * v) * p["radius"] * p["oval_y"] + cy for v in range(V)]
    c, lam = p["noise"], p["line_width"]
    for _ in range(p["orbits"]):
        g = rng.randint(0, 255)
        nx = [pnoise1_slow(rng.uniform(0, 10000)) for _ in range(V)]
        ny = [pnoise1_slow(rng.uniform(0, 10000)) for _ in range(V)]
        for v in range(V):
            xs[v] -= math.cos(step * v) * ((nx[v] * c - c - 0.5 * math.sin(step * v * p["wave1"])
                                            - 0.5 * math.sin(step * v * p["wave2"])) - lam)
            ys[v] -= math.sin(step * v) * ((ny[v] * c - c - 0.5 * math.sin(step * v * p["wave1"])
                                            - 0.5 * math.sin(step * v * p["wave2"])) - lam)
        for v in range(V):
            w = (v + 1) % V
            draw.line((xs[v], ys[v], xs[w], ys[w]), fill=(g, g, g), width=1)
    return np.asarray(im)


def worker_run(thread: int, threads: int, classes: int, instances: int, r: dict):
    """Yields ``(class, instance, params, centre, image)`` of worker ``thread`` in order (§1.5)."""
    rng = random.Random(thread + 1)
    per = classes // threads
    for k in range(thread * per, (thread + 1) * per):
        p = class_params(rng, r)
        cy, cx = centre(rng, r)
        for i in range(instances):
            yield k, i, p, (cy, cx), instance(rng, p, cy, cx, r["image_size"])
            cy, cx = centre(rng, r)


def modern_instance(P, grays, p: dict, cy: float, cx: float, size: int) -> np.ndarray:
    """A modern instance from its drawn noise ``P`` (K, 2, V) and grays: the same geometry."""
    im = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(im)
    V = p["vertices"]
    step = 2 * math.pi / V
    xs = [math.cos(step * v) * p["radius"] * p["oval_x"] + cx for v in range(V)]
    ys = [math.sin(step * v) * p["radius"] * p["oval_y"] + cy for v in range(V)]
    c, lam = p["noise"], p["line_width"]
    for k, g in enumerate(grays):
        for v in range(V):
            xs[v] -= math.cos(step * v) * ((float(P[k, 0, v]) * c - c - 0.5 * math.sin(step * v * p["wave1"])
                                            - 0.5 * math.sin(step * v * p["wave2"])) - lam)
            ys[v] -= math.sin(step * v) * ((float(P[k, 1, v]) * c - c - 0.5 * math.sin(step * v * p["wave1"])
                                            - 0.5 * math.sin(step * v * p["wave2"])) - lam)
        for v in range(V):
            draw.line((xs[v], ys[v], xs[(v + 1) % V], ys[(v + 1) % V]), fill=int(g), width=1)
    return np.asarray(im)
