"""The transfer study's run cache: finished runs (``cache/runs.json``), pretrained weights and
data reports under ``OUT/cache``, keyed by the study's fingerprint, so an interrupted study
resumes where it stopped and ``--merge`` can bring in another folder's runs of the same study."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

from .._version import __version__
from ..errors import ConfigError, InputError
from ..train import write_text

#: Largest cache file read (a study's runs.json holds a few hundred small entries).
MAX_CACHE_BYTES = 64 << 20

#: Settings that do not change a single run: a narrower or wider rerun reuses every finished run.
_NOT_PER_RUN = ("arms", "large_arms", "shots", "seeds", "seeds_large", "scaling", "cached_only")


class Missing(Exception):
    """A run that is not in the cache, with ``cached_only``: it is left out, not computed."""


def fingerprint(settings: dict, data: dict) -> str:
    """What a single run depends on: the per-run settings, the target (name, training-set size) and
    the version; 16 hex digits in every cache file's name and in ``runs.json``."""
    per_run = {k: v for k, v in settings.items() if k not in _NOT_PER_RUN}
    return hashlib.sha256(json.dumps({"settings": per_run, "target": data["name"], "n": len(data["train_y"]),
                                      "version": __version__}, sort_keys=True, default=str)
                          .encode()).hexdigest()[:16]


def run_key(arm: str, shots, protocol: str, *rest) -> str:
    """A run's key in ``runs.json``: ``ARM|SHOTS|finetune|select``, ``ARM|SHOTS|finetune|SEED|LR``
    (one fine-tuned seed at the chosen learning rate) or ``ARM|SHOTS|linear|SEEDS``."""
    return "|".join(str(p) for p in (arm, shots, protocol, *rest))


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _valid_run(key, value) -> bool:
    """Whether a cache entry has the shape this module writes for its kind of key."""
    if not isinstance(key, str):
        return False
    if key.endswith("|finetune|select"):
        return (isinstance(value, dict) and _number(value.get("lr")) and _number(value.get("test_seed0"))
                and isinstance(value.get("epochs"), int) and isinstance(value.get("val"), dict)
                and all(_number(v) for v in value["val"].values()))
    if "|finetune|" in key:
        return _number(value)
    if "|linear|" in key:
        return (isinstance(value, dict) and isinstance(value.get("per_seed"), list) and value["per_seed"]
                and all(_number(v) for v in value["per_seed"]) and isinstance(value.get("hyper"), dict))
    return False


def _read_cache(path: Path) -> dict:
    """``{"fingerprint", "runs"}`` of a cache file, bounded; entries of a wrong shape dropped.
    Raises OSError / ValueError when it cannot be read as one."""
    if path.stat().st_size > MAX_CACHE_BYTES:
        raise ValueError(f"larger than {MAX_CACHE_BYTES >> 20} MiB")
    doc = json.loads(path.read_text())
    if not isinstance(doc, dict) or not isinstance(doc.get("runs"), dict):
        raise ValueError("not a transfer-study cache")
    return {"fingerprint": doc.get("fingerprint"),
            "runs": {k: v for k, v in doc["runs"].items() if _valid_run(k, v)}}


class RunCache:
    """``OUT/cache``: one JSON file of finished runs, so an interrupted study resumes where it
    stopped (an entry of the wrong shape is dropped, so that run is made again), beside the
    pretrained weights and data reports of this fingerprint."""

    def __init__(self, folder: Path, fingerprint: str, cached_only: bool = False):
        self.folder, self.fingerprint, self.cached_only = folder, fingerprint, cached_only
        self.path = folder / "runs.json"
        self.runs = {}
        if self.path.exists():
            try:
                doc = _read_cache(self.path)
            except (OSError, ValueError, RecursionError):
                doc = {}
            if doc.get("fingerprint") == fingerprint:
                self.runs = doc["runs"]

    def weights(self, arm: str) -> Path:
        """Where ``arm``'s pretrained weights are kept."""
        return self.folder / f"pretrained-{arm}-{self.fingerprint}.pt"

    def report(self, arm: str) -> Path:
        """Where the key numbers of ``arm``'s data report are kept."""
        return self.folder / f"report-{arm}-{self.fingerprint}.json"

    def get(self, key):
        if self.cached_only and key not in self.runs:
            raise Missing(key)
        return self.runs.get(key)

    def put(self, key, value):
        self.runs[key] = value
        self.save()

    def save(self):
        write_text(self.path, json.dumps({"fingerprint": self.fingerprint, "runs": self.runs}) + "\n")


def merge_cache(src: Path, out: Path, fingerprint: str) -> None:
    """Copy the finished runs, pretrained weights and data reports of study folder ``src`` into
    ``out``'s cache.  Both must be runs of the same per-run settings (``fingerprint``); a run
    present in both must have the same numbers."""
    path = src / "cache" / "runs.json"
    if not path.is_file():
        raise InputError(f"--merge {src}: no readable {path}; give the --out folder of another "
                         "'experiment transfer' run")
    try:
        doc = _read_cache(path)
    except (OSError, ValueError, RecursionError) as exc:
        raise InputError(f"--merge {src}: {path} is not a transfer-study cache ({exc}); give the --out "
                         "folder of another 'experiment transfer' run") from None
    if doc.get("fingerprint") != fingerprint:
        raise ConfigError(f"--merge {src}: its runs were made with other per-run settings, target or version "
                          f"(fingerprint {doc.get('fingerprint')!r}, here {fingerprint!r}); merge only runs of "
                          "the same study")
    mine = RunCache(out / "cache", fingerprint)
    for key, value in doc["runs"].items():
        if key in mine.runs and mine.runs[key] != value:
            raise ConfigError(f"--merge {src}: run {key} has other numbers there than in {out}; "
                              "the two folders are not runs of the same code")
        mine.runs[key] = value
    mine.save()
    _copy_files(src, out, fingerprint)


def _copy_files(src: Path, out: Path, fingerprint: str) -> None:
    """``src``'s pretrained weights and data reports that ``out`` lacks (no links followed)."""
    import shutil

    for pattern in (f"pretrained-*-{fingerprint}.pt", f"report-*-{fingerprint}.json"):
        for f in sorted((src / "cache").glob(pattern)):
            if f.is_file() and not f.is_symlink() and not (out / "cache" / f.name).exists():
                shutil.copyfile(f, out / "cache" / f.name)
    if (src / "reports").is_dir():
        for d in sorted((src / "reports").iterdir()):
            if d.is_dir() and not d.is_symlink() and not (out / "reports" / d.name).exists():
                shutil.copytree(d, out / "reports" / d.name, symlinks=False)
