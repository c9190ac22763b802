"""Perlin-noise classes: definition and rendering.

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

The search (:mod:`.search`) draws parameter tuples and keeps those far enough,
in a distance measured on small renders, from every class kept so far.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np

from ...errors import ConfigError
from ..base import HostRenderer
from ...seeds import declare_purposes, stream_key
from . import kernels as K

#: The family's random streams.
PURPOSES = declare_purposes("perlin", {
    "perlin-instance": 11,  # gradient lattice and offsets of a Perlin instance (class, instance)
    "perlin-classes": 12,   # the Perlin class search (candidate)
})

__all__ = [
    "PALETTES", "PerlinClass", "PerlinRenderConfig", "PerlinRenderer", "check_channels", "instance_key", "channels",
    "class_gain", "octave_table", "nyquist_taper", "MAX_OCTAVES", "SEARCH_SIZE",
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


_MOVED = ("PerlinSearchConfig", "search_classes", "probe_keys", "class_features", "palette_distance",
          "class_distance", "PALETTE_WEIGHT")


def __getattr__(name):
    if name in _MOVED:  # 0.2's home of the class search: now fractaldb.families.perlin.search
        import importlib
        import warnings

        warnings.warn(f"{__name__}.{name} moved to fractaldb.families.perlin.search", DeprecationWarning,
                      stacklevel=2)
        return getattr(importlib.import_module(f"{__package__}.search"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
