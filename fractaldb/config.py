"""Presets and configuration: one function resolves CLI > preset > defaults.

A preset is YAML with a few dataset-wide keys and one section per family::

    name: tiny              # used in shard names
    seed: 1                 # every random stream derives from it
    shard_size: 16
    families: [fractal]     # optional: the sections given, in order (labels follow it)
    fractal:                # the fractal family's settings (fractaldb presets show NAME lists them all)
      categories: 4
      image_size: 64

Every key, its type, default, allowed values and help text come from the
family's settings dataclass (:mod:`fractaldb.families`); unknown keys and
wrong types are one-line errors naming what is allowed.  ``--set
perlin.classes=64`` addresses a section key, ``--set seed=3`` a dataset key.

Presets written for fractaldb 0.1 (one flat mapping, ``family: fractal+perlin``,
``perlin_classes`` ...) and the configs in old manifests still load: their
keys are translated by each family's ``legacy_keys``.  Built-in presets ship
inside the package (``fractaldb.presets``), so they load from a wheel too.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from .encode import DEFAULT_ENCODER, ENCODERS
from .errors import ConfigError
from .safety import MAX_NAME_BYTES, check_bytes, dataset_name_ok
from .families import category_reader, get_family, legacy_default_family, list_families
from .schema import coerce, setting, settings_of
from .folders import PRESET, wrong_folder_hint

__all__ = ["TOP_KEYS", "DatasetSettings", "list_presets", "load_preset", "resolve", "parse_override", "normalise", "families",
           "family_settings", "section_keys", "first_classes", "classes_per_family", "flat_keys",
           "val_shard_count", "shard_splits"]


def _name(v):
    return dataset_name_ok(v)


@dataclass(frozen=True, kw_only=True)
class DatasetSettings:
    """The dataset-wide keys of a preset (every other key belongs to a family's section)."""

    description: str = setting("", "One line saying what the dataset is.", "any text")
    name: str = setting("fractaldb", "Shard name prefix.",
                        f"letters, digits, - and _, at most {MAX_NAME_BYTES} bytes (used in shard names)", _name)
    seed: int = setting(1, "Seed of every random stream.", "an integer in 0..2**32-1", lambda v: 0 <= v < 2**32,
                        bound=False)
    shard_size: int = setting(1000, "Samples per shard.", "an integer > 0", lambda v: v > 0)
    encoder: str = setting(DEFAULT_ENCODER, "Image writer: png3 (the default: 8-bit PNGs, one image mode per dataset, so "
                           "every reader decodes pixel values), png2 (palette PNGs for few gray levels: smaller "
                           "and faster, but readers that do not convert see palette indices) or png1 (8-bit, "
                           "what datasets written before fractaldb 0.3 hold); see fractaldb/encode.py.",
                           " or ".join(ENCODERS), choices=ENCODERS)
    val_fraction: float = setting(0.0, "Fraction of the shards held out as a validation split (the last shards, "
                                  "at least one; every index and the card name it). 0: none, and the key is not "
                                  "recorded.", "a number in [0, 0.5]", lambda v: 0 <= v <= 0.5)


#: Dataset-wide keys: key -> :class:`fractaldb.schema.Setting` (of :class:`DatasetSettings`).
TOP_KEYS = settings_of(DatasetSettings)


def section_keys(family: str) -> dict:
    """``{key: Setting}`` of a family's preset section."""
    return settings_of(get_family(family).settings)


def flat_keys(cfg: dict) -> dict:
    """A sectioned config as ``{"key": v, "section.key": v}`` (one level of sections)."""
    out = {}
    for k, v in cfg.items():
        if isinstance(v, dict):
            out.update({f"{k}.{sub}": x for sub, x in v.items()})
        else:
            out[k] = v
    return out


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def _families_value(value, source: str) -> list:
    """``[fractal, perlin]``, ``fractal`` or ``fractal+perlin`` -> a list of registered names."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split("+")]
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"families in {source} must be a list of family names such as "
                          f"[{', '.join(list_families())}], got {value!r}")
    for v in value:
        get_family(v)
    if len(set(value)) != len(value):
        raise ConfigError(f"families in {source} lists a family twice: {value!r}")
    return list(value)


def _top(key: str, value, source: str):
    return coerce(TOP_KEYS[key], value, f"{key} in {source}")


def _section_value(family: str, key: str, value, source: str):
    keys = section_keys(family)
    if key not in keys:
        raise ConfigError(f"unknown key {family}.{key} in {source}; {_suggest(key, keys)}"
                          f"{family} keys: {', '.join(keys)}")
    if key == "min_distance" and value == -1:  # the built-in default, written as an int
        value = -1.0
    return coerce(keys[key], value, f"{family}.{key} in {source}")


def normalise(raw: dict, source: str = "the preset") -> dict:
    """A preset or manifest config (new or 0.1 flat form) as ``{top keys, families, sections}``,
    every given value checked; keys not given are left out (see :func:`resolve`)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must be a mapping of key: value lines")
    out: dict = {}
    sections: dict = {}
    flat: dict = {}
    names = list_families()
    fams = None
    for key, value in raw.items():
        key = str(key)
        if key in TOP_KEYS:
            out[key] = _top(key, value, source)
        elif key in ("families", "family"):  # "family: fractal+perlin" is the 0.1 spelling
            fams = _families_value(value, source)
        elif key in names:
            if not isinstance(value, dict):
                raise ConfigError(f"section {key} in {source} must be a mapping of key: value lines, got {value!r}")
            sections[key] = {str(k): _section_value(key, str(k), v, source) for k, v in value.items()}
        else:
            flat[key] = value
    if fams is None:
        fams = list(sections) or [legacy_default_family()]
    for name in sections:
        if name not in fams:
            raise ConfigError(f"{source} has a {name} section but families is {fams}; "
                              f"add {name} to families or remove the section")
    # 0.1 flat keys: each goes to the families in use that know it.
    for key, value in flat.items():
        users = [f for f in fams if key in get_family(f).legacy_keys]
        if users:
            for f in users:
                sections.setdefault(f, {})[get_family(f).legacy_keys[key]] = \
                    _section_value(f, get_family(f).legacy_keys[key], value, source)
        elif not any(key in get_family(f).legacy_keys for f in names):
            known = list(TOP_KEYS) + ["families"] + names
            raise ConfigError(f"unknown key {key!r} in {source}; {_suggest(key, known + [k for f in fams for k in section_keys(f)])}"
                              f"dataset keys: {', '.join(known)}; family keys go in a section "
                              f"(e.g. {fams[0]}: {{...}}; see 'fractaldb presets show')")
        # else: a key of a family this dataset does not use (0.1 configs listed every key)
    out["families"] = fams
    for f in fams:
        out[f] = sections.get(f, {})
    return out


def list_presets() -> list:
    """Names of the built-in presets."""
    root = resources.files("fractaldb.presets")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


#: Largest preset file read (a preset is a few dozen lines).
MAX_PRESET_BYTES = 1 << 20


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: let the base class say so
                duplicate = False
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice",
                                                        key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, source: str):
    """YAML text (keys unique) as Python data, or a one-line :class:`ConfigError`."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None)
        why = f" ({problem})" if problem and "twice" in str(problem) else ""
        raise ConfigError(f"{source} is not valid YAML{where}{why}; fix the file") from None
    except RecursionError:
        raise ConfigError(f"{source} is nested too deeply; fix the file") from None


def _read_preset_file(path: Path, source: str) -> str:
    if not path.is_file():
        raise ConfigError(f"preset file {path} does not exist (or is not a regular file); give a YAML file or "
                          f"one of: {', '.join(list_presets())}")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_PRESET_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read preset {source}: {exc.strerror or exc}") from None
    if len(raw) > MAX_PRESET_BYTES:
        raise ConfigError(f"preset {source} is over {MAX_PRESET_BYTES // 1024} KiB; a preset is a few dozen lines")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"preset {source} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def load_preset(name_or_path) -> dict:
    """A built-in preset by name, or a YAML file by path; validated (:func:`normalise`)."""
    source = str(name_or_path)
    hint = wrong_folder_hint(source, PRESET, category_reader)
    if hint:
        raise ConfigError(hint)
    if source.endswith((".yaml", ".yml")):
        text = _read_preset_file(Path(name_or_path), source)
    else:
        if source not in list_presets():  # a name, never a path into the package
            hint = " (a file path must end in .yaml or .yml)" if ("/" in source or "\\" in source) else ""
            raise ConfigError(f"unknown preset {name_or_path!r}{hint}; {_suggest(source, list_presets())}"
                              f"choose one of: {', '.join(list_presets())}")
        text = (resources.files("fractaldb.presets") / f"{source}.yaml").read_text(encoding="utf-8")
    return normalise(parse_yaml(text, f"preset {source}"), f"preset {source}")


def parse_override(text: str) -> tuple:
    """``key=value`` from ``--set``; the value is parsed as YAML (so 0.4, 10, png, [1, 2])."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r} must look like KEY=VALUE, e.g. --set seed=3 or --set SECTION.KEY=VALUE "
                          "('fractaldb presets show NAME' lists the keys)")
    key, _, raw = text.partition("=")
    key = key.strip()
    try:
        value = yaml.load(raw, Loader=_UniqueKeyLoader) if raw.strip() else ""  # noqa: S506
    except (yaml.YAMLError, RecursionError):
        value = raw
    return key, value


def _apply(cfg: dict, key: str, value) -> None:
    """One ``--set``: a dataset key, ``families``, ``FAMILY.KEY``, or a 0.1 flat key."""
    fams = cfg["families"]
    if key in TOP_KEYS:
        cfg[key] = _top(key, value, "--set")
    elif key in ("families", "family"):
        new = _families_value(value, "--set")
        for f in fams:
            if f not in new:
                cfg.pop(f, None)
        for f in new:
            cfg.setdefault(f, {})
        cfg["families"] = new
    elif "." in key:
        fam, _, sub = key.partition(".")
        get_family(fam)
        if fam not in fams:
            raise ConfigError(f"--set {key}: this dataset has no {fam} family (families: {', '.join(fams)}); "
                              f"add it first with --set families=[{', '.join(fams + [fam])}]")
        cfg[fam][sub] = _section_value(fam, sub, value, "--set")
    else:
        users = [f for f in fams if key in get_family(f).legacy_keys or key in section_keys(f)]
        if not users:
            owners = [f for f in list_families() if key in get_family(f).legacy_keys or key in section_keys(f)]
            if owners:
                raise ConfigError(f"--set {key}: {key} belongs to the {owners[0]} family, which this dataset does "
                                  f"not use (families: {', '.join(fams)})")
            known = list(TOP_KEYS) + ["families"] + [f"{f}.{k}" for f in fams for k in section_keys(f)]
            raise ConfigError(f"--set {key}: unknown key; {_suggest(key, known)}known keys: {', '.join(known)}")
        for f in users:
            sub = key if key in section_keys(f) else get_family(f).legacy_keys[key]
            cfg[f][sub] = _section_value(f, sub, value, "--set")


def resolve(preset=None, overrides=()) -> "Config":
    """Defaults < preset < ``--set`` overrides: the resolved configuration.

    Args:
        preset: a preset name, a YAML path, or a mapping (new or 0.1 form, e.g.
            a manifest's ``config``).
        overrides: ``key=value`` strings or ``(key, value)`` pairs.

    Returns:
        A :class:`Config`: ``{"name", "description", "seed", "shard_size", "encoder",
        "families": [...], FAMILY: {every key}}``, every value checked, each family's
        settings object built once.  A :class:`Config` given as ``preset`` with no
        overrides is returned as it is (it is resolved already).
    """
    if isinstance(preset, Config) and not overrides:
        return preset
    if preset is None:
        cfg = normalise({})
    elif isinstance(preset, dict):
        cfg = normalise(copy.deepcopy(preset), "the config")
    else:
        cfg = load_preset(preset)
    for key, spec in TOP_KEYS.items():
        cfg.setdefault(key, spec.default)
    for item in overrides:
        key, value = parse_override(item) if isinstance(item, str) else item
        _apply(cfg, key, value)
    for i, f in enumerate(cfg["families"]):
        shared = _shared_defaults(cfg, cfg["families"][0], f) if i else {}
        cfg[f] = {**{k: copy.deepcopy(s.default) for k, s in section_keys(f).items()}, **shared, **cfg[f]}
    if not cfg.get("val_fraction"):  # optional: recorded only when a split is asked for
        cfg.pop("val_fraction", None)
    order = ["name", "description", "seed", "shard_size", "encoder"] + (["val_fraction"] if "val_fraction" in cfg
                                                                         else []) + ["families"] + cfg["families"]
    return Config({k: cfg[k] for k in order})


#: Keys a mixed dataset's families share unless a section sets its own (one image size and
#: format for the whole dataset, so every loader can batch it).
SHARED_KEYS = ("image_size", "image_format")


def _shared_defaults(cfg: dict, first: str, family: str) -> dict:
    """For a family after the first of a mixed dataset: the :data:`SHARED_KEYS` its section
    leaves unset, taken from the first family's (resolved) section where this family has the
    key and accepts the value; its own default otherwise."""
    mine, theirs = section_keys(family), cfg[first]
    out = {}
    for key in SHARED_KEYS:
        if key in mine and key in theirs and key not in cfg[family]:
            value = theirs[key]
            try:
                ok = mine[key].check is None or bool(mine[key].check(value))
            except (TypeError, ValueError):
                ok = False
            if ok:
                out[key] = copy.deepcopy(value)
    return out


class Config(dict):
    """A resolved configuration (what :func:`resolve` returns): the plain mapping a
    manifest stores and a preset file holds, plus the typed, validated objects built
    from it once -- :attr:`dataset` (:class:`DatasetSettings`) and each family's
    settings (:meth:`settings`, cross-key and memory checks included).

    Treat it as read-only: a changed copy is ``resolve(dict(cfg), overrides)``.
    """

    def __init__(self, mapping: dict):
        super().__init__(mapping)
        self.dataset = DatasetSettings(**{k: self[k] for k in TOP_KEYS if k in self})
        self._settings = {name: _build_settings(self, name) for name in self["families"]}

    @property
    def families(self) -> list:
        """The family names, in label order."""
        return list(self["families"])

    def settings(self, name: str):
        """The settings object of family ``name``."""
        return self._settings[name]

    def __deepcopy__(self, memo):
        return Config(copy.deepcopy(dict(self), memo))


# A Config is written like the mapping it is (cards, presets show).
yaml.SafeDumper.add_representer(Config, yaml.SafeDumper.represent_dict)


def first_classes(cfg: dict, k: int) -> "Config":
    """``cfg`` cut to its first ``k`` classes in label order (``generate --classes K``).

    Families are filled in order; a family left with no class is dropped.  The
    classes kept are the same ones, with the same labels, as in the full dataset:
    every family's class search is sequential.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise ConfigError(f"--classes must be a positive integer, got {k!r}")
    out = copy.deepcopy(dict(cfg))
    room = k
    for name in list(out["families"]):
        key = get_family(name).count_key
        n = min(out[name][key], room)
        room -= n
        if n:
            out[name][key] = n
        else:
            out["families"].remove(name)
            del out[name]
    return Config(out)


def classes_per_family(cfg: dict, k: int) -> tuple:
    """``cfg`` with every family cut to its first ``k`` classes (``generate --classes K``):
    ``(Config, note)``, where ``note`` says which families have fewer than ``k`` (kept whole;
    None when none has).  Unlike :func:`first_classes` no family of a mixed preset is dropped:
    ``--classes 2`` on ``fractal+perlin`` keeps 2 fractal and 2 Perlin classes (4 labels)."""
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise ConfigError(f"--classes must be a positive integer, got {k!r}")
    out = copy.deepcopy(dict(cfg))
    short = []
    for name in out["families"]:
        key = get_family(name).count_key
        if out[name][key] < k:
            short.append(f"{name} has {out[name][key]}")
        out[name][key] = min(out[name][key], k)
    note = (f"--classes {k} is more than there are ({', '.join(short)}); "
            f"{'that family is' if len(short) == 1 else 'those families are'} kept whole") if short else None
    return Config(out), note


def val_shard_count(cfg: dict, shards: int) -> int:
    """How many of a dataset's ``shards`` (the last ones) are its validation split: a
    ``val_fraction`` of them, rounded, at least one and leaving one for training; 0 without
    ``val_fraction``.  :class:`~fractaldb.errors.ConfigError` when a split is asked of one shard."""
    fraction = cfg.get("val_fraction") or 0
    if not fraction:
        return 0
    if shards < 2:
        raise ConfigError(f"val_fraction={fraction} needs at least 2 shards and the dataset has {shards}; "
                          "lower shard_size")
    return min(max(round(fraction * shards), 1), shards - 1)


def shard_splits(manifest: dict) -> dict:
    """``{"train": [shard entries], "val": [...]}`` of a manifest (``val`` only when it has one)."""
    entries = list(manifest["shards"])
    k = val_shard_count(manifest["config"], len(entries))
    return {"train": entries[:len(entries) - k], **({"val": entries[len(entries) - k:]} if k else {})}


def families(cfg: dict) -> list:
    """The family names of a resolved config, in label order."""
    return list(cfg["families"])


def family_settings(cfg: dict, name: str):
    """The settings object of family ``name`` of a resolved config (its memory bounds checked;
    built once per :class:`Config`)."""
    if isinstance(cfg, Config):
        return cfg.settings(name)
    return _build_settings(cfg, name)


def _build_settings(cfg: dict, name: str):
    fam = get_family(name)
    settings = fam.configure(cfg[name], cfg["seed"])
    _check_memory(fam, settings, cfg, name)
    return settings


def _check_memory(fam, settings, cfg: dict, name: str) -> None:
    """What one block, one shard and the plan of family ``name`` would hold in memory,
    against :func:`fractaldb.safety.memory_budget` (the bound the error names)."""
    section = cfg[name]
    side = section.get("image_size") or section.get("size")
    layout = fam.bind(settings, ())  # the layout depends on the settings alone
    per_block, blocks = layout.images_per_block, layout.blocks_per_class
    count = section.get(fam.count_key, 1)
    if isinstance(side, int) and side > 0:
        image = side * side * 3
        check_bytes(f"{name}: a block of {per_block} images of {side}x{side}", per_block * image,
                    f"lower {name}.image_size or the images per block")
        check_bytes(f"a shard of {cfg['shard_size']} {name} images of {side}x{side}", cfg["shard_size"] * image,
                    "lower shard_size")
    check_bytes(f"{name}: the plan of {count} classes x {blocks} blocks", 32 * count * blocks,
                f"lower {name}.{fam.count_key}")
