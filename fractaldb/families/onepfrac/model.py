"""1p-frac: one fractal and C locally perturbed copies of it (SPEC-like notes in docs/ofdb-1pfrac.md).

Nakamura et al., "Scaling Backwards: Minimal Synthetic Pre-training?" (ECCV'24,
SUPER-TADORY/1p-frac) pretrain on the images of a single IFS:

1. one **base system** from Anderson & Farrell's sigma-factor sampler with
   ``N = 2`` maps and the sigma-factor drawn from ``U(sigma - 0.1, sigma + 0.1)``
   (:func:`sigma_system`); ``p ~ |det A|`` of the unperturbed maps;
2. **class c** (``c = 0 .. C - 1``, one image each, the label is ``c``): every
   coefficient ``a .. f`` of every map multiplied by its own factor
   ``U(1 - delta, 1 + delta)``; accepted when the fraction of the image's
   values above 1 exceeds ``fill_rate`` (0.05), else the factors are redrawn;
3. the image: the FractalDB renderer's official point stream (the first
   ``points`` uniforms after ``np.random.seed(100)``, the same for every class,
   so every image walks the same map-index sequence from (0, 0)), 512x512,
   pad 6, gray 3x3 patches, flipped top<->bottom as the original saves it.

Everything is seeded (the original is not): the base system from
``(seed, "onepfrac-base")``, class c's factors, attempt after attempt, from
``(seed, "onepfrac-factors", c)``, and its patch masks from the fractal
renderer's mask stream under a seed of our own, :func:`render_seed`.

Rendering is the fractal family's: :class:`~fractaldb.ifs.render.CPURenderer`
(and its GPU twin) in ``compat="official"`` mode with the identity weight, so the
kernels, the point stream, the NaN trimming, the rescale and the patch
semantics are exactly FractalDB's.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ...errors import ConfigError
from ...seeds import declare_purposes, generator, stream_key
from ...ifs import constants as FC
from ...ifs.system import IFS
from ...ifs.render import CPURenderer, RenderConfig

#: The family's random streams.
PURPOSES = declare_purposes("onepfrac", {
    "onepfrac-base": 15,      # the one base system of a 1p-frac dataset
    "onepfrac-factors": 16,   # perturbation factors of a 1p-frac class (class), attempt after attempt
    "onepfrac-patches": 17,   # seed of the IFS renderer's patch-mask streams in a 1p-frac dataset
})

__all__ = ["Perturbation", "singular_values", "sigma_system", "base_system", "render_seed", "render_config",
           "class_fill", "search_classes"]


def singular_values(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """``(n, 2)`` singular-value pairs ``1 >= s1 >= s2 >= 0`` with ``sum(s1 + 2 s2) = sigma``.

    Anderson & Farrell's sequential draw (WACV'22; ``sample_svs`` in the
    originals): ``hi`` is the budget left, ``lo`` what the pairs still to be
    drawn must at least take; each of the first ``n - 1`` pairs draws ``s1``,
    then ``s2``, within the bounds that keep the rest reachable, and the last
    pair takes what is left.  ``sigma`` must lie in ``(0, 3 n)``.
    """
    out = np.empty((n, 2))
    hi, lo = sigma, sigma - 3 * n + 3
    for i in range(n - 1):
        s1 = rng.uniform(max(0.0, lo / 3), min(1.0, hi))
        lo, hi = lo - s1, hi - s1
        s2 = rng.uniform(max(0.0, lo / 2), min(s1, hi / 2))
        lo, hi = lo - 2 * s2 + 3, hi - 2 * s2
        out[i] = s1, s2
    s2 = rng.uniform(max(0.0, (hi - 1) / 2), hi / 3)
    out[n - 1] = hi - 2 * s2, s2
    return out


def sigma_system(rng: np.random.Generator, n: int, sigma_range) -> tuple:
    """One contractive system of ``n`` maps, ``A = U diag(s1, s2) V``, as the 1p-frac generator draws it.

    ``U`` and ``V`` are each ``R(theta) diag(+-1, +-1)`` with ``theta ~ U(-pi, pi)``
    and fair signs; the singular values come from :func:`singular_values` for a
    sigma-factor ``~ U(*sigma_range)``; translations ``U(-1, 1)``; ``p = |det A| / sum``.
    The draws come in the original's order (signs, angles, sigma, singular
    values, translations), so the same ``Generator`` state gives the same system.

    Returns:
        ``(rows, sigma)``: ``(n, 7)`` rows ``a, b, c, d, e, f, p`` and the sigma-factor drawn.

    ``fractaldb.families.fractal.search.svd_params`` is not used: it draws ``N``
    in 2..4 and sigma from the default range itself, and splits the budget per
    map rather than by this sequential draw.
    """
    signs = np.sign(rng.random((2 * n, 2)) - 0.5)
    angles = rng.uniform(-np.pi, np.pi, 2 * n)
    sigma = float(rng.uniform(*sigma_range))
    sv = singular_values(rng, n, sigma)
    shift = rng.uniform(-1.0, 1.0, (n, 2))
    cos, sin = np.cos(angles), np.sin(angles)
    rot = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # (2n, 2, 2)
    uv = rot * signs[:, None, :]                                               # R @ diag(signs)
    a = (uv[:n] * sv[:, None, :]) @ uv[n:]                                     # U diag(s) V
    det = np.abs(np.linalg.det(a))
    rows = np.column_stack([a[:, 0, 0], a[:, 0, 1], a[:, 1, 0], a[:, 1, 1], shift[:, 0], shift[:, 1],
                            det / det.sum()])
    return rows, sigma


def base_system(seed: int, maps: int, sigma: float, margin: float) -> IFS:
    """The dataset's one base system: :func:`sigma_system` on the ``(seed, "onepfrac-base")`` stream."""
    rows, _ = sigma_system(generator(seed, "onepfrac-base"), maps, (sigma - margin, sigma + margin))
    return IFS.from_rows(rows)


def render_seed(seed: int) -> int:
    """The seed of the fractal renderer's keyed streams for a 1p-frac dataset.

    Class c's patch masks are the renderer's ``render-patches`` stream of
    (category c, weight 0, draw 0) under this seed, derived from
    ``(seed, "onepfrac-patches")``: a stream of its own, not the one a fractal
    category c of the same dataset seed draws.  (63 bits: the renderer's range.)
    """
    return int(stream_key(seed, "onepfrac-patches")) >> 1


def render_config(seed: int, size: int, points: int) -> RenderConfig:
    """The fractal renderer's settings of a 1p-frac image: official point stream and
    semantics, gray 3x3 patches, pad 6, identity weight, one draw, flip 0."""
    return RenderConfig(mode="patch", color="gray", size=size, points=points, pad=FC.PAD, weights="none",
                        patches=1, flips=1, compat="official", seed=render_seed(seed), degenerate="keep")


def class_fill(image: np.ndarray) -> float:
    """The original's acceptance measure: the fraction of image values above 1
    (over an RGB array; the same number over our one gray channel)."""
    return float(np.count_nonzero(image > 1)) / image.size


@dataclass(frozen=True, eq=False)
class Perturbation:
    """Class ``index``: the base system with every coefficient multiplied by ``factors``.

    Attributes:
        index: the class (and label) number.
        ifs: the perturbed system (the base probabilities, as the original keeps them).
        factors: ``(N, 6)`` factors of ``a .. f``, map by map.
        attempts: draws of factors until one passed the fill gate (1 = the first).
        fill: the accepted image's fill (:func:`class_fill`).
    """

    index: int
    ifs: IFS
    factors: np.ndarray
    attempts: int
    fill: float

    def to_dict(self) -> dict:
        return {"class": self.index, "rows": self.ifs.rows().tolist(), "factors": self.factors.tolist(),
                "attempts": self.attempts, "fill": self.fill}

    @classmethod
    def from_dict(cls, doc: dict) -> "Perturbation":
        return cls(int(doc["class"]), IFS.from_rows(doc["rows"]), np.asarray(doc["factors"], dtype=np.float64),
                   int(doc["attempts"]), float(doc["fill"]))


def _perturb(cfg, base: IFS, c: int, renderer: CPURenderer) -> Perturbation:
    """Class ``c``: factors drawn attempt after attempt until its image passes the gate."""
    rng = generator(cfg.seed, "onepfrac-factors", c)
    best = 0.0
    for attempt in range(1, cfg.max_attempts + 1):
        factors = rng.uniform(1.0 - cfg.delta, 1.0 + cfg.delta, base.maps.shape)
        ifs = IFS(base.maps * factors, base.probs)
        block = next(renderer.render_many([(c, ifs, 0)]))
        fill = class_fill(block.images[0])
        if fill > cfg.fill_rate:
            return Perturbation(c, ifs, factors, attempt, fill)
        best = max(best, fill)
    raise ConfigError(f"onepfrac class {c}: no perturbation of the base system filled more than "
                      f"{cfg.fill_rate} in {cfg.max_attempts} attempts (best {best:.4f}); lower onepfrac.fill_rate "
                      "or onepfrac.delta, raise onepfrac.max_attempts, or choose another seed")


def search_classes(cfg, workers: int = 1, progress=None) -> list:
    """The classes of a 1p-frac dataset (``cfg``: the family's settings).

    Classes are independent (each has its own factor stream), so they are
    drawn on ``workers`` threads; the result does not depend on the count.

    Args:
        cfg: :class:`~fractaldb.families.onepfrac.OnePFracSettings`.
        workers: threads.
        progress: optional ``progress(accepted, tried)`` (tried counts attempts).

    Returns:
        ``cfg.classes`` :class:`Perturbation` objects, in class order.

    Raises:
        ConfigError: a class found no accepted factors in ``cfg.max_attempts`` draws.
    """
    base = base_system(cfg.seed, cfg.maps, cfg.sigma, cfg.sigma_margin)
    rc = render_config(cfg.seed, cfg.image_size, cfg.points)
    local = threading.local()

    def one(c):
        if not hasattr(local, "renderer"):
            local.renderer = CPURenderer(rc)
        return _perturb(cfg, base, c, local.renderer)

    out, tried = [], 0
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for p in pool.map(one, range(cfg.classes)):
            out.append(p)
            tried += p.attempts
            if progress is not None:
                progress(len(out), tried)
    return out
