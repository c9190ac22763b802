"""A small reader of IDX files (the MNIST / Fashion-MNIST format), gzipped or raw.

IDX: two zero bytes, a type code, the number of dimensions ``n``, then ``n``
big-endian 32-bit sizes and the data, row-major, big-endian.  Only what the
files could contain is trusted after it is checked: a bad magic, an unknown type
code, or a size that disagrees with the bytes present is an :class:`InputError`
naming the file.  Nothing is ever downloaded.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from .errors import InputError

__all__ = ["IDX_TYPES", "read_idx", "find_idx", "write_idx"]

#: IDX type code -> big-endian NumPy dtype.
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if data[:2] == b"\x1f\x8b":  # gzip magic
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise InputError(f"{path} is a damaged gzip file ({exc}); download or install it again") from None
    return data


def read_idx(path) -> np.ndarray:
    """The array in the IDX file ``path`` (``.gz`` or raw, told apart by content), native byte order.

    Raises:
        InputError: the file cannot be read, is not IDX, or is truncated or too long.
    """
    path = Path(path)
    data = _bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise InputError(f"{path} is not an IDX file (bad magic {data[:4].hex() or 'empty'}; expected "
                         "00 00 <type> <dims>); give the original train-/t10k- files")
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise InputError(f"{path} is not an IDX file (its header for {ndim} dimensions is cut short)")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(IDX_TYPES[data[2]])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise InputError(f"{path} holds {len(data)} bytes but its header {list(shape)} says {expected}; "
                         "the file is truncated or damaged, install it again")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def find_idx(folder, stem: str) -> Path | None:
    """``folder/stem.gz`` or ``folder/stem`` (the first that exists), else None."""
    for name in (f"{stem}.gz", stem):
        p = Path(folder) / name
        if p.is_file():
            return p
    return None


def write_idx(path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` as IDX (gzipped when ``compress`` or the name ends in ``.gz``); for tests and tools."""
    array = np.asarray(array)
    code = {np.dtype(v).newbyteorder("="): k for k, v in IDX_TYPES.items()}.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"IDX has no type for {array.dtype}")
    body = bytes([0, 0, code, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    body += array.astype(np.dtype(IDX_TYPES[code])).tobytes()
    path = Path(path)
    if compress or (compress is None and path.suffix == ".gz"):
        body = gzip.compress(body, mtime=0)
    path.write_bytes(body)
