"""Host-side decisions both fractal renderers (CPU and GPU) take the same way.

Pure functions of their arguments, so the twins cannot disagree: job
normalisation, the official renderer's shared uniforms, the degenerate-variant
policy (which factors an attempt uses, what is recorded) and the reusable
host block buffer.
"""

from __future__ import annotations

import numpy as np

from . import constants as C

__all__ = ["RETRIES", "SHRINK", "normalise_jobs", "official_uniforms", "attempt_factors", "degenerate_record",
           "grow_buffer"]

#: How far a degenerate weight factor is pulled towards 1 per retry (0.75,
#: not 0.5: halving would turn 1.8 into 1.4, a copy of another table row).
SHRINK = 0.75
#: Shrunken attempts before the identity is used.
RETRIES = 8


def normalise_jobs(jobs, draws: int) -> list:
    """``(category, ifs, weight[, draws])`` -> ``(category, ifs, weight, [draws])`` tuples
    (every draw ``0..draws-1`` when a job names none)."""
    out = []
    for job in jobs:
        category, ifs, weight = job[:3]
        ds = list(range(draws)) if len(job) < 4 or job[3] is None else list(job[3])
        out.append((int(category), ifs, int(weight), ds))
    return out


def official_uniforms(points: int) -> np.ndarray:
    """The uniforms of every official-mode render: the original calls
    ``np.random.seed(100)`` before each render, so all images share the first
    ``points`` values of that stream (one per chaos-game step)."""
    return np.random.RandomState(C.RENDER_COMPAT_SEED).random_sample(points)[: points - 1]


def attempt_factors(original: np.ndarray, attempt: int) -> np.ndarray:
    """The factors of degenerate-variant attempt ``attempt`` (0-based) of a
    ``replace``: the changed factor pulled towards 1 by ``SHRINK ** (attempt + 1)``,
    and the identity after ``RETRIES`` attempts."""
    if attempt < RETRIES:
        return 1.0 + (original - 1.0) * (SHRINK ** (attempt + 1))
    return np.ones(6)


def degenerate_record(category: int, weight: int, factors: np.ndarray, fill: float, action: str) -> dict:
    """What the manifest records of a degenerate weight variant."""
    return {"category": category, "weight": weight, "factors": factors.tolist(), "fill": fill, "action": action}


def grow_buffer(buf, need: int, minimum: int, shape: tuple, alloc=np.empty):
    """A buffer of at least ``need`` images of ``shape`` (reusing ``buf`` when it is
    large enough; at least ``minimum`` images when it grows)."""
    if buf is None or buf.shape[0] < need:
        buf = alloc((max(need, minimum),) + tuple(shape), dtype=np.uint8)
    return buf
