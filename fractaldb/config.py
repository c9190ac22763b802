"""Presets and configuration: one function resolves CLI > preset > defaults.

A preset is a flat YAML mapping.  Every key is declared in :data:`KEYS`
with its type and a check; unknown keys and wrong types are errors that say
what is allowed.  Built-in presets ship inside the package
(``fractaldb.presets``), so they load from an installed wheel too.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from . import constants as C
from .errors import ConfigError
from .render import RenderConfig
from .search import SAMPLERS, SearchConfig, default_workers

__all__ = ["KEYS", "FAMILIES", "list_presets", "load_preset", "resolve", "parse_override",
           "search_config", "render_config", "perlin_search_config", "perlin_render_config",
           "has_fractals", "has_perlin"]


FAMILIES = ("fractal", "perlin", "fractal+perlin")


def _positive(v):
    return v > 0


def _positive_range(v):
    return 0 < v[0] <= v[1]


def _int_range(v):
    return all(isinstance(x, int) for x in v) and v[0] <= v[1]


def _unit(v):
    return 0.0 < v <= 1.0


def _name(v):
    return bool(v) and all(c.isalnum() or c in "-_" for c in v)


#: key -> (type, check, allowed, default)
KEYS = {
    "description": (str, None, "any text", ""),
    "name": (str, _name, "letters, digits, - and _ (used in shard names)", "fractaldb"),
    "seed": (int, lambda v: 0 <= v < 2**32, "an integer in 0..2**32-1", 1),
    "sampler": (str, lambda v: v in SAMPLERS, " | ".join(SAMPLERS), "official"),
    "categories": (int, _positive, "an integer > 0", 1000),
    "fill_rate": (float, _unit, "a number in (0, 1]", C.SEARCH_FILL_RATE),
    "search_points": (int, lambda v: v >= 2, "an integer >= 2", C.SEARCH_POINTS),
    "image_size": (int, lambda v: 16 <= v <= 8192, "an integer in 16..8192", C.RENDER_SIZE),
    "points": (int, lambda v: v >= 2, "an integer >= 2", C.RENDER_POINTS),
    "mode": (str, lambda v: v in ("point", "patch"), "point | patch", "patch"),
    "color": (str, lambda v: v in ("gray", "color"), "gray | color", "gray"),
    "weights": (str, None, "a step such as 0.4, a factor list, or none", C.RENDER_WEIGHT_STEP),
    "patches": (int, _positive, "an integer > 0", C.RENDER_PATCHES),
    "flips": (int, lambda v: 1 <= v <= 4, "an integer in 1..4", C.RENDER_FLIPS),
    "compat": (str, lambda v: v in ("official", "modern"), "official | modern", "official"),
    "degenerate": (str, lambda v: v in ("replace", "record", "keep"), "replace | record | keep", "keep"),
    "shard_size": (int, _positive, "an integer > 0", 1000),
    "image_format": (str, lambda v: v in ("png", "jpg", "webp"), "png | jpg | webp", "png"),
    "category_dir": (str, None, "a category folder to load instead of searching ('' to search)", ""),
    # Families and the Perlin-noise classes (fractaldb.perlin).
    "family": (str, lambda v: v in FAMILIES, " | ".join(FAMILIES), "fractal"),
    "perlin_classes": (int, _positive, "an integer > 0", 10),
    "perlin_instances": (int, _positive, "an integer > 0", 100),
    # Above Nyquist (image_size / 2 <= 4096) an octave is only aliasing; 65536 keeps a
    # tileable class's integer period far inside int64.
    "perlin_frequency": ("range", lambda v: _positive_range(v) and v[1] <= 65536,
                         "[low, high] with 0 < low <= high <= 65536 (cycles per image)", [1.0, 16.0]),
    "perlin_octaves": ("range", lambda v: _int_range(v) and v[0] >= 1, "[low, high] integers with 1 <= low <= high",
                       [1, 6]),
    "perlin_persistence": ("range", lambda v: 0 < v[0] <= v[1] <= 1, "[low, high] with 0 < low <= high <= 1",
                           [0.3, 0.9]),
    "perlin_lacunarity": ("range", lambda v: 1 < v[0] <= v[1], "[low, high] with 1 < low <= high", [1.5, 3.0]),
    "perlin_palettes": (str, None, "'all' or a comma-separated list of palette names", "all"),
    "perlin_min_distance": (float, lambda v: v >= 0, "a number >= 0, or -1 for the built-in default", -1.0),
    "perlin_tileable": (bool, None, "true | false", False),
    "perlin_image_format": (str, lambda v: v in ("png", "jpg", "webp"), "png | jpg | webp", "jpg"),
}


def _coerce(key: str, value, source: str):
    if key not in KEYS:
        raise ConfigError(f"unknown key {key!r} in {source}; known keys: {', '.join(KEYS)}")
    typ, check, allowed, _ = KEYS[key]
    if typ == "range":
        if not (isinstance(value, (list, tuple)) and len(value) == 2
                and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)):
            raise ConfigError(f"{key} in {source} must be {allowed}, got {value!r}")
        value = list(value)
        if check is not None and not check(value):
            raise ConfigError(f"{key} in {source} must be {allowed}, got {value!r}")
        return value
    if typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} in {source} must be {allowed}, got {value!r}")
        return value
    if key == "perlin_min_distance" and value == -1:
        return -1.0
    if typ is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # weights: 0.4 written without quotes
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, typ) or isinstance(value, bool):
        raise ConfigError(f"{key} in {source} must be {allowed}, got {value!r}")
    if check is not None and not check(value):
        raise ConfigError(f"{key} in {source} must be {allowed}, got {value!r}")
    return value


def list_presets() -> list:
    """Names of the built-in presets."""
    root = resources.files("fractaldb.presets")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def load_preset(name_or_path) -> dict:
    """A built-in preset by name, or a YAML file by path; validated."""
    text = None
    source = str(name_or_path)
    if str(name_or_path).endswith((".yaml", ".yml")):
        path = Path(name_or_path)
        if not path.is_file():
            raise ConfigError(f"preset file {path} does not exist; give a YAML file or one of: {', '.join(list_presets())}")
        text = path.read_text()
    else:
        res = resources.files("fractaldb.presets") / f"{name_or_path}.yaml"
        if not res.is_file():
            raise ConfigError(f"unknown preset {name_or_path!r}; choose one of: {', '.join(list_presets())}")
        text = res.read_text()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"preset {source} is not valid YAML{where}; fix the file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"preset {source} must be a mapping of key: value lines")
    return {k: _coerce(k, v, source) for k, v in data.items()}


def parse_override(text: str) -> tuple:
    """``key=value`` from ``--set``; the value is parsed as YAML (so 0.4, 10, png)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r} must look like key=value")
    key, _, raw = text.partition("=")
    key = key.strip()
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, _coerce(key, value, "--set")


def resolve(preset=None, overrides=()) -> dict:
    """Defaults < preset < ``--set`` overrides: the resolved configuration."""
    cfg = {k: spec[3] for k, spec in KEYS.items()}
    if preset is not None:
        cfg.update(load_preset(preset) if not isinstance(preset, dict) else preset)
    for item in overrides:
        key, value = parse_override(item) if isinstance(item, str) else item
        cfg[key] = value
    render_config(cfg)  # cross-key checks (size vs pad, weights syntax)
    if "perlin" in cfg["family"]:
        perlin_search_config(cfg)  # palettes exist, ranges make sense
    return cfg


def search_config(cfg: dict, workers: int | None = None) -> SearchConfig:
    return SearchConfig(sampler=cfg["sampler"], categories=cfg["categories"], seed=cfg["seed"],
                        fill_rate=cfg["fill_rate"], points=cfg["search_points"],
                        workers=workers or default_workers())


def has_fractals(cfg: dict) -> bool:
    return "fractal" in cfg["family"]


def has_perlin(cfg: dict) -> bool:
    return "perlin" in cfg["family"]


def perlin_search_config(cfg: dict):
    from .perlin import PALETTES, PerlinSearchConfig

    palettes = tuple(PALETTES) if cfg["perlin_palettes"].strip() == "all" else \
        tuple(p.strip() for p in cfg["perlin_palettes"].split(",") if p.strip())
    extra = {} if cfg["perlin_min_distance"] < 0 else {"min_distance": cfg["perlin_min_distance"]}
    return PerlinSearchConfig(classes=cfg["perlin_classes"], seed=cfg["seed"],
                              frequency=tuple(cfg["perlin_frequency"]), octaves=tuple(cfg["perlin_octaves"]),
                              persistence=tuple(cfg["perlin_persistence"]),
                              lacunarity=tuple(cfg["perlin_lacunarity"]), palettes=palettes, **extra)


def perlin_render_config(cfg: dict):
    from .perlin import PerlinRenderConfig

    return PerlinRenderConfig(size=cfg["image_size"], tileable=cfg["perlin_tileable"])


def render_config(cfg: dict) -> RenderConfig:
    return RenderConfig(mode=cfg["mode"], color=cfg["color"], size=cfg["image_size"], points=cfg["points"],
                        weights=cfg["weights"], patches=cfg["patches"], flips=cfg["flips"],
                        compat=cfg["compat"], seed=cfg["seed"], degenerate=cfg["degenerate"])
