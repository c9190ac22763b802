"""The IFS model and the official category CSV format.

One category is an iterated function system: ``N`` affine maps
``w_i(x) = [[a b], [c d]] x + [e f]`` chosen with probabilities ``p_i``.  The
original stores it as one CSV per category, one row ``a,b,c,d,e,f,p`` per map,
written by ``np.savetxt(..., delimiter=',')`` (``%.18e``); :func:`read_csv`
and :func:`to_csv_bytes` read and write that format byte for byte.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .constants import MAX_MAPS
from ..errors import InputError
from ..folders import CATEGORIES, wrong_folder_hint

__all__ = ["IFS", "read_csv", "write_csv", "to_csv_bytes", "parse_csv", "load_categories"]

_PROB_TOLERANCE = 1e-6


@dataclass(frozen=True, eq=False)
class IFS:
    """An iterated function system.

    Attributes:
        maps: ``(N, 6)`` float64 array, one row ``a, b, c, d, e, f`` per map.
        probs: ``(N,)`` float64 selection probabilities (sum 1).

    Raises:
        InputError: on a shape other than ``(N, 6)`` with 1 <= N <= 32,
            non-finite values, negative probabilities or probabilities that
            do not sum to 1.
    """

    maps: np.ndarray
    probs: np.ndarray

    def __post_init__(self):
        maps = np.array(self.maps, dtype=np.float64, copy=True)
        probs = np.array(self.probs, dtype=np.float64, copy=True).reshape(-1)
        if maps.ndim != 2 or maps.shape[1] != 6:
            raise InputError(
                f"an IFS needs one row of 6 coefficients (a b c d e f) per map, got shape {maps.shape}"
            )
        n = maps.shape[0]
        if not 1 <= n <= MAX_MAPS:
            raise InputError(f"an IFS needs 1 to {MAX_MAPS} maps, got {n}")
        if probs.shape != (n,):
            raise InputError(f"an IFS needs one probability per map: {n} maps but {probs.size} probabilities")
        if not np.all(np.isfinite(maps)):
            raise InputError("IFS coefficients must be finite numbers; found NaN or inf")
        if not np.all(np.isfinite(probs)) or np.any(probs < 0):
            raise InputError("IFS probabilities must be finite and >= 0")
        with np.errstate(over="ignore", invalid="ignore"):  # a sum of huge values is inf: refused below
            total = float(probs.sum())
        if abs(total - 1.0) > _PROB_TOLERANCE:
            raise InputError(f"IFS probabilities must sum to 1, they sum to {total:.9g}; normalise them")
        maps.setflags(write=False)
        probs.setflags(write=False)
        object.__setattr__(self, "maps", maps)
        object.__setattr__(self, "probs", probs)

    @classmethod
    def from_rows(cls, rows) -> "IFS":
        """Build from ``(N, 7)`` rows ``a, b, c, d, e, f, p`` (the CSV layout)."""
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != 7:
            raise InputError(f"IFS rows need 7 columns (a,b,c,d,e,f,p), got shape {rows.shape}")
        return cls(rows[:, :6], rows[:, 6])

    @property
    def n_maps(self) -> int:
        return int(self.maps.shape[0])

    def rows(self) -> np.ndarray:
        """``(N, 7)`` rows ``a, b, c, d, e, f, p``."""
        return np.concatenate([self.maps, self.probs[:, None]], axis=1)

    def cumulative(self) -> np.ndarray:
        """Running sum of the probabilities, accumulated left to right as the
        original does (``cum += p``)."""
        out = np.empty_like(self.probs)
        s = 0.0
        for i, p in enumerate(self.probs.tolist()):
            s += p
            out[i] = s
        return out

    def weighted(self, factors) -> np.ndarray:
        """The maps with each coefficient multiplied by ``factors`` (6 values);
        probabilities are unchanged, as in the original renderer."""
        return self.maps * np.asarray(factors, dtype=np.float64)[None, :]

    def __eq__(self, other):
        if not isinstance(other, IFS):
            return NotImplemented
        return np.array_equal(self.maps, other.maps) and np.array_equal(self.probs, other.probs)

    def __hash__(self):
        return hash((self.maps.tobytes(), self.probs.tobytes()))

    def __repr__(self):
        return f"IFS(n_maps={self.n_maps})"


def to_csv_bytes(ifs: IFS) -> bytes:
    """The official CSV bytes (``np.savetxt(..., delimiter=',')``)."""
    buf = io.BytesIO()
    np.savetxt(buf, ifs.rows(), delimiter=",")
    return buf.getvalue()


def write_csv(ifs: IFS, path) -> None:
    """Write ``ifs`` to ``path`` whole (:func:`fractaldb.storage.write_file`: an exclusive,
    unpredictable temporary, then a rename; never through a link)."""
    from ..storage import write_file

    write_file(path, to_csv_bytes(ifs))


def parse_csv(text: str, name: str = "<csv>") -> IFS:
    """Parse the official CSV text; errors name the file and line."""
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(",")
        if len(fields) != 7:
            raise InputError(
                f"{name}: line {lineno} has {len(fields)} values, expected 7 (a,b,c,d,e,f,p)"
            )
        try:
            values = [float(f) for f in fields]
        except ValueError:
            raise InputError(f"{name}: line {lineno} is not 7 comma-separated numbers: {line[:60]!r}") from None
        if not all(math.isfinite(v) for v in values):
            raise InputError(f"{name}: line {lineno} contains NaN or inf; every coefficient must be finite")
        rows.append(values)
    if not rows:
        raise InputError(f"{name}: no maps found; a category CSV needs one line a,b,c,d,e,f,p per map")
    try:
        return IFS.from_rows(rows)
    except InputError as exc:
        raise InputError(f"{name}: {exc}") from None


#: Largest category CSV read (one holds a few short lines).
MAX_CSV_BYTES = 1 << 20


#: Byte-order marks a text editor may put first, by the encoding they announce.
_BOMS = ((b"\xef\xbb\xbf", "UTF-8"), (b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
         (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"))


def read_csv(path) -> IFS:
    """Read one category CSV: plain ASCII, as ``np.savetxt`` writes it (a file with a
    byte-order mark or other non-ASCII bytes is refused, saying which)."""
    from ..inputs import read_file

    path = Path(path)
    if not os.path.lexists(path):
        raise InputError(f"category file {path} does not exist; pass a CSV written by 'fractaldb search'")
    data = read_file(path, str(path), MAX_CSV_BYTES, "pass a CSV written by 'fractaldb search' (a few short lines)")
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            raise InputError(f"{path}: not a text CSV file as fractaldb reads them: it starts with a {encoding} "
                             "byte-order mark (BOM); save it as plain ASCII without the BOM (e.g. 'CSV', not "
                             "'CSV UTF-8', in a spreadsheet)")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a text CSV file (byte {exc.start} is not ASCII); category CSVs are plain "
                         "ASCII numbers a,b,c,d,e,f,p, one map per line") from None
    return parse_csv(text, str(path))


def load_categories(path) -> tuple:
    """Categories from a category folder (``00000.csv ...``) or one CSV file.

    Returns:
        ``(ids, systems)``: category numbers (from numeric file names, else
        the position in sorted order) and the :class:`IFS` of each.
    """
    path = Path(path)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == ".csv" and not p.name.startswith("."))
        if not files:
            raise InputError(wrong_folder_hint(path, CATEGORIES)
                             or f"{path} contains no .csv category files; run 'fractaldb search --out {path}' first")
    else:
        raise InputError(f"{path} does not exist; pass a category folder or a .csv file")
    systems = [read_csv(f) for f in files]
    stems = [f.stem for f in files]
    numeric = all(s.isascii() and s.isdigit() and len(s) <= 9 for s in stems)  # not '²', not 10**40
    if numeric and len(set(int(s) for s in stems)) == len(stems):
        ids = [int(s) for s in stems]
    else:
        ids = list(range(len(files)))
    return ids, systems


class Categories:
    """Fractal categories: their numbers (names and seeds) and systems, by class index."""

    def __init__(self, ids, systems):
        self.ids = [int(i) for i in ids]
        self.systems = list(systems)

    def __len__(self) -> int:
        return len(self.systems)

    def __getitem__(self, k):
        return self.ids[k], self.systems[k]
