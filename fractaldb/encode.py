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
"""

from __future__ import annotations

import hashlib
import io
import struct
import threading
import zlib

import numpy as np

try:  # ISA-L deflate: 4x faster than zlib at level 1 and smaller output.
    from isal import isal_zlib as _deflate

    _LIBRARY = "isal"
except ImportError:  # pragma: no cover - isal is a dependency; zlib is the fallback
    _deflate = zlib
    _LIBRARY = "zlib"

__all__ = ["encode_png", "encode_image", "FORMATS", "DEFLATE", "deflate_id"]

#: sha256 of ISA-L's level-1 stream of :func:`_probe_rows`, as its x86 assembly
#: writes it (python-isal 1.6.1 to 1.9.1, SSE4.2, AVX and AVX2 code paths
#: alike): the bytes every fractaldb dataset so far was written with.
CANONICAL_PROBE_SHA256 = "aeabe138234da4daf3a48e88c7c25b38998588f47614127f9be68a70a8db6660"

FORMATS = ("png", "jpg", "webp")
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


def encode_image(img: np.ndarray, fmt: str = "png", quality: int = 90) -> bytes:
    """Encode with our PNG writer, or Pillow for ``jpg`` / ``webp``."""
    if fmt == "png":
        return encode_png(img)
    from PIL import Image

    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG" if fmt == "jpg" else "WEBP", quality=quality)
    return buf.getvalue()
