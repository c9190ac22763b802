"""Perlin-noise classes: definition, class search and rendering (SPEC 2).

A **class** (:class:`PerlinClass`) is a fixed parameter tuple: base frequency
(cycles per image), octaves, persistence, lacunarity and a palette.  An
**instance** is a 64-bit key, :func:`instance_key` of (dataset seed, class,
instance): it draws the gradient lattice (a permutation of 0..255) and one
lattice offset per octave, so every instance of a class shows the same kind of
texture at a different place of a different lattice.

The image of a class at side ``size`` is the octave sum

    v(x, y) = sum_o a_o * noise(f_o * (x + 0.5) / size + ox_o, f_o * (y + 0.5) / size + oy_o)

with ``f_o = frequency * lacunarity**o`` and ``a_o`` proportional to
``persistence**o`` (summing to 1), over octaves ``o = 0 .. octaves - 1``.
Octaves approaching the Nyquist frequency ``size / 2`` are faded out (they
could only alias into pixel noise; see :func:`nyquist_taper`).  Tileable
renders round every ``f_o`` to an integer >= 1 and wrap the lattice at that
period, so the image repeats seamlessly.  ``v`` becomes a byte with a fixed per-class gain (see
:func:`class_gain`), then a colour through the palette's lookup table.
``noise`` is 2-D improved Perlin noise, defined in
:mod:`fractaldb.families.perlin.kernels`; docs/perlin.md has the details and pictures.

The search (:func:`search_classes`) draws parameter tuples and keeps those far
enough, in a distance measured on small renders, from every class kept so far.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np

from ...errors import ConfigError
from ..base import HostRenderer
from ...seeds import declare_purposes, generator, stream_key
from . import kernels as K

#: The family's random streams.
PURPOSES = declare_purposes("perlin", {
    "perlin-instance": 11,  # gradient lattice and offsets of a Perlin instance (class, instance)
    "perlin-classes": 12,   # the Perlin class search (candidate)
})

__all__ = [
    "PALETTES", "PerlinClass", "PerlinSearchConfig", "search_classes", "PerlinRenderConfig",
    "PerlinRenderer", "check_channels", "instance_key", "channels", "class_gain", "octave_table",
    "class_distance",
    "class_features", "palette_distance", "probe_keys", "nyquist_taper", "MAX_OCTAVES", "SEARCH_SIZE",
]

#: Octave count ceiling: 2**16 is past any useful lacunarity**octave.
MAX_OCTAVES = 16
#: Side of the renders the class search measures (see :func:`class_features`).
SEARCH_SIZE = 64
#: Instances per candidate the search measures (fixed keys, shared by every candidate).
SEARCH_PROBES = 8
#: Standard deviation of one octave of the noise at a uniform random position,
#: with independent gradients from the 8 directions: sqrt(96835 / 1387386),
#: the exact integral of E[n^2] = 3/4 * sum over corners of w^2 |d|^2 over a cell
#: (``tests/test_perlin.py::test_single_octave_sigma`` measures it).
NOISE_SIGMA = math.sqrt(96835.0 / 1387386.0)
#: The byte mapping spans +-Z standard deviations of the class's octave sum.
Z_SPAN = 2.5


def _ramp(*anchors) -> np.ndarray:
    """A (256, 3) uint8 LUT through equally spaced anchor colours (hex strings)."""
    rgb = np.array([[int(a[i:i + 2], 16) for i in (1, 3, 5)] for a in anchors], dtype=np.float64)
    pos = np.linspace(0.0, 255.0, len(anchors))
    x = np.arange(256, dtype=np.float64)
    lut = np.stack([np.interp(x, pos, rgb[:, c]) for c in range(3)], axis=1)
    out = np.floor(lut + 0.5).astype(np.uint8)
    out.setflags(write=False)
    return out


#: Palette name -> (256, 3) uint8 lookup table.  ``gray`` is special: its
#: renders have one channel (the level itself); its table is the gray ramp.
#: The others are linear interpolations between a few anchor colours (taken
#: from the well-known colour maps they are named after; no matplotlib).
PALETTES: dict[str, np.ndarray] = {
    "gray": _ramp("#000000", "#ffffff"),
    "viridis": _ramp("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"),
    "magma": _ramp("#000004", "#3b0f70", "#8c2981", "#de4968", "#fe9f6d", "#fcfdbf"),
    "ocean": _ramp("#00121f", "#003f5c", "#007b83", "#2fb39a", "#b5f2d6"),
    "terrain": _ramp("#1a3c8c", "#2f7fd0", "#e9dc9b", "#4f9a3a", "#2f6a2a", "#8a7a66", "#ffffff"),
    "ice": _ramp("#0b0b2b", "#3a3f94", "#7d95d8", "#c6dcf5", "#ffffff"),
}


def channels(palette: str) -> int:
    """Channels of a render with ``palette``: 1 for ``gray``, 3 otherwise."""
    return 1 if palette == "gray" else 3


def _number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _check_class_values(frequency, octaves, persistence, lacunarity, palette, where: str) -> None:
    if not 0.0 < frequency:
        raise ConfigError(f"{where}frequency must be > 0 cycles per image, got {frequency}; e.g. 4.0")
    if not 1 <= octaves <= MAX_OCTAVES:
        raise ConfigError(f"{where}octaves must be in 1..{MAX_OCTAVES}, got {octaves}; e.g. 4")
    if not 0.0 < persistence <= 1.0:
        raise ConfigError(f"{where}persistence must be in (0, 1], got {persistence}; e.g. 0.5")
    if not lacunarity > 1.0:
        raise ConfigError(f"{where}lacunarity must be > 1, got {lacunarity}; e.g. 2.0")
    if palette not in PALETTES:
        raise ConfigError(f"{where}unknown palette {palette!r}; choose one of {', '.join(PALETTES)}")


@dataclass(frozen=True)
class PerlinClass:
    """One Perlin-noise class: the parameters every instance shares.

    Attributes:
        frequency: base frequency, cycles per image (> 0).
        octaves: number of octaves, 1..16.
        persistence: amplitude factor per octave, in (0, 1].
        lacunarity: frequency factor per octave, > 1.
        palette: a key of :data:`PALETTES`.
    """

    frequency: float
    octaves: int
    persistence: float
    lacunarity: float
    palette: str

    def __post_init__(self):
        for name in ("frequency", "persistence", "lacunarity"):
            object.__setattr__(self, name, _number(getattr(self, name), name))
        if isinstance(self.octaves, bool) or not isinstance(self.octaves, (int, np.integer)):
            raise ConfigError(f"octaves must be an integer in 1..{MAX_OCTAVES}, got {self.octaves!r}")
        object.__setattr__(self, "octaves", int(self.octaves))
        _check_class_values(self.frequency, self.octaves, self.persistence, self.lacunarity, self.palette, "")

    @property
    def channels(self) -> int:
        """1 for the ``gray`` palette, 3 otherwise."""
        return channels(self.palette)

    def to_dict(self) -> dict:
        """Plain JSON-able values (floats round-trip exactly through JSON)."""
        return {"frequency": self.frequency, "octaves": self.octaves, "persistence": self.persistence,
                "lacunarity": self.lacunarity, "palette": self.palette}

    @classmethod
    def from_dict(cls, d) -> "PerlinClass":
        """Inverse of :meth:`to_dict`; an optional ``family: perlin`` entry is allowed.

        Raises:
            ConfigError: a key is missing or unknown, or a value is out of range.
        """
        if not isinstance(d, dict):
            raise ConfigError(f"a Perlin class must be a mapping, got {type(d).__name__}")
        names = [f.name for f in fields(cls)]
        extra = sorted(set(d) - set(names) - {"family"})
        missing = [n for n in names if n not in d]
        family = d.get("family", "perlin")
        if extra or missing or family != "perlin":
            wrong_family = f", family {family!r} (must be 'perlin')" if family != "perlin" else ""
            raise ConfigError(f"a Perlin class needs exactly the keys {', '.join(names)}; "
                              f"got missing {missing or 'none'}, unknown {extra or 'none'}{wrong_family}")
        return cls(**{n: d[n] for n in names})


def instance_key(seed: int, class_index: int, instance: int) -> np.uint64:
    """The key of one instance: ``stream_key(seed, "perlin-instance", class_index, instance)``."""
    return stream_key(seed, "perlin-instance", class_index, instance)


# --------------------------------------------------------------------------
# Octave table and byte mapping
# --------------------------------------------------------------------------

def nyquist_taper(f: float, size: int) -> float:
    """Weight factor of an octave of ``f`` cycles per image at side ``size``.

    1 up to half the Nyquist frequency (``size / 4``), 0 from Nyquist
    (``size / 2``) on, and the quintic fade in between.  A hard cut at
    Nyquist would make the image jump when a parameter moves an octave across
    it; faded, a small parameter change stays a small change in the image.
    """
    r = 2.0 * f / size  # 1 at Nyquist
    if r <= 0.5:
        return 1.0
    if r >= 1.0:
        return 0.0
    t = 2.0 * (1.0 - r)
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)


@lru_cache(maxsize=4096)
def octave_table(cls: PerlinClass, size: int, tileable: bool):
    """(freqs, amps, periods) of the octaves rendered at ``size``.

    ``freqs[o] = frequency * lacunarity**o`` cycles per image (rounded to an
    integer >= 1 when tileable).  Octave ``o`` weighs ``persistence**o`` times
    :func:`nyquist_taper` (octave 0 always weighs 1: an image is never empty);
    octaves of weight 0, at or past Nyquist, are left out, and ``amps`` are
    the weights normalised to sum 1.  ``periods`` are the integer
    frequencies when tileable, else 0 (no wrap).  The arrays are read-only
    and cached per (class, size, tileable).
    """
    freqs, weights = [], []
    for o in range(cls.octaves):
        f = cls.frequency * cls.lacunarity ** o
        if tileable:
            f = max(1.0, math.floor(f + 0.5))
        w = cls.persistence ** o * (nyquist_taper(f, size) if o > 0 else 1.0)
        if w == 0.0:
            break  # higher octaves are higher still
        freqs.append(f)
        weights.append(w)
    total = sum(weights)
    out = (np.array(freqs, dtype=np.float64), np.array([w / total for w in weights], dtype=np.float64),
           np.array(freqs if tileable else [0] * len(freqs), dtype=np.int64))
    for a in out:
        a.setflags(write=False)
    return out


def class_gain(amps: np.ndarray) -> float:
    """Gain of the byte mapping ``byte = round(255 * clip(0.5 + gain * v, 0, 1))``.

    The octave sum of a class has standard deviation ``NOISE_SIGMA *
    sqrt(sum a_o**2)`` (octaves are independent); the gain maps +-``Z_SPAN``
    of them to the full byte range.  So every class gets the same contrast
    whatever its persistence and octave count (without it a six-octave,
    low-persistence class would be a flat gray), and the mapping depends on
    the class only, never on other instances.
    """
    return 0.5 / (Z_SPAN * NOISE_SIGMA * math.sqrt(float(np.sum(np.asarray(amps) ** 2))))


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class PerlinRenderConfig:
    """How Perlin instances are drawn.

    Attributes:
        size: image side in pixels, 16..8192.
        tileable: round octave frequencies to integers and wrap the lattice,
            so the image tiles seamlessly.
    """

    size: int = 256
    tileable: bool = False

    def __post_init__(self):
        if isinstance(self.size, bool) or not isinstance(self.size, (int, np.integer)) \
                or not 16 <= self.size <= 8192:
            raise ConfigError(f"size must be an integer in 16..8192, got {self.size!r}; e.g. 256")
        if not isinstance(self.tileable, (bool, np.bool_)):
            raise ConfigError(f"tileable must be true or false, got {self.tileable!r}")
        object.__setattr__(self, "size", int(self.size))
        object.__setattr__(self, "tileable", bool(self.tileable))


def host_out(shape: tuple, out: np.ndarray | None) -> np.ndarray:
    """``out``, or a new uint8 array of ``shape``; ValueError unless ``out`` is C-contiguous
    uint8 of exactly that shape (a caller's bug, not a user setting: the renderers write
    that layout)."""
    if out is None:
        return np.empty(shape, dtype=np.uint8)
    if tuple(out.shape) != tuple(shape) or out.dtype != np.uint8 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous uint8 array of shape {shape}, got {out.dtype} {out.shape}")
    return out


class PerlinRenderer(HostRenderer):
    """Renders Perlin instances on the calling thread; one instance per thread.

    It owns its scratch buffers (the float field, the permutation, per-column
    rows), so a render allocates nothing but its output when ``out`` is None.
    """

    def __init__(self, cfg: PerlinRenderConfig):
        self.cfg = cfg
        n = cfg.size
        self.field = np.empty((n, n), dtype=np.float64)
        self.perm = np.empty(512, dtype=np.int32)
        self.offs = np.empty((MAX_OCTAVES, 2), dtype=np.float64)
        self.grads = np.empty((2, 512), dtype=np.float64)
        self.cx0 = np.empty(n, dtype=np.uint32)
        self.cx1 = np.empty(n, dtype=np.uint32)
        self.cfx = np.empty(n, dtype=np.float64)
        self.cux = np.empty(n, dtype=np.float64)

    def shape(self, cls: PerlinClass) -> tuple:
        """``(size, size, C)`` of a render of ``cls``."""
        return (self.cfg.size, self.cfg.size, channels(cls.palette))

    def render_field(self, cls: PerlinClass, key) -> np.ndarray:
        """The float octave sum ``v`` (a view of the renderer's own buffer, overwritten by the next call)."""
        cfg = self.cfg
        freqs, amps, periods = octave_table(cls, cfg.size, cfg.tileable)
        offs = self.offs[: len(freqs)]
        key = np.uint64(key)
        K.fill_permutation(key, self.perm)
        K.fill_offsets(key, offs)
        K.fbm_field(self.perm, freqs, amps, offs, periods, cfg.size, self.grads, self.cx0, self.cx1, self.cfx, self.cux,
                    self.field)
        return self.field

    def render(self, cls: PerlinClass, key: np.uint64, out: np.ndarray | None = None) -> np.ndarray:
        """One instance: ``(size, size, C)`` uint8, C = 1 for ``gray``, 3 otherwise.

        Args:
            cls: the class.
            key: :func:`instance_key` of (seed, class index, instance).
            out: optional C-contiguous uint8 array of that shape to write into.

        Returns:
            ``out`` (or a new array) holding the image.

        Raises:
            ValueError: ``out`` has the wrong shape, dtype or layout.
        """
        out = host_out(self.shape(cls), out)
        field = self.render_field(cls, key)
        _, amps, _ = octave_table(cls, self.cfg.size, self.cfg.tileable)
        K.colorize(field, class_gain(amps), PALETTES[cls.palette], out)
        return out

    def render_many(self, items):
        """Render ``(PerlinClass, key)`` items one after another; yields each image (a new array)."""
        for cls, key in items:
            yield self.render(cls, key)

    def render_many_device(self, items, out: np.ndarray | None = None) -> np.ndarray:
        """All items' images in one ``(n, size, size, C)`` array: the GPU twin's
        ``render_many_device`` on the CPU, whose "device" is host memory.

        Raises:
            ConfigError: the items' channel counts differ.
        """
        items = list(items)
        c = check_channels(items)
        out = host_out((len(items), self.cfg.size, self.cfg.size, c), out)
        for i, (cls, key) in enumerate(items):
            self.render(cls, key, out=out[i])
        return out



def check_channels(items) -> int:
    """The one channel count of ``(PerlinClass, key)`` items (1 when there are none).

    Raises:
        ConfigError: gray and colour palettes are mixed.
    """
    counts = sorted({channels(cls.palette) for cls, _ in items})
    if len(counts) > 1:
        gray = [i for i, (cls, _) in enumerate(items) if channels(cls.palette) == 1]
        raise ConfigError(f"render_many_device needs items of one channel count, got {len(gray)} gray "
                          f"(1 channel, e.g. item {gray[0]}) and {len(items) - len(gray)} colour (3 channels); "
                          f"render gray and colour palettes in separate calls")
    return counts[0] if counts else 1


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
