"""The one validated path for what fractaldb reads and did not just write: files, images,
sample metadata, labels and small JSON documents.

Every reader of images and sample metadata -- ``report``, ``export``, ``preview``, the
transfer study's targets, the loaders, the fine-tuning ImageFolder -- goes through these
functions, so one check holds everywhere:

* **Files** (:func:`read_file`): regular files only -- a folder, a device, a FIFO (or a link
  to one) is refused after ``stat``, never opened, and the file is opened non-blocking and
  checked again with ``fstat`` -- and at most ``max_bytes``.
* **Images** (:func:`open_image`): at most :data:`MAX_IMAGE_BYTES`; the header is read and
  the pixel count bounded (:data:`MAX_IMAGE_PIXELS`, and the memory bound) *before* anything
  is decoded, so a decompression bomb is one line, not an allocation; a corrupt or truncated
  image is one line naming it.
* **JSON** (:func:`parse_json`): bounded in bytes and nesting, of the expected type.
* **Labels** (:func:`check_label`): integers, not booleans or text, in ``0..classes-1`` of
  the dataset's manifest; a ``.cls`` member is decimal ASCII digits.
* **Sample metadata** (:func:`sample_meta`): a bounded JSON object whose ``label`` is such a
  label and whose ``family`` (when present) is one of the dataset's.

Each problem is one :class:`~fractaldb.errors.InputError` naming the file (and sample) and
what to do.
"""

from __future__ import annotations

import io
import json
import os
import stat
import warnings

from .errors import InputError
from .safety import memory_budget

__all__ = ["ImageError", "MAX_IMAGE_BYTES", "MAX_IMAGE_PIXELS", "MAX_JSON_BYTES", "read_file", "open_image",
           "image_array", "image_size",
           "parse_json", "check_label", "sample_meta", "check_regular_path"]

#: Largest image file read (an uncompressed 8192 x 8192 RGBA image is 256 MiB).
MAX_IMAGE_BYTES = 1 << 28
#: Most pixels an image may have (PIL's own decompression-bomb threshold: 8-bit RGB of 256 MiB).
MAX_IMAGE_PIXELS = 1024 * 1024 * 1024 // 4 // 3
#: Largest JSON member or small JSON file read (a sample's ``.json`` is under a kilobyte).
MAX_JSON_BYTES = 1 << 20
_NOT_REGULAR = "is not a regular file (a folder, device, FIFO or a link to one)"


def check_regular_path(path, where: str | None = None, fix: str = "replace or remove it") -> int:
    """Size of the regular file ``path`` (links followed), refusing anything else unopened."""
    where = where or str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{where} does not exist") from None
    except OSError as exc:
        raise InputError(f"cannot read {where}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{where} {_NOT_REGULAR}; {fix}")
    return st.st_size


def read_file(path, where: str | None = None, max_bytes: int | None = None,
              fix: str = "replace or remove it") -> bytes:
    """The bytes of the regular file ``path``: at most ``max_bytes`` (by default the memory
    bound), refused unread when it is anything but a regular file or too large."""
    where = where or str(path)
    limit = memory_budget() if max_bytes is None else max_bytes
    size = check_regular_path(path, where, fix)
    if size > limit:
        raise InputError(f"{where} is {size} bytes, over the {limit} this read allows; {fix}")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InputError(f"cannot read {where}: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped for a FIFO since the stat
            raise InputError(f"{where} {_NOT_REGULAR}; {fix}")
        parts, n = [], 0
        while True:
            chunk = os.read(fd, min(1 << 24, limit + 1 - n))
            if not chunk:
                break
            parts.append(chunk)
            n += len(chunk)
            if n > limit:
                raise InputError(f"{where} is over the {limit} bytes this read allows; {fix}")
        return b"".join(parts)
    except OSError as exc:
        raise InputError(f"cannot read {where}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


class ImageError(InputError):
    """An image that cannot be read; ``reason`` says why in a few words (``OSError``,
    ``DecompressionBombError: ...``), for readers that word the line their own way."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def _bad_image(where: str, reason: str, fix: str) -> ImageError:
    return ImageError(f"{where} is not a readable image ({reason}); {fix}", reason)


_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, ZeroDivisionError, MemoryError)


def _image_bytes(src, where: str, fix: str) -> bytes:
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
        if len(data) > MAX_IMAGE_BYTES:
            raise InputError(f"{where} is {len(data)} bytes, over the {MAX_IMAGE_BYTES} an image may have; {fix}")
        return data
    return read_file(src, where, MAX_IMAGE_BYTES, fix)


_PNG = b"\x89PNG\r\n\x1a\n"


def _small_png(data: bytes, pil_limit) -> bool:
    """Whether ``data`` is a PNG whose header says it has at most :data:`MAX_IMAGE_PIXELS`
    pixels (and PIL's own threshold is not lower): PIL then has nothing to warn about."""
    if len(data) < 24 or data[:8] != _PNG or data[12:16] != b"IHDR":
        return False
    w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return w * h <= MAX_IMAGE_PIXELS and (pil_limit is None or MAX_IMAGE_PIXELS <= pil_limit)


def _open_checked(data: bytes, where: str, fix: str):
    """The image of ``data`` opened (its header read, nothing decoded), its size within the bound."""
    from PIL import Image

    try:
        if _small_png(data, Image.MAX_IMAGE_PIXELS):  # PIL cannot warn: skip the warnings machinery (hot path)
            im = Image.open(io.BytesIO(data))
        else:
            with warnings.catch_warnings():  # PIL warns (on stderr) between its threshold and twice it
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                im = Image.open(io.BytesIO(data))
    except _IMAGE_ERRORS + (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bad_image(where, type(exc).__name__, fix) from None
    w, h = im.size
    pixels = w * h
    if w <= 0 or h <= 0 or pixels > MAX_IMAGE_PIXELS or (pixels > 1 << 22 and pixels > memory_budget() // 4):
        im.close()
        limit = min(MAX_IMAGE_PIXELS, memory_budget() // 4)
        raise _bad_image(where, f"DecompressionBombError: {w}x{h} is over the {limit} pixels an image may have", fix)
    return im


def image_size(src, where: str, fix: str = "replace or remove it") -> tuple:
    """``(width, height)`` of the image ``src`` (bytes or a path) from its header alone,
    within the pixel bound: for readers that copy the bytes without decoding them."""
    with _open_checked(_image_bytes(src, where, fix), where, fix) as im:
        return im.size


def open_image(src, where: str, mode: str | None = None, fix: str = "replace or remove it"):
    """A decoded PIL image of ``src`` (bytes, or a path read with :func:`read_file`),
    converted to ``mode`` if given; its size is checked before it is decoded."""
    from PIL import Image

    im = _open_checked(_image_bytes(src, where, fix), where, fix)
    try:
        im.load()  # the size was checked when it was opened: PIL's bomb check is behind us
        return im.convert(mode) if mode is not None and im.mode != mode else im
    except _IMAGE_ERRORS + (Image.DecompressionBombError,) as exc:
        raise _bad_image(where, type(exc).__name__, fix) from None


def image_array(src, where: str, mode: str = "RGB", fix: str = "replace or remove it"):
    """:func:`open_image` as a NumPy array (``mode`` RGB by default)."""
    import numpy as np

    return np.array(open_image(src, where, mode, fix))


def parse_json(data: bytes, where: str, kind: type | None = None, max_bytes: int = MAX_JSON_BYTES,
               fix: str = "regenerate it"):
    """The JSON document ``data`` (bounded in bytes and nesting), of type ``kind`` if given."""
    if len(data) > max_bytes:
        raise InputError(f"{where} is {len(data)} bytes, over the {max_bytes} this JSON may have; {fix}")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise InputError(f"{where} is not valid JSON (or is nested too deeply); {fix}") from None
    if kind is not None and not isinstance(doc, kind):
        raise InputError(f"{where} is not a JSON {'object' if kind is dict else kind.__name__}; {fix}")
    return doc


def check_label(value, n_classes: int, where: str, fix: str = "regenerate the shard") -> int:
    """``value`` (an int, or a ``.cls`` member's bytes) as a label in ``0..n_classes-1``."""
    if isinstance(value, (bytes, bytearray)):
        text = bytes(value)
        if not (0 < len(text) <= 12 and text.isdigit() and text.isascii()):
            raise InputError(f"{where}: label {text[:20]!r} is not a decimal integer; {fix}")
        value = int(text)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{where}: label {value!r} is not an integer; {fix}")
    if not 0 <= value < n_classes:
        raise InputError(f"{where}: label {value} is outside the manifest's classes 0..{n_classes - 1}; {fix}")
    return value


def sample_meta(data: bytes, where: str, n_classes: int, families=None, fix: str = "regenerate the shard") -> dict:
    """A sample's ``.json`` member: a bounded JSON object with a valid ``label`` (and, when
    it names one, a ``family`` among ``families``)."""
    meta = parse_json(data, where, dict, fix=fix)
    if "label" not in meta:
        raise InputError(f"{where} has no label; {fix}")
    check_label(meta["label"], n_classes, where, fix)
    if "family" in meta and families is not None and meta["family"] not in families:
        raise InputError(f"{where} names the family {str(meta['family'])[:40]!r}, not one of the dataset's "
                         f"({', '.join(families)}); {fix}")
    return meta
