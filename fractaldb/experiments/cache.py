"""The transfer study's run cache: finished runs (``cache/runs.json``), pretrained weights and
data reports under ``OUT/cache``, keyed by the study's fingerprint, so an interrupted study
resumes where it stopped and ``--merge`` can bring in another folder's runs of the same study.

Everything read here is untrusted (a ``--merge`` source is someone else's folder): files are
read through :func:`fractaldb.inputs.read_file` (regular files only -- a link to ``/dev/zero``
or a FIFO is refused unread -- and bounded), entries of the wrong shape are dropped, and
``--merge`` copies only the files a study writes (its weights and data reports, each bounded,
the ``reports/ARM/`` files of known arms), through :func:`fractaldb.storage.write_file`."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path

from .._version import __version__
from ..errors import ConfigError, InputError
from ..inputs import parse_json, read_file
from ..storage import write_file
from ..train import write_text

#: Largest cache file read (a study's runs.json holds a few hundred small entries).
MAX_CACHE_BYTES = 64 << 20
#: Largest pretrained-weights file a merge copies (the study's networks are a few MB).
MAX_WEIGHTS_BYTES = 1 << 30
#: The files of a data report folder (``fractaldb report``) a merge copies, and the largest of each.
REPORT_FILES = ("report.json", "report.md", "coverage.png", "separability.png", "samples.png")
MAX_REPORT_FILE_BYTES = 64 << 20
#: A data report's key numbers (``report-ARM-FP.json``): the keys and what each holds.
_REPORT_KEYS = {"coverage_mean": "number", "separability_top1": "number or null", "separability_chance":
                "number or null", "near_empty": "int", "degenerate_variants": "int", "near_duplicate_pairs": "int"}

#: Settings that do not change a single run: a narrower or wider rerun reuses every finished run.
_NOT_PER_RUN = ("arms", "large_arms", "shots", "seeds", "seeds_large", "scaling", "cached_only", "pretrain_seeds",
                "vit_arms", "vit_shots")


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


def _of_kind(v, kind: str) -> bool:
    if v is None:
        return "null" in kind
    if kind == "int":
        return isinstance(v, int) and not isinstance(v, bool)
    return _number(v)


def _valid_run(key, value) -> bool:
    """Whether a cache entry has the shape this module writes for its kind of key."""
    if not isinstance(key, str):
        return False
    if key.startswith("v2|"):  # protocol v2: a run's score, or a selection with its validation scores
        if key.endswith("|select"):
            return (isinstance(value, dict) and isinstance(value.get("val"), dict)
                    and all(_number(v) for v in value["val"].values()))
        return _number(value)
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
    Raises InputError / ValueError when it cannot be read as one."""
    doc = parse_json(read_file(path, str(path), MAX_CACHE_BYTES), str(path), dict, max_bytes=MAX_CACHE_BYTES)
    if not isinstance(doc.get("runs"), dict):
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
        if os.path.lexists(self.path):
            try:
                doc = _read_cache(self.path)
            except (OSError, ValueError, RecursionError):  # InputError is a ValueError
                doc = {}
            if doc.get("fingerprint") == fingerprint:
                self.runs = doc["runs"]

    def weights(self, arm: str) -> Path:
        """Where ``arm``'s pretrained weights are kept."""
        return self.folder / f"pretrained-{arm}-{self.fingerprint}.pt"

    def report(self, arm: str) -> Path:
        """Where the key numbers of ``arm``'s data report are kept."""
        return self.folder / f"report-{arm}-{self.fingerprint}.json"

    def load_weights(self, arm: str) -> dict:
        """``arm``'s kept (or merged) pretrained weights: a regular file, loaded with
        ``weights_only`` (no code runs from it), of the shape :meth:`save_weights` writes."""
        import torch

        from ..inputs import check_regular_path

        path = self.weights(arm)
        fix = "remove it: the arm is then pretrained again"
        check_regular_path(path, str(path), fix)
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling problem is a bad input file
            raise InputError(f"{path} cannot be read ({type(exc).__name__}); {fix}") from None
        if not (isinstance(saved, dict) and isinstance(saved.get("state"), dict)
                and isinstance(saved.get("classes"), int)):
            raise InputError(f"{path} is not a study's pretrained weights; {fix}")
        return saved

    def save_weights(self, arm: str, saved: dict) -> None:
        import torch

        write_file(self.weights(arm), lambda f: torch.save(saved, f))

    def read_report(self, arm: str) -> dict | None:
        """The key numbers of ``arm``'s data report, if kept and of the right shape (else None:
        the report is made again)."""
        path = self.report(arm)
        if not os.path.lexists(path):
            return None
        try:
            doc = parse_json(read_file(path, str(path), MAX_CACHE_BYTES), str(path), dict)
        except InputError:
            return None
        if not all(_of_kind(doc.get(key), kind) for key, kind in _REPORT_KEYS.items()):
            return None
        return {k: doc[k] for k in _REPORT_KEYS}

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
    if not os.path.lexists(path):
        raise InputError(f"--merge {src}: no readable {path}; give the --out folder of another "
                         "'experiment transfer' run")
    try:
        doc = _read_cache(path)
    except (OSError, ValueError, RecursionError) as exc:
        why = str(exc).split("; ")[0] if isinstance(exc, InputError) else str(exc)
        raise InputError(f"--merge {src}: {path} is not a transfer-study cache ({why}); give the --out "
                         "folder of another 'experiment transfer' run") from None
    if doc.get("fingerprint") != fingerprint:
        raise ConfigError(f"--merge {src}: its runs were made with other per-run settings, target or version "
                          f"(fingerprint {doc.get('fingerprint')!r}, here {fingerprint!r}); merge only runs of "
                          "the same study")
    mine = RunCache(out / "cache", fingerprint)
    for key, value in doc["runs"].items():
        if key in mine.runs and mine.runs[key] != value:
            raise ConfigError(f"--merge {src}: run {key} has other numbers there than in {out}; the two "
                              "folders ran it with other code or in another environment (training is not "
                              "bit-reproducible across PyTorch versions or processors); merge folders that "
                              "split the study's cells instead of repeating them")
        mine.runs[key] = value
    mine.save()
    _copy_files(src, out, fingerprint)


def _copy_files(src: Path, out: Path, fingerprint: str) -> None:
    """``src``'s pretrained weights and data reports that ``out`` lacks: only regular files a
    study writes, each bounded (no link, FIFO, device or folder is followed or copied)."""
    from .arms import study_arms

    cache = src / "cache"
    for name in sorted(os.listdir(cache)):
        m = _CACHED.match(name)
        if m and (m.group(1) or m.group(2)) == fingerprint:
            limit = MAX_WEIGHTS_BYTES if name.endswith(".pt") else MAX_CACHE_BYTES
            _copy(cache / name, out / "cache" / name, limit)
    reports = src / "reports"
    if not reports.is_dir() or reports.is_symlink():
        return
    for arm in sorted(study_arms()):
        folder = reports / arm
        if folder.is_symlink() or not folder.is_dir() or os.path.lexists(out / "reports" / arm):
            continue
        for name in REPORT_FILES:
            if os.path.lexists(folder / name):
                (out / "reports" / arm).mkdir(parents=True, exist_ok=True)
                _copy(folder / name, out / "reports" / arm / name, MAX_REPORT_FILE_BYTES)


#: The cache files a study writes: ``pretrained-ARM-FP.pt`` and ``report-ARM-FP.json``.
_CACHED = re.compile(r"^(?:pretrained-[A-Za-z0-9_.+-]+-([0-9a-f]{16})\.pt"
                     r"|report-[A-Za-z0-9_.+-]+-([0-9a-f]{16})\.json)$")


def _copy(src: Path, dst: Path, limit: int) -> None:
    """Copy one regular file of at most ``limit`` bytes (else one line), unless ``dst`` exists."""
    if os.path.lexists(dst):
        return
    write_file(dst, read_file(src, f"--merge: {src}", limit, "it is not a file a transfer study writes; "
                                                              "remove it from the folder to merge"))
