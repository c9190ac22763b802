"""Chaos game, rescale and rasterisation kernels (CPU, numba).

The semantics are those of the original FractalDB renderer (SPEC 1.1-1.3):

* the chaos game starts at (0, 0), keeps it as the first point and uses one
  uniform per step, picking the first map whose cumulative probability is
  ``>= u``; if rounding leaves ``u`` above the last cumulative value no map
  matches and the point repeats, as in the original loop;
* NaN trimming deletes the 100 points before the first NaN (with NumPy's
  wrap-around for negative indices) and every NaN, first along x, then y;
* rescale is the original min-max formula with ``uint16`` truncation;
* a pixel index that the original would not define (NaN, inf, out of range)
  follows NumPy's x86-64 ``uint16`` cast in official mode and is skipped in
  modern mode; an index past the image (the original raises IndexError) is
  skipped: degenerate systems give a defined, near-empty image that the
  fill-rate gate rejects.

Every kernel here has a slow NumPy twin in ``tests/reference.py``.
"""

from __future__ import annotations

import numpy as np

from .._jit import kernel
# The keyed stream lives in fractaldb.kernels.random (shared by every family);
# re-exported here for the renderer and the tests.
from ..kernels.random import fill_uniform, patch_mask, splitmix64  # noqa: F401


@kernel
def select_maps(cum, u, idx):
    """``idx[i]`` = the first ``j`` with ``u[i] <= cum[j]`` (``len(cum)`` if none).

    ``cum`` is non-decreasing, so that index is the number of entries below
    ``u``: counted branch-free over a fixed 8 slots (unused slots hold 2.0,
    above every uniform) so the loop vectorises.
    """
    m = cum.shape[0]
    if m > 8:
        for i in range(idx.shape[0]):
            ui = u[i]
            j = 0
            for k in range(m):
                j += ui > cum[k]
            idx[i] = j
        return
    # Unused slots hold 2.0 (above every uniform); scalars, not an array, so
    # the kernel allocates nothing.
    c0 = cum[0]
    c1 = cum[1] if m > 1 else 2.0
    c2 = cum[2] if m > 2 else 2.0
    c3 = cum[3] if m > 3 else 2.0
    c4 = cum[4] if m > 4 else 2.0
    c5 = cum[5] if m > 5 else 2.0
    c6 = cum[6] if m > 6 else 2.0
    c7 = cum[7] if m > 7 else 2.0
    for i in range(idx.shape[0]):
        ui = u[i]
        j = 0  # an int accumulator: NumPy bools would add as logical or without the JIT
        j += ui > c0
        j += ui > c1
        j += ui > c2
        j += ui > c3
        j += ui > c4
        j += ui > c5
        j += ui > c6
        j += ui > c7
        idx[i] = j


@kernel
def chaos_game(maps, idx, xs, ys):
    """Iterate the IFS: ``xs[0] = ys[0] = 0``, then step ``i`` applies map ``idx[i]``.

    ``maps`` is ``(N, 6)`` rows (a, b, c, d, e, f); an index ``>= N`` (no map
    matched the uniform) repeats the previous point, as the original loop
    does.  ``len(idx) >= len(xs) - 1``.
    """
    n = xs.shape[0]
    m = maps.shape[0]
    x = 0.0
    y = 0.0
    xs[0] = x
    ys[0] = y
    for i in range(n - 1):
        j = idx[i]
        if j < m:
            # (x*a + y*b) + e: the original's evaluation order, no FMA.
            nx = x * maps[j, 0] + y * maps[j, 1] + maps[j, 4]
            ny = x * maps[j, 2] + y * maps[j, 3] + maps[j, 5]
            x = nx
            y = ny
        xs[i + 1] = x
        ys[i + 1] = y


@kernel
def has_nan(xs, ys, n):
    """Whether any of the first ``n`` points is NaN.

    A NaN coordinate makes both coordinates of every later point NaN
    (``0 * nan`` is nan), so the last point tells.
    """
    return n > 0 and (np.isnan(xs[n - 1]) or np.isnan(ys[n - 1]))


@kernel
def nan_prefix(first_x, first_y, n):
    """:func:`trim_nan`'s result length for a chaos game's points, in O(1).

    ``first_x`` / ``first_y``: the index of the first NaN of each axis (``n``:
    none).  In a chaos game a NaN coordinate stays NaN (``nan * a`` and
    ``nan + b`` are NaN, and a step without a map repeats the point), so each
    axis's NaNs are the suffix from its first one, and :func:`trim_nan` keeps
    a prefix: the x pass deletes the 100 points before ``first_x`` and the
    NaN suffix (everything when ``first_x < 100``: the deleted range then
    covers every index below ``first_x``), then the y pass does the same to
    what is left.  The GPU renderer trims this way without moving a point.
    """
    m = n
    if first_x < m:
        m = first_x - 100 if first_x >= 100 else 0
    if first_y < m:
        m = first_y - 100 if first_y >= 100 else 0
    return m


@kernel
def _trim_axis(vals, xs, ys, n, keep):
    first = -1
    for i in range(n):
        if np.isnan(vals[i]):
            first = i
            break
    if first < 0:
        return n
    for i in range(n):
        keep[i] = True
    # range(first - 100, first): negative indices wrap like np.delete's.
    for k in range(first - 100, first):
        idx = k if k >= 0 else k + n
        if idx >= 0:
            keep[idx] = False
    for i in range(first, n):
        if np.isnan(vals[i]):
            keep[i] = False
    w = 0
    for i in range(n):
        if keep[i]:
            xs[w] = xs[i]
            ys[w] = ys[i]
            w += 1
    return w


@kernel
def trim_nan(xs, ys, keep):
    """The original NaN trimming, in place; returns the new length."""
    if not has_nan(xs, ys, xs.shape[0]):
        return xs.shape[0]
    n = _trim_axis(xs, xs, ys, xs.shape[0], keep)
    return _trim_axis(ys, xs, ys, n, keep)


@kernel
def bounds(vals, n):
    """(min, max) of ``vals[:n]``; four accumulators so the loop is not one long
    dependency chain.  NaN-free input (after :func:`trim_nan`)."""
    l0 = l1 = l2 = l3 = np.inf
    h0 = h1 = h2 = h3 = -np.inf
    m = n - n % 4
    for i in range(0, m, 4):
        v0 = vals[i]
        v1 = vals[i + 1]
        v2 = vals[i + 2]
        v3 = vals[i + 3]
        l0 = v0 if v0 < l0 else l0
        h0 = v0 if v0 > h0 else h0
        l1 = v1 if v1 < l1 else l1
        h1 = v1 if v1 > h1 else h1
        l2 = v2 if v2 < l2 else l2
        h2 = v2 if v2 > h2 else h2
        l3 = v3 if v3 < l3 else l3
        h3 = v3 if v3 > h3 else h3
    for i in range(m, n):
        v0 = vals[i]
        l0 = v0 if v0 < l0 else l0
        h0 = v0 if v0 > h0 else h0
    return min(min(l0, l1), min(l2, l3)), max(max(h0, h1), max(h2, h3))


@kernel
def axis_transform(vals, n):
    """(shift, span) of the original min-max rescale along one axis.

    ``xs -= min(xs)`` happens only when min < 0; the shifted minimum is then
    exactly 0 and the shifted maximum ``hi - lo`` (rounding is monotone), so
    the span is ``hi - lo`` either way.
    """
    lo, hi = bounds(vals, n)
    return (lo if lo < 0.0 else 0.0), hi - lo


@kernel
def _rescale_axis(vals, n, size, pad, out, x86_cast):
    shift, span = axis_transform(vals, n)
    scale = np.float64(size - 2 * pad)
    fpad = np.float64(pad)
    if x86_cast:
        # The original's ``np.uint16(p)``: undefined in C for NaN, inf and
        # out-of-range values; on x86-64 NumPy truncates to int32 (NaN, inf
        # and |p| >= 2**31 give INT32_MIN) and keeps the low 16 bits.  The
        # published renders were made there, so compat mode does the same
        # (tests/test_kernels.py checks it against NumPy's own cast).
        for i in range(n):
            p = (vals[i] - shift) / span * scale + fpad
            ok = (p > -2147483649.0) & (p < 2147483648.0)
            out[i] = np.int32(np.int64(p if ok else 0.0) & 0xFFFF)
        return
    if span == 0.0:
        out[:n] = pad  # all points equal: the original divides 0 by 0; we define the pad
        return
    for i in range(n):  # branch-free body: vectorises
        p = (vals[i] - shift) / span * scale + fpad
        ok = (p >= 0.0) & (p < 65536.0)
        out[i] = np.int32(p if ok else -1.0)


@kernel
def rescale(xs, ys, n, width, height, pad, px, py, x86_cast=False):
    """Original min-max rescale of the first ``n`` points to pixel indices.

    ``x86_cast=False`` (modern mode) marks an index the original leaves
    undefined (NaN, inf, outside 0..65535) as -1, skipped by the rasterisers,
    and maps a zero span to the pad.  ``x86_cast=True`` (official mode)
    reproduces NumPy's ``uint16`` cast on x86-64 for those values instead.
    Indices past the image (where the original raises IndexError) are
    skipped by the rasterisers either way.
    """
    _rescale_axis(xs, n, width, pad, px, x86_cast)
    _rescale_axis(ys, n, height, pad, py, x86_cast)


@kernel
def _popcount64(v):
    v = v - ((v >> np.uint64(1)) & np.uint64(0x5555555555555555))
    v = (v & np.uint64(0x3333333333333333)) + ((v >> np.uint64(2)) & np.uint64(0x3333333333333333))
    v = (v + (v >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (v * np.uint64(0x0101010101010101)) >> np.uint64(56)


@kernel
def count_filled(px, py, n, width, height, bits):
    """Number of distinct pixels hit by the first ``n`` points.

    ``bits`` is a zeroed ``uint64`` bitmap of at least ``width * height`` bits
    (32 KiB at 512², so it stays in L1); it is zeroed again on return.
    """
    for i in range(n):
        x = px[i]
        y = py[i]
        if x >= 0 and y >= 0 and x < width and y < height:
            b = y * width + x
            bits[b >> 6] |= np.uint64(1) << np.uint64(b & 63)
    count = 0
    for k in range(bits.shape[0]):
        count += _popcount64(bits[k])
        bits[k] = 0
    return np.int64(count)


@kernel
def _points_gray(px, py, n, g, img):
    h, w = img.shape
    for i in range(n):
        x = px[i]
        y = py[i]
        if x >= 0 and y >= 0 and x < w and y < h:
            img[y, x] = g


@kernel
def _points_rgb(px, py, n, colors, img):
    h, w, _ = img.shape
    nc = colors.shape[0]
    for i in range(n):
        x = px[i]
        y = py[i]
        if x >= 0 and y >= 0 and x < w and y < h:
            ci = i % nc
            img[y, x, 0] = colors[ci, 0]
            img[y, x, 1] = colors[ci, 1]
            img[y, x, 2] = colors[ci, 2]


@kernel
def draw_points(px, py, n, colors, img):
    """Point mode: ``img[py, px, :] = colors[i % len(colors)]``.

    ``img`` is a C-contiguous ``(H, W, C)`` uint8 array, C = 1 (gray, one
    colour) or 3.  The two cases are separate loops: a loop over a run-time
    channel count stops LLVM unrolling the cell writes and costs ~6x.
    """
    if img.shape[2] == 1:
        _points_gray(px, py, n, colors[0, 0], img.reshape(img.shape[0], img.shape[1]))
    else:
        _points_rgb(px, py, n, colors, img)


@kernel
def _patches_gray(px, py, n, g, key, img):
    h, w = img.shape
    for i in range(n):
        x = px[i]
        y = py[i]
        if x < 0 or y < 0:
            continue
        mask = patch_mask(key, i)
        if x + 3 < w and y + 3 < h:  # interior: no clipping test per cell
            for r in range(3):
                for c in range(3):
                    img[y + 1 + r, x + 1 + c] = g * np.uint8((mask >> (8 - (3 * r + c))) & 1)
        else:
            for r in range(3):
                for c in range(3):
                    if y + 1 + r < h and x + 1 + c < w:
                        img[y + 1 + r, x + 1 + c] = g * np.uint8((mask >> (8 - (3 * r + c))) & 1)


@kernel
def _patches_rgb(px, py, n, colors, key, img):
    h, w, _ = img.shape
    nc = colors.shape[0]
    for i in range(n):
        x = px[i]
        y = py[i]
        if x < 0 or y < 0:
            continue
        mask = patch_mask(key, i)
        ci = i % nc
        for r in range(3):
            for c in range(3):
                if y + 1 + r < h and x + 1 + c < w:
                    on = np.uint8((mask >> (8 - (3 * r + c))) & 1)
                    img[y + 1 + r, x + 1 + c, 0] = colors[ci, 0] * on
                    img[y + 1 + r, x + 1 + c, 1] = colors[ci, 1] * on
                    img[y + 1 + r, x + 1 + c, 2] = colors[ci, 2] * on


@kernel
def draw_patches(px, py, n, colors, key, img):
    """3x3 patch mode with the original overwrite semantics.

    Point ``i`` pastes a 3x3 block whose top-left cell is at (x + 1, y + 1);
    cell (r, c) takes colour ``colors[i % len(colors)]`` when bit
    ``8 - (3 r + c)`` of its mask is set and black otherwise (zero cells
    overwrite too, so later points erase earlier pixels).  Cells outside the
    image are clipped, as PIL's ``paste`` does.  Masks come from the keyed
    stream (:func:`patch_mask`).  ``img`` as in :func:`draw_points`.
    """
    if img.shape[2] == 1:
        _patches_gray(px, py, n, colors[0, 0], key, img.reshape(img.shape[0], img.shape[1]))
    else:
        _patches_rgb(px, py, n, colors, key, img)


# --------------------------------------------------------------------------- last-writer patch raster
#
# Every patch draw of a (category, weight) block uses the same points; only
# the masks differ.  Under the sequential overwrite a cell shows what the
# *last* point covering it wrote, so the block finds once, per pixel, that
# point and the bit of its mask the pixel shows (:func:`patch_owners`); each
# draw then writes only those pixels (:func:`draw_owned`), instead of
# pasting every point's 3x3 patch.  Same pixels as :func:`draw_patches`
# (tests/test_kernels.py compares both with tests/reference.py).


@kernel
def _latest_at(px, py, n, grid):
    """``grid[y, x]`` = the largest index of a point at (x, y) that keeps a cell, else -1."""
    height, width = grid.shape
    grid[:, :] = -1
    for i in range(n):
        x = px[i]
        y = py[i]
        # Only a point with x <= width - 2 and y <= height - 2 keeps a cell.
        if x >= 0 and y >= 0 and x < width - 1 and y < height - 1:
            grid[y, x] = i


@kernel
def _last_writers(grid, best, cell):
    """``best[qy, qx]``: the largest index among the nine positions whose patch covers
    pixel (qx, qy) (-1: none); ``cell[qy, qx]``: its cell ``3 r + c``."""
    height, width = grid.shape
    best[0, :] = -1
    for qy in range(1, height):
        b0 = best[qy]
        cl0 = cell[qy]
        b0[:] = -1
        for r in range(min(3, qy)):
            row = grid[qy - 1 - r]
            for c in range(3):
                k = np.int32(3 * r + c)
                # Pixel qx = 1 + c + i reads position i: slices, so every index is a
                # loop counter (no wrap-around test) and the loop vectorises.
                src = row[: width - 1 - c]
                b = b0[1 + c:]
                cl = cl0[1 + c:]
                for i in range(width - 1 - c):
                    v = src[i]
                    bi = b[i]
                    b[i] = max(v, bi)
                    cl[i] = k if v > bi else cl[i]


@kernel
def _compact_owners(best, cell, pix, shift, slot, uniq, pos_slot):
    height, width = best.shape
    off = np.empty(9, dtype=np.int64)  # pixel minus writer position, per cell k = 3 r + c
    for k in range(9):
        off[k] = (1 + k // 3) * width + 1 + k % 3
    sentinel = width * height
    fb = best.reshape(best.size)
    fc = cell.reshape(cell.size)
    m = 0
    u = 0
    for q in range(width, width * height):
        # Branch-free: about half the pixels are covered, so a branch would
        # mispredict; an uncovered pixel's entries are overwritten by the next.
        o = fb[q]
        k = fc[q]
        owned = o >= 0
        p = q - off[k & 15] if owned else sentinel  # the writer's position (the sentinel stays -1)
        j = pos_slot[p]
        new = owned and j < 0
        j = u if new else j
        pos_slot[p] = j if owned else -1
        uniq[u] = o
        u += new
        pix[m] = q
        shift[m] = 8 - k
        slot[m] = j
        m += owned
    for i in range(m):  # hand the scratch back clean
        pos_slot[pix[i] - off[8 - shift[i]]] = -1
    return m, u


@kernel
def patch_owners(px, py, n, grids, pix, shift, slot, uniq, pos_slot):
    """Which point writes each pixel last in patch mode, and which mask bit it shows.

    Point ``i`` covers cells ``(x + 1 + c, y + 1 + r)``, ``r, c`` in 0..2; the
    last writer of a pixel is the largest index among the points whose 3x3
    footprint covers it.  ``grids`` is ``(3, height, width)`` int32 scratch:
    ``grids[0]`` first holds, per position, the largest index of a point there
    (later points overwrite earlier ones); each pixel then takes the largest
    of the nine positions that reach it (``grids[1]``) and its cell (``grids[2]``).

    Outputs, for the ``m`` covered pixels in raster order: ``pix[k]`` the flat
    pixel index, ``shift[k]`` the mask bit (``8 - (3 r + c)``), ``slot[k]`` an
    index into ``uniq``, the ``u`` distinct last writers (so each draw hashes
    each point's mask once).  ``pos_slot`` (``width * height + 1`` int32, all
    -1; indexed by a writer's position, so its look-ups stay near the pixel)
    is scratch, all -1 again on return.  ``pix``, ``shift``, ``slot`` need
    ``width * height`` entries, ``uniq`` ``min(n, width * height) + 1``.

    Returns:
        ``(m, u)``.
    """
    _latest_at(px, py, n, grids[0])
    _last_writers(grids[0], grids[1], grids[2])
    return _compact_owners(grids[1], grids[2], pix, shift, slot, uniq, pos_slot)


@kernel
def _owned_gray(pix, shift, slot, m, masks, g, img):
    for k in range(m):
        img[pix[k]] = g * np.uint8((masks[slot[k]] >> shift[k]) & 1)


@kernel
def _owned_rgb(pix, shift, slot, m, masks, uniq, colors, img):
    nc = colors.shape[0]
    for k in range(m):
        on = np.uint8((masks[slot[k]] >> shift[k]) & 1)
        ci = uniq[slot[k]] % nc
        p = 3 * pix[k]
        img[p] = colors[ci, 0] * on
        img[p + 1] = colors[ci, 1] * on
        img[p + 2] = colors[ci, 2] * on


@kernel
def draw_owned(pix, shift, slot, m, uniq, u, colors, key, masks, img):
    """One patch draw from :func:`patch_owners`' output: the same pixels as
    :func:`draw_patches` on ``img`` (pixels no patch reaches are left as they are).

    ``masks`` is ``uint16`` scratch of at least ``u`` entries; ``img`` a
    C-contiguous ``(H, W, C)`` uint8 array, C = 1 or 3.
    """
    for j in range(u):
        masks[j] = np.uint16(patch_mask(key, uniq[j]))
    flat = img.reshape(img.size)
    if img.shape[2] == 1:
        _owned_gray(pix, shift, slot, m, masks, colors[0, 0], flat)
    else:
        _owned_rgb(pix, shift, slot, m, masks, uniq, colors, flat)
