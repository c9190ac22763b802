"""The Perlin class search: draw parameter tuples and keep those far enough, in a
distance measured on small renders, from every class kept so far
(:func:`search_classes`; docs/perlin.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ...errors import ConfigError
from ...seeds import generator, stream_key
__all__ = ["PerlinSearchConfig", "search_classes", "probe_keys", "class_features", "palette_distance",
           "class_distance", "PALETTE_WEIGHT"]

from .model import (MAX_OCTAVES, PALETTES, SEARCH_PROBES, SEARCH_SIZE, PerlinClass, PerlinRenderConfig, PerlinRenderer,
                    _number, class_gain, octave_table)

# --------------------------------------------------------------------------
# Class search
# --------------------------------------------------------------------------

def _pair(value, name: str, example: str, integer: bool = False) -> tuple:
    ok = isinstance(value, (tuple, list)) and len(value) == 2
    if ok:
        try:
            lo, hi = (_number(v, name) for v in value)
        except ConfigError:
            ok = False
    if not ok or (integer and any(isinstance(v, bool) or float(v) != int(v) for v in value)):
        kind = "integers" if integer else "numbers"
        raise ConfigError(f"{name} must be a (low, high) pair of {kind}, got {value!r}; e.g. {name}={example}")
    if lo > hi:
        raise ConfigError(f"{name} range ({value[0]}, {value[1]}) is inverted; give (low, high), "
                          f"e.g. {name}=({value[1]}, {value[0]})")
    return (int(lo), int(hi)) if integer else (lo, hi)


@dataclass(frozen=True)
class PerlinSearchConfig:
    """Settings of a Perlin class search.

    Attributes:
        classes: number of classes to find.
        seed: seed of the search stream (``perlin-classes``).
        frequency: base frequency range, cycles per image (drawn log-uniformly).
        octaves: inclusive octave-count range (drawn uniformly).
        persistence: persistence range, within (0, 1] (uniform).
        lacunarity: lacunarity range, > 1 (uniform).
        palettes: palettes to draw from (uniformly).
        min_distance: minimum :func:`class_distance` between two classes.
        max_candidates: candidates tried before giving up (default ``200 * classes``).
    """

    classes: int
    seed: int = 1
    frequency: tuple = (1.0, 16.0)
    octaves: tuple = (1, 6)
    persistence: tuple = (0.3, 0.9)
    lacunarity: tuple = (1.5, 3.0)
    palettes: tuple = tuple(PALETTES)
    min_distance: float = 0.5
    max_candidates: int | None = None

    def __post_init__(self):
        def setattr_(k, v):
            object.__setattr__(self, k, v)

        if isinstance(self.classes, bool) or not isinstance(self.classes, (int, np.integer)) or self.classes <= 0:
            raise ConfigError(f"classes must be a positive integer, got {self.classes!r}; ask for at least 1 class")
        setattr_("classes", int(self.classes))
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or not 0 <= self.seed < 2**63:
            raise ConfigError(f"seed must be an integer in 0..2**63-1, got {self.seed!r}")
        freq = _pair(self.frequency, "frequency", "(1.0, 16.0)")
        if freq[0] <= 0.0:
            raise ConfigError(f"frequency range {self.frequency!r} must be > 0 cycles per image; "
                              f"e.g. frequency=(1.0, 16.0)")
        setattr_("frequency", freq)
        octv = _pair(self.octaves, "octaves", "(1, 6)", integer=True)
        if octv[0] < 1 or octv[1] > MAX_OCTAVES:
            raise ConfigError(f"octaves range {self.octaves!r} must lie in 1..{MAX_OCTAVES}; e.g. octaves=(1, 6)")
        setattr_("octaves", octv)
        pers = _pair(self.persistence, "persistence", "(0.3, 0.9)")
        if pers[0] <= 0.0 or pers[1] > 1.0:
            raise ConfigError(f"persistence range {self.persistence!r} must lie in (0, 1]; "
                              f"e.g. persistence=(0.3, 0.9)")
        setattr_("persistence", pers)
        lac = _pair(self.lacunarity, "lacunarity", "(1.5, 3.0)")
        if lac[0] <= 1.0:
            raise ConfigError(f"lacunarity range {self.lacunarity!r} must be > 1; e.g. lacunarity=(1.5, 3.0)")
        setattr_("lacunarity", lac)
        pals = (self.palettes,) if isinstance(self.palettes, str) else self.palettes
        if not isinstance(pals, (tuple, list)) or len(pals) == 0:
            raise ConfigError(f"palettes must name at least one palette, got {self.palettes!r}; "
                              f"choose from {', '.join(PALETTES)}")
        for p in pals:
            if p not in PALETTES:
                raise ConfigError(f"unknown palette {p!r}; choose from {', '.join(PALETTES)}")
        if len(set(pals)) != len(pals):
            raise ConfigError(f"palettes {list(pals)!r} repeat a name; list each palette once")
        setattr_("palettes", tuple(pals))
        md = _number(self.min_distance, "min_distance")
        if md < 0.0:
            raise ConfigError(f"min_distance must be >= 0, got {self.min_distance}; use 0 to accept every candidate")
        setattr_("min_distance", md)
        mc = 200 * self.classes if self.max_candidates is None else self.max_candidates
        if isinstance(mc, bool) or not isinstance(mc, (int, np.integer)) or mc < self.classes:
            raise ConfigError(f"max_candidates must be an integer >= classes ({self.classes}), got {mc!r}; "
                              f"leave it unset for {200 * self.classes}")
        setattr_("max_candidates", int(mc))


def _sample_candidate(cfg: PerlinSearchConfig, index: int) -> PerlinClass:
    """Candidate ``index``: its own stream, so it is the same whatever was accepted before."""
    rng = generator(cfg.seed, "perlin-classes", index)
    flo, fhi = cfg.frequency
    # Log-uniform: 1->2 cycles is as big a change in look as 8->16.
    frequency = float(math.exp(rng.uniform(math.log(flo), math.log(fhi))))
    octaves = int(rng.integers(cfg.octaves[0], cfg.octaves[1] + 1))
    persistence = float(rng.uniform(*cfg.persistence))
    lacunarity = float(rng.uniform(*cfg.lacunarity))
    palette = cfg.palettes[int(rng.integers(len(cfg.palettes)))]
    # Four significant digits keep class files readable; clamp so that rounding
    # cannot leave the range (e.g. a lacunarity range starting just above 1).
    def r(v, lo, hi):
        return min(max(float(f"{v:.4g}"), lo), hi)

    return PerlinClass(r(frequency, flo, fhi), octaves, r(persistence, *cfg.persistence),
                       r(lacunarity, *cfg.lacunarity), palette)


#: Radial frequency bands of the spectrum feature: edges in cycles per image,
#: half-octave spaced from 1 to the Nyquist frequency of SEARCH_SIZE (10 bands).
_BAND_EDGES = 2.0 ** np.arange(0.0, math.log2(SEARCH_SIZE / 2) + 0.25, 0.5)
#: Floor of a band's share of the power before the log: bands with next to no
#: power (the far tail of a smooth class) would otherwise dominate the distance.
_POWER_FLOOR = 1e-4


@lru_cache(maxsize=8)
def _spectrum_tables(size: int):
    """(band index of every FFT bin or -1, 2-D Hann window) for ``size``."""
    k = np.fft.fftfreq(size) * size
    r = np.sqrt(k[:, None] ** 2 + k[None, :] ** 2)
    idx = np.searchsorted(_BAND_EDGES, r, side="right") - 1  # band b: edges[b] <= r < edges[b+1]
    idx[(r < _BAND_EDGES[0]) | (r >= _BAND_EDGES[-1])] = -1
    w = np.hanning(size + 2)[1:-1]  # without the zero end points
    return idx.ravel(), np.outer(w, w)


def probe_keys(seed: int) -> list:
    """The ``SEARCH_PROBES`` instance keys every candidate of a search is measured with.

    Shared by all candidates (common random numbers: two candidates differ in
    their features by their parameters, not by their lattices).  Two ids,
    where candidate streams have one, so they never coincide with a candidate's.
    """
    return [stream_key(seed, "perlin-classes", 2**62, i) for i in range(SEARCH_PROBES)]


def class_features(cls: PerlinClass, keys, renderer: PerlinRenderer | None = None) -> np.ndarray:
    """Log band-power spectrum of a class: the structure half of :func:`class_distance`.

    The class is rendered in gray (its own byte mapping, clipped, not
    quantised) at ``SEARCH_SIZE`` for each key.  Each image has its mean
    removed and a Hann window applied (the image edges do not wrap, and
    their jump would otherwise leak a 1/k^2 tail into every band); the power
    spectra of all keys are summed, summed again over half-octave radial
    bands from 1 cycle per image to Nyquist, normalised to sum 1 (only the
    shape of the spectrum counts; the class gain already fixes the contrast)
    and logged, with a floor of ``_POWER_FLOOR``.

    Args:
        cls: the class (its palette plays no part here).
        keys: instance keys, e.g. :func:`probe_keys`.
        renderer: a gray, non-tileable ``SEARCH_SIZE`` renderer to reuse.

    Returns:
        ``float64[10]`` log band shares.
    """
    if renderer is None:
        renderer = PerlinRenderer(PerlinRenderConfig(size=SEARCH_SIZE))
    size = renderer.cfg.size
    idx, window = _spectrum_tables(size)
    ok = idx >= 0
    nb = len(_BAND_EDGES) - 1
    _, amps, _ = octave_table(cls, size, renderer.cfg.tileable)
    gain = class_gain(amps)
    imgs = np.empty((len(keys), size, size))
    for i, key in enumerate(keys):
        img = np.clip(0.5 + gain * renderer.render_field(cls, key), 0.0, 1.0)
        imgs[i] = (img - img.mean()) * window
    spec = (np.abs(np.fft.fft2(imgs)) ** 2).sum(axis=0).ravel()
    power = np.bincount(idx[ok], weights=spec[ok], minlength=nb)
    power /= max(power.sum(), 1e-300)
    return np.log(np.maximum(power, _POWER_FLOOR))


def palette_distance(a: str, b: str) -> float:
    """RMS colour difference of two palettes over the 256 levels, in [0, 1].

    It is the RMS pixel difference (RGB scaled to [0, 1], averaged over
    channels) of one uniformly distributed gray field coloured both ways.
    """
    la = PALETTES[a].astype(np.float64) / 255.0
    lb = PALETTES[b].astype(np.float64) / 255.0
    return float(np.sqrt(np.mean((la - lb) ** 2)))


#: Weight of the palette term: a palette change as large as gray -> viridis
#: (0.23) counts about as much as the default min_distance by itself.
PALETTE_WEIGHT = 2.0


def class_distance(fa: np.ndarray, pa: str, fb: np.ndarray, pb: str) -> float:
    """Distance of two classes from their features (:func:`class_features`) and palettes.

    ``sqrt(rms(fa - fb)**2 + (PALETTE_WEIGHT * palette_distance(pa, pb))**2)``:
    the RMS difference of the log band powers (natural log units) and the
    weighted colour difference, combined as orthogonal factors.
    """
    return math.sqrt(float(np.mean((fa - fb) ** 2)) + (PALETTE_WEIGHT * palette_distance(pa, pb)) ** 2)


def search_classes(cfg: PerlinSearchConfig, progress=None) -> list[PerlinClass]:
    """Find ``cfg.classes`` Perlin classes pairwise at least ``cfg.min_distance`` apart.

    Candidate ``i`` is drawn from ``generator(cfg.seed, "perlin-classes", i)``
    and accepted when its :func:`class_distance` to every class accepted
    so far is ``>= cfg.min_distance``.  Deterministic for a configuration.

    Args:
        cfg: search settings.
        progress: optional ``progress(accepted, tried)`` called after each candidate.

    Raises:
        ConfigError: ``max_candidates`` candidates did not give enough classes.
    """
    renderer = PerlinRenderer(PerlinRenderConfig(size=SEARCH_SIZE))
    keys = probe_keys(cfg.seed)
    pals = list(PALETTES)
    # Squared weighted palette distances, so a candidate is compared with all
    # accepted classes in one vector operation.
    pal_d2 = np.array([[(PALETTE_WEIGHT * palette_distance(a, b)) ** 2 for b in pals] for a in pals])
    accepted: list[PerlinClass] = []
    feats = np.empty((cfg.classes, len(_BAND_EDGES) - 1))
    pal_idx = np.empty(cfg.classes, dtype=np.int64)
    d2min = cfg.min_distance ** 2
    tried = 0
    while len(accepted) < cfg.classes and tried < cfg.max_candidates:
        cand = _sample_candidate(cfg, tried)
        tried += 1
        f = class_features(cand, keys, renderer)
        p = pals.index(cand.palette)
        n = len(accepted)
        if n == 0 or cfg.min_distance == 0.0 or \
                float(np.min(np.mean((feats[:n] - f) ** 2, axis=1) + pal_d2[p, pal_idx[:n]])) >= d2min:
            feats[n] = f
            pal_idx[n] = p
            accepted.append(cand)
        if progress is not None:
            progress(len(accepted), tried)
    if len(accepted) < cfg.classes:
        raise ConfigError(
            f"cannot find {cfg.classes} Perlin classes at least {cfg.min_distance:g} apart in these ranges "
            f"(found {len(accepted)} after {tried} candidates); lower min_distance, widen the ranges "
            f"or ask for fewer classes")
    return accepted
