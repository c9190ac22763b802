"""What keeps hostile input and faults harmless: plain names, our own temporaries,
and upper bounds derived from this machine's memory.

* **Names.** Every name that a manifest or a preset turns into a path must be a
  plain file name (:func:`check_plain_name`), so nothing is ever written or
  read outside the dataset folder.  A dataset's name (:func:`dataset_name_ok`) is
  letters, digits, ``-`` and ``_`` and short enough that every file named after it
  fits a file system: the card, ``data_files``, Energon's and DALI's indexes quote it
  as it is.
* **Temporaries.** Ours are named ``.fractaldb-tmp-<32 random hex digits>...``
  (:func:`temp_name`), created exclusively, and only names matching
  :data:`TEMP_RE` are ever cleaned up: a user's ``.env.tmp-backup`` is not ours.
* **Bounds.** A size or count a user can set (points, image sides, patches,
  instances, ...) is bounded by what it would allocate: at most
  :func:`memory_budget` bytes (half the physical memory, or
  ``FRACTALDB_MEMORY_GB``).  :func:`check_bound` is called on every value a
  preset, ``--set``, a manifest or a command-line option gives
  (:func:`fractaldb.families.base.coerce`), and the error names the bound.
"""

from __future__ import annotations

import os
import re
import uuid

from .errors import ConfigError, InputError

__all__ = ["TEMP_PREFIX", "TEMP_RE", "temp_name", "is_temp_name", "check_plain_name", "dataset_name_ok",
           "MAX_NAME_BYTES", "memory_budget",
           "check_bound", "check_bytes", "BYTES_PER_UNIT", "MAX_COUNT", "gib", "max_workers", "check_workers"]

#: Prefix of every temporary file or folder fractaldb creates.
TEMP_PREFIX = ".fractaldb-tmp-"
#: The names :func:`temp_name` makes (and the only ones a cleanup removes).
TEMP_RE = re.compile(r"^\.fractaldb-tmp-[0-9a-f]{32}(-[A-Za-z0-9._-]+)?$")


def temp_name(base: str = "") -> str:
    """An unpredictable temporary name (create it exclusively), optionally ending ``-base``."""
    tail = f"-{base}" if base and re.fullmatch(r"[A-Za-z0-9._-]+", base) else ""
    return f"{TEMP_PREFIX}{uuid.uuid4().hex}{tail}"


def is_temp_name(name: str) -> bool:
    """Whether ``name`` (a base name) is one :func:`temp_name` makes."""
    return bool(TEMP_RE.match(name))


def check_plain_name(name, what: str, source: str) -> str:
    """``name`` if it is a plain file name (no folder part, not hidden, printable), else :class:`InputError`."""
    if (not isinstance(name, str) or not name or len(name) > 255 or name in (".", "..") or name.startswith(".")
            or any(c in name for c in "/\\:") or not name.isprintable()):
        raise InputError(f"{what} {name!r} in {source} is not a plain file name; the file was edited or "
                         "is not a fractaldb output, regenerate it")
    return name


#: Longest dataset name, in UTF-8 bytes: ``<name>-<shard index>.tar.idx`` (the longest file
#: named after it, with a 10-digit index) stays within a file system's 255 bytes.
MAX_NAME_BYTES = 200


def dataset_name_ok(name) -> bool:
    """Whether ``name`` may name a dataset: letters, digits, ``-`` and ``_`` (no space, no
    path, glob, Markdown or YAML punctuation), at most :data:`MAX_NAME_BYTES` bytes."""
    return (isinstance(name, str) and bool(name) and all(c.isalnum() or c in "-_" for c in name)
            and len(name.encode("utf-8", "surrogatepass")) <= MAX_NAME_BYTES)


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def memory_budget() -> int:
    """Bytes one setting may make fractaldb allocate: half the physical memory
    (``FRACTALDB_MEMORY_GB`` overrides it, e.g. for a shared machine)."""
    env = os.environ.get("FRACTALDB_MEMORY_GB", "").strip()
    if env:
        try:
            return max(1, int(float(env) * 2**30))
        except ValueError:
            raise ConfigError(f"FRACTALDB_MEMORY_GB must be a number of GiB, got {env!r}") from None
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        total = 16 * 2**30
    return total // 2


#: Bytes one unit of a setting costs (per worker), by key name; image sides cost
#: per pixel (quadratic).  What the renderers and searches allocate, rounded up.
BYTES_PER_UNIT = {
    "points": 64,            # chaos-game scratch: coordinates, indices, random words
    "search_points": 64,
    "max_attempts": 1,       # a loop bound: its cost is time, bounded as a count
}
#: Image sides: bytes per pixel of the buffers one image needs (RGB, float scratch).
BYTES_PER_PIXEL = {"image_size": 32, "size": 32, "render_size": 32}
#: Counts with no allocation of their own still get a bound (a plan is O(count)).
MAX_COUNT = 2**31 - 1


def check_bytes(what: str, nbytes: int, fix: str) -> None:
    """:class:`ConfigError` when ``nbytes`` exceeds :func:`memory_budget`."""
    budget = memory_budget()
    if nbytes > budget:
        raise ConfigError(f"{what} would need {gib(nbytes)} of memory, over the bound of {gib(budget)} "
                          f"(half this machine's memory; FRACTALDB_MEMORY_GB sets it); {fix}")


def check_bound(key: str, value, where: str) -> None:
    """Upper bound of one integer setting named ``key`` (see :data:`BYTES_PER_UNIT`)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return
    if value > MAX_COUNT:
        raise ConfigError(f"{where} must be at most {MAX_COUNT}, got {value}")
    if key in BYTES_PER_UNIT:
        check_bytes(f"{where}={value}", value * BYTES_PER_UNIT[key], f"lower {where}")
    elif key in BYTES_PER_PIXEL:
        check_bytes(f"{where}={value}", value * value * BYTES_PER_PIXEL[key], f"lower {where}")


def max_workers() -> int:
    """Most worker threads (or processes) a command may start: 8 per core, at least 64
    (each holds its own scratch buffers; a typo such as 100000 would exhaust memory)."""
    return max(64, 8 * (os.cpu_count() or 1))


def check_workers(value, where: str = "workers") -> None:
    """:class:`ConfigError` unless ``value`` is an integer in 1..:func:`max_workers`."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{where} must be a positive integer, got {value!r}")
    if value > max_workers():
        raise ConfigError(f"{where} must be at most {max_workers()} (8 per core of this machine), got {value}")
