"""Image encoding: a small, fast, deterministic PNG writer.

Fractal rasters are mostly black; PNG with the ``None`` row filter and
deflate level 1 compresses them well.  Deflate is ISA-L's (``isal``, a
dependency): 4x faster than zlib at level 1 with smaller files, so encoding
stops dominating the pipeline.  The bytes depend only on the pixels and the
deflate code that runs (recorded as :data:`DEFLATE`), so the same image always
encodes to the same file.  ISA-L picks its level-1 match finder at run time:
its x86 assembly (any CPU with SSE4.2) gives the canonical bytes, its portable
C fallback other, equally valid, bytes; :data:`DEFLATE` tells them apart
(:func:`deflate_id`, docs/reproducibility.md).  Gray images are written as
8-bit grayscale (``L``): every reader that converts to RGB (torchvision's
ImageFolder loader does) gets exactly the original's RGB pixels, at a third of
the encode cost.

Two PNG writers exist, named by a dataset's ``encoder`` key and recorded in
its manifest (:data:`ENCODERS`):

``png1``
    every image as 8-bit grayscale or RGB (:func:`encode_png`): what every
    dataset written before fractaldb 0.3 holds, so a manifest without an
    ``encoder`` means ``png1`` and regenerates with it, byte for byte.
``png2`` (the default)
    a gray image with at most 16 distinct values (a gray fractal holds two:
    black and its gray) as an indexed-colour PNG of 1, 2 or 4 bits per pixel
    whose palette is those values as gray triples, sorted; every other image
    exactly as ``png1`` (:func:`encode_png2`).  Read as RGB or L -- Pillow's
    ``convert``, torchvision's ImageFolder loader, timm, webdataset's
    ``decode("pil")``, Hugging Face ``datasets`` followed by ``convert`` --
    it gives the very pixels ``png1`` gives (tests/test_encode.py); the
    deflate input is 8 times smaller for a two-valued image, so it encodes
    about 3x faster and the files are ~40 % smaller.  A reader that looks at
    the raw ``P``-mode image without converting sees palette indices instead.
"""

from __future__ import annotations

import functools
import hashlib
import io
import struct
import threading
import zlib

import numpy as np

from .errors import ConfigError
from .kernels import png as _png

try:  # ISA-L deflate: 4x faster than zlib at level 1 and smaller output.
    from isal import isal_zlib as _deflate

    _LIBRARY = "isal"
except ImportError:  # pragma: no cover - isal is a dependency; zlib is the fallback
    _deflate = zlib
    _LIBRARY = "zlib"

__all__ = ["encode_png", "encode_png2", "encode_image", "FORMATS", "FORMAT_NOTES", "DEFLATE", "deflate_id", "ENCODERS",
           "DEFAULT_ENCODER", "LEGACY_ENCODER", "ONE_MODE", "check_encoder"]

#: sha256 of ISA-L's level-1 stream of :func:`_probe_rows`, as its x86 assembly
#: writes it (python-isal 1.6.1 to 1.9.1, SSE4.2, AVX and AVX2 code paths
#: alike): the bytes every fractaldb dataset so far was written with.
CANONICAL_PROBE_SHA256 = "aeabe138234da4daf3a48e88c7c25b38998588f47614127f9be68a70a8db6660"

FORMATS = ("png", "jpg", "webp")
#: What each stored format keeps, in words (the dataset card and the size estimate say it).
FORMAT_NOTES = {"png": "PNG, lossless", "jpg": "JPEG quality 90, lossy", "webp": "WebP quality 90, lossy"}
#: The PNG writers (see the module's text); a dataset names one (its ``encoder`` key).
ENCODERS = ("png1", "png2", "png3")
#: What new datasets use.
DEFAULT_ENCODER = "png3"
#: Encoders that store every image of a dataset in one mode (see :func:`encode_image`).
ONE_MODE = ("png3",)
#: What a manifest that names no encoder was written with (fractaldb < 0.3).
LEGACY_ENCODER = "png1"
_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _probe_rows() -> bytes:
    """Filtered rows of a fixed 64x64 test card: black, a lattice, a ramp and hashed noise.

    Small, but with long matches, short matches and literals, so a match finder
    that differs from the canonical one gives other bytes here too.
    """
    y, x = np.mgrid[0:64, 0:64].astype(np.uint32)
    img = np.where((x % 9 == 0) | (y % 7 == 0), 255, 0).astype(np.uint32)
    img[8:40, 8:40] = ((x + 2 * y) * 5 % 256)[8:40, 8:40]
    noise = ((x * 73856093) ^ (y * 19349663)) * 2654435761 >> 24
    img[36:60, 20:60] = (noise & 0xE0)[36:60, 20:60]
    rows = np.zeros((64, 65), dtype=np.uint8)
    rows[:, 1:] = img
    return rows.tobytes()


def deflate_id(compress=None, library: str | None = None) -> str:
    """Name of the deflate code that ``compress(data, 1)`` runs, as recorded in manifests.

    ``"isal"`` when it writes the canonical bytes (ISA-L's x86 assembly match
    finder), ``"zlib"`` for the zlib fallback, otherwise ``"isal-"`` plus the
    first 12 hex digits of its probe digest: ISA-L's portable C match finder
    (a CPU or virtual machine without SSE4.2, a build without the assembly)
    writes other, equally valid, deflate streams for the same pixels, so its
    datasets must not be mixed with canonical ones.
    """
    compress = _deflate.compress if compress is None else compress
    library = _LIBRARY if library is None else library
    if library != "isal":
        return library
    digest = hashlib.sha256(compress(_probe_rows(), 1)).hexdigest()
    return "isal" if digest == CANONICAL_PROBE_SHA256 else f"isal-{digest[:12]}"


#: The deflate code this process runs (see :func:`deflate_id`); part of the
#: versions a manifest records, so ``--resume`` and ``regenerate`` refuse to
#: mix streams from different match finders.
DEFLATE = deflate_id()

_SCRATCH = threading.local()


def _rows_buffer(h: int, row: int) -> np.ndarray:
    """A per-thread buffer for the filtered rows (reused: no 100 kB allocation per image)."""
    buf = getattr(_SCRATCH, "rows", None)
    if buf is None or buf.size < h * (1 + row):
        buf = _SCRATCH.rows = np.empty(h * (1 + row), dtype=np.uint8)
    return buf[: h * (1 + row)].reshape(h, 1 + row)


def encode_png(img: np.ndarray, level: int = 1) -> bytes:
    """PNG bytes of a ``uint8`` image ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``."""
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    h, w = img.shape[:2]
    color_type = 0 if img.ndim == 2 else 2
    rows = _rows_buffer(h, img[0].size)
    rows[:, 0] = 0  # filter type None on every row
    rows[:, 1:] = img.reshape(h, -1)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    return b"".join((
        _SIGNATURE,
        _chunk(b"IHDR", ihdr),
        _chunk(b"IDAT", _deflate.compress(rows, level)),
        _chunk(b"IEND", b""),
    ))


def _bit_buffer(n: int) -> np.ndarray:
    """A per-thread scratch of ``n`` bytes for ``np.packbits`` output plus a zero byte."""
    buf = getattr(_SCRATCH, "bits", None)
    if buf is None or buf.size < n + 1:
        buf = _SCRATCH.bits = np.empty(n + 1, dtype=np.uint8)
    return buf[: n + 1]


def _unflipped(img: np.ndarray):
    """``(base, flip_rows, flip_cols)`` with ``img`` = ``base`` read upside down and/or
    mirrored and ``base`` C-contiguous (a copy only when strides allow nothing else)."""
    flip_rows = img.strides[0] < 0
    flip_cols = img.strides[1] < 0
    base = img[::-1] if flip_rows else img
    base = base[:, ::-1] if flip_cols else base
    if not base.flags.c_contiguous:
        return np.ascontiguousarray(img), False, False
    return base, flip_rows, flip_cols


@functools.lru_cache(maxsize=4096)
def _palette_head(w: int, h: int, depth: int, levels: tuple) -> bytes:
    """Signature, IHDR and PLTE of an indexed PNG (cached: a dataset has few of them)."""
    plte = b"".join(bytes((v, v, v)) for v in levels)
    return _SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, 3, 0, 0, 0)) + _chunk(b"PLTE", plte)


_IDAT_CRC = zlib.crc32(b"IDAT")
_IEND = _chunk(b"IEND", b"")


def _palette_png(rows: np.ndarray, w: int, h: int, depth: int, levels: tuple) -> bytes:
    data = _deflate.compress(rows, 1)
    return b"".join((_palette_head(w, h, depth, levels), struct.pack(">I", len(data)), b"IDAT", data,
                     struct.pack(">I", zlib.crc32(data, _IDAT_CRC)), _IEND))


def encode_png2(img: np.ndarray) -> bytes:
    """PNG bytes of a ``uint8`` image as the ``png2`` encoder writes them.

    A gray image (``(H, W)`` or ``(H, W, 1)``) with at most 16 distinct
    values: an indexed-colour PNG.  Values 0 and one other (the fractals'
    case, found by two vectorised passes): 1 bit per pixel, palette 0 and that
    value (one entry, 0, for an all-black image).  Otherwise 1, 2 or 4 bits for
    up to 2, 4 or 16 values, palette: the values, increasing.  Anything else: :func:`encode_png`.  A
    view of a C-contiguous raster flipped by strides (negative row and/or
    column step) is read without a copy.
    """
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim != 2:
        return encode_png(img)
    h, w = img.shape
    base, flip_rows, flip_cols = _unflipped(img)
    flat = base.reshape(-1)
    hi = _png.bilevel(flat)
    if hi >= 0:
        bits = _bit_buffer((flat.size + 7) // 8)
        bits[:-1] = np.packbits(flat, bitorder="little" if flip_cols else "big")
        bits[-1] = 0
        rows = _rows_buffer(h, (w + 7) // 8)
        _png.bit_rows(bits, h, w, flip_rows, flip_cols, rows)
        return _palette_png(rows, w, h, 1, (0, hi) if hi else (0,))
    lut = np.zeros(256, dtype=np.uint8)
    levels = np.zeros(16, dtype=np.uint8)
    n = _png.gray_levels(base, 16, lut, levels)
    if n < 0:
        return encode_png(img)
    depth = 1 if n <= 2 else 2 if n <= 4 else 4
    rows = _rows_buffer(h, (w * depth + 7) // 8)
    _png.indexed_rows(base, flip_rows, flip_cols, lut, depth, rows)
    return _palette_png(rows, w, h, depth, tuple(levels[:n].tolist()))


_WRITERS = {"png1": encode_png, "png2": encode_png2, "png3": encode_png}


def check_encoder(name) -> str:
    """``name`` if it is a known PNG encoder, else :class:`~fractaldb.errors.ConfigError`."""
    if name not in _WRITERS:
        raise ConfigError(f"unknown encoder {name!r}; choose one of {', '.join(ENCODERS)}")
    return name


def encode_image(img: np.ndarray, fmt: str = "png", quality: int = 90, encoder: str = LEGACY_ENCODER,
                 channels: int | None = None) -> bytes:
    """Encode with our PNG writer ``encoder`` (:data:`ENCODERS`), or Pillow for ``jpg`` / ``webp``.

    ``channels``: the dataset's image mode (1 gray, 3 colour).  Encoders of
    :data:`ONE_MODE` store a gray image of a colour dataset as RGB (its level
    in each channel); the others store every image as rendered."""
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if channels == 3 and img.ndim == 2 and encoder in ONE_MODE:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if fmt == "png":
        return _WRITERS[encoder](img)
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG" if fmt == "jpg" else "WEBP", quality=quality)
    return buf.getvalue()
