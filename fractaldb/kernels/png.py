"""Row packing for the palette PNGs of :mod:`fractaldb.encode` (CPU, numba, no GIL).

A gray image with few distinct values is stored as an indexed-colour PNG
whose palette holds those values as gray triples: 1 bit per pixel for two
values, 2 or 4 bits for up to 4 or 16.  These kernels turn a C-contiguous
raster -- read as it is, or flipped top-bottom and/or left-right, so the flips
of one raster need no copies -- into PNG rows: a filter byte (0, None) and the
packed indices, most significant bits first, the last byte of a row padded
with zero bits (PNG specification, sections 7.2 and 9.2).  tests/test_encode.py
compares each with a slow twin.
"""

from __future__ import annotations

import numpy as np

from .._jit import kernel

__all__ = ["bilevel", "bit_rows", "gray_levels", "indexed_rows"]

@kernel
def bilevel(flat):
    """The maximum of ``flat`` (1-D uint8) when every value is 0 or that maximum, else -1.

    Two branch-free passes (a max, then an any), each vectorised.
    """
    hi = np.uint8(0)
    for i in range(flat.shape[0]):
        v = flat[i]
        hi = v if v > hi else hi
    bad = False
    for i in range(flat.shape[0]):
        v = flat[i]
        bad |= (v != 0) & (v != hi)
    return -1 if bad else np.int64(hi)


@kernel
def _window_le(bits, s, lo):
    """Bits ``s .. s + 7`` of the little-endian bit string ``bits`` (bit ``i`` is
    bit ``i % 8`` of byte ``i // 8``), bit ``s`` lowest; bits before ``lo`` read as 0."""
    out = 0
    for k in range(8):
        i = s + k
        if i >= lo:
            out |= ((np.int64(bits[i >> 3]) >> (i & 7)) & 1) << k
    return out


@kernel
def bit_rows(bits, h, w, flip_rows, flip_cols, rows):
    """1-bit PNG rows of an ``(h, w)`` raster from ``np.packbits`` of it, flattened.

    ``bits`` is that bit string plus one zero byte: packed with
    ``bitorder="big"`` (pixel ``i`` at bit ``7 - i % 8`` of byte ``i // 8``)
    when reading rows left to right, ``bitorder="little"`` (bit ``i % 8``) when
    ``flip_cols`` reads them right to left; ``rows``: ``(h, 1 + ceil(w / 8))``.
    Row ``y`` of the output is source row ``h - 1 - y`` when ``flip_rows``.  A
    row starts at any bit, so each output byte joins two neighbouring input
    bytes (one shift per row).
    """
    nb = (w + 7) // 8
    tail = 8 * nb - w  # zero pad bits of the last byte
    keep = (0xFF << tail) & 0xFF
    for y in range(h):
        src = h - 1 - y if flip_rows else y
        start = src * w
        out = rows[y]
        out[0] = 0
        if flip_cols:
            # Output byte j (most significant bit first) holds pixels end-1-8j down to
            # end-8-8j: in the little-endian string, bits s .. s+7 from s = end-8-8j up.
            s0 = start + w - 8
            r = s0 & 7
            first = s0 - 8 * (nb - 2)  # the lowest of the bytes inside the row
            seg = bits[first >> 3:]
            for j in range(nb - 1):
                k = np.uint64(nb - 2 - j)  # unsigned: no wrap-around test
                out[1 + j] = (((np.int64(seg[k + np.uint64(1)]) << 8) | np.int64(seg[k])) >> r) & 0xFF
            out[nb] = _window_le(bits, s0 - 8 * (nb - 1), start)
        else:
            r = start & 7
            seg = bits[start >> 3:]
            for j in range(nb):
                out[1 + j] = ((np.int64(seg[j]) << r) | (np.int64(seg[j + 1]) >> (8 - r))) & 0xFF
            out[nb] &= keep


@kernel
def gray_levels(img, limit, lut, palette):
    """The distinct values of ``img`` (2-D uint8, any layout), if at most ``limit``.

    ``palette`` receives them in increasing order and ``lut[v]`` the index of
    value ``v`` in it (``lut``: 256 entries).  Stops at the first value past
    ``limit`` and returns -1; else returns their number.
    """
    seen = np.zeros(256, dtype=np.uint8)
    n = 0
    h, w = img.shape
    for y in range(h):
        for x in range(w):
            v = img[y, x]
            if seen[v] == 0:
                seen[v] = 1
                n += 1
                if n > limit:
                    return -1
    k = 0
    for v in range(256):
        if seen[v]:
            lut[v] = k
            palette[k] = v
            k += 1
    return n


@kernel
def indexed_rows(img, flip_rows, flip_cols, lut, depth, rows):
    """Rows of ``lut[pixel]`` at ``depth`` (1, 2 or 4) bits per pixel, flipped as
    :func:`bit_rows` does; ``img`` ``(h, w)`` uint8."""
    h, w = img.shape
    per = 8 // depth
    nb = (w + per - 1) // per
    for y in range(h):
        src = h - 1 - y if flip_rows else y
        out = rows[y]
        out[0] = 0
        for j in range(nb):
            b = 0
            for k in range(per):
                x = j * per + k
                idx = 0
                if x < w:
                    idx = lut[img[src, w - 1 - x] if flip_cols else img[src, x]]
                b = (b << depth) | idx
            out[1 + j] = np.uint8(b)
