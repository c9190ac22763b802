"""Slow, obviously correct references for the numba kernels.

Every function here is written the plain way, loops included, following the
original FractalDB code (SPEC 1.1-1.3) line by line where there is one.  They
are the "truth" side of ``tests/test_kernels.py``; speed does not matter.

Where the original is undefined, the references use our documented
definitions (and say so at the spot):

* a pixel value that is NaN, infinite or outside ``[0, 65536)`` (the original
  casts it with ``np.uint16``, which is undefined there) becomes ``-1``, an
  "undefined point" that the rasterisers skip;
* a zero span (all points equal along an axis; the original divides 0 by 0)
  puts every point at ``pad``;
* NaN trimming indices that ``np.delete`` would reject as out of bounds (the
  original raises ``IndexError`` when fewer than 100 points precede a NaN and
  wrap-around runs past the start) are dropped;
* rescaling no points (trimming deleted them all) gives no pixels.

The legacy MT19937 kernels have no reference of their own here: NumPy's
``RandomState`` *is* the reference, and the helpers below only convert its
state to the kernels' ``uint32[625]`` layout.
"""

from __future__ import annotations

import numpy as np

from fractaldb.ifs.kernels import patch_mask as kernel_patch_mask

# --------------------------------------------------------------------------
# Legacy MT19937 (np.random.RandomState is the reference)
# --------------------------------------------------------------------------


def state_array(rs: np.random.RandomState) -> np.ndarray:
    """A ``RandomState``'s generator state in the kernels' layout.

    Args:
        rs: The generator.

    Returns:
        ``uint32[625]``: the 624 key words, then the position of the next word.
    """
    _, key, pos, _, _ = rs.get_state(legacy=True)
    out = np.empty(625, dtype=np.uint32)
    out[:624] = key
    out[624] = pos
    return out


def draw_words(rs: np.random.RandomState, n: int) -> np.ndarray:
    """The next ``n`` raw tempered 32-bit words of ``rs``.

    NumPy's legacy bounded-integer path returns ``next_uint32()`` unchanged
    when the range is the full 32 bits, one word per value, so this is the
    raw MT19937 output.

    Args:
        rs: The generator (advanced by ``n`` words).
        n: How many words.

    Returns:
        ``uint32[n]``.
    """
    return rs.randint(0, 2**32, size=n, dtype=np.uint32)


# --------------------------------------------------------------------------
# splitmix64 (counter-based stream for patch masks and modern uniforms)
# --------------------------------------------------------------------------

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB


def splitmix64(key: int, counter: int) -> int:
    """Draw ``counter`` of the splitmix64 stream keyed by ``key``.

    Python integers masked to 64 bits, so no fixed-width type can get in the way.

    Args:
        key: The stream key, ``0 <= key < 2**64``.
        counter: The draw index, ``>= 0``.

    Returns:
        The 64-bit output as a Python int.
    """
    z = (int(key) + (int(counter) + 1) * GOLDEN) & MASK64
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    return z ^ (z >> 31)


def patch_mask(key: int, counter: int) -> int:
    """A 9-bit patch mask in 1..511: multiply-shift of the high 32 bits.

    Args:
        key: The stream key.
        counter: The point index.

    Returns:
        The mask, ``1 <= mask <= 511``.
    """
    hi = splitmix64(key, counter) >> 32
    return 1 + ((hi * 511) >> 32)


def fill_uniform(key: int, n: int) -> np.ndarray:
    """``n`` uniforms in [0, 1): the top 53 bits of each draw over 2**53.

    Args:
        key: The stream key.
        n: How many.

    Returns:
        ``float64[n]``.
    """
    out = np.empty(n, dtype=np.float64)
    for i in range(n):
        # An int below 2**53 divided by a power of two is exact in float64.
        out[i] = (splitmix64(key, i) >> 11) / 9007199254740992.0
    return out


# --------------------------------------------------------------------------
# Chaos game (SPEC 1.1 step 3)
# --------------------------------------------------------------------------


def cumulative(p) -> np.ndarray:
    """Cumulative probabilities, summed left to right as the original does.

    Args:
        p: Per-map probabilities.

    Returns:
        ``float64[len(p)]``.
    """
    out = np.empty(len(p), dtype=np.float64)
    total = 0.0
    for i, v in enumerate(p):
        total += float(v)
        out[i] = total
    return out


def select_maps(cum, u) -> np.ndarray:
    """For each uniform, the first map ``j`` with ``u <= cum[j]``; ``len(cum)`` if none.

    Args:
        cum: Cumulative probabilities.
        u: Uniforms.

    Returns:
        ``int64[len(u)]``.
    """
    out = np.empty(len(u), dtype=np.int64)
    for i in range(len(u)):
        pick = len(cum)
        for j in range(len(cum)):
            if u[i] <= cum[j]:
                pick = j
                break
        out[i] = pick
    return out


def chaos_game(maps, cum, u, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The original loop: (0, 0) is the first point, then one step per uniform.

    Args:
        maps: ``(N, >=6)`` rows ``a, b, c, d, e, f``.
        cum: Cumulative probabilities (``len(cum) == N``).
        u: At least ``n - 1`` uniforms (the last one drawn is never used).
        n: Number of points.

    Returns:
        ``xs, ys`` as ``float64[n]``.
    """
    rows = [[float(v) for v in row[:6]] for row in maps]
    prev_x, prev_y = 0.0, 0.0
    next_x, next_y = 0.0, 0.0
    xs, ys = [prev_x], [prev_y]
    for i in range(n - 1):
        for j in range(len(cum)):
            if u[i] <= cum[j]:
                a, b, c, d, e, f = rows[j]
                # Python floats: IEEE doubles, overflow gives inf, inf - inf
                # gives nan, no exception; same evaluation order as the original.
                next_x = prev_x * a + prev_y * b + e
                next_y = prev_x * c + prev_y * d + f
                break
        # No map matched (u above the last cumulative value): the original
        # appends the unchanged point again.
        xs.append(next_x)
        ys.append(next_y)
        prev_x, prev_y = next_x, next_y
    return np.array(xs, dtype=np.float64), np.array(ys, dtype=np.float64)


# --------------------------------------------------------------------------
# NaN trimming and rescale (SPEC 1.3)
# --------------------------------------------------------------------------


def _delete_nan_rows(vals, xs, ys):
    nan_index = np.where(np.isnan(vals))
    extend = np.array(range(nan_index[0][0] - 100, nan_index[0][0]))
    delete_row = np.append(extend, nan_index)
    # Our definition where the original raises IndexError: indices that
    # wrap past the start of the array are dropped.
    delete_row = delete_row[delete_row >= -len(vals)]
    return np.delete(xs, delete_row, axis=0), np.delete(ys, delete_row, axis=0)


def trim_nan(xs, ys) -> tuple[np.ndarray, np.ndarray]:
    """The original NaN trimming, with ``np.delete``, x first, then y.

    Args:
        xs: x coordinates.
        ys: y coordinates.

    Returns:
        The trimmed copies ``xs, ys``.
    """
    xs = np.array(xs, dtype=np.float64)
    ys = np.array(ys, dtype=np.float64)
    if np.any(np.isnan(xs)):
        xs, ys = _delete_nan_rows(xs, xs, ys)
    if np.any(np.isnan(ys)):
        xs, ys = _delete_nan_rows(ys, xs, ys)
    return xs, ys


def _rescale_axis(vals, size: int, pad: int) -> np.ndarray:
    vals = np.array(vals, dtype=np.float64)
    if len(vals) == 0:
        # Our definition: trimming can delete every point (a NaN within the
        # first 100); the original's np.min would raise on the empty array.
        return np.empty(0, dtype=np.int64)
    with np.errstate(all="ignore"):  # inf - inf and x / inf are expected here
        if np.min(vals) < 0.0:
            vals -= np.min(vals)
        vmax, vmin = np.max(vals), np.min(vals)
        span = vmax - vmin
        if span == 0.0:
            # Our definition: the original computes 0 / 0 here.
            return np.full(len(vals), pad, dtype=np.int64)
        scaled = vals / span * float(size - 2 * pad) + float(pad)
    out = np.empty(len(vals), dtype=np.int64)
    for i, v in enumerate(scaled):
        if np.isfinite(v) and 0.0 <= v < 65536.0:
            out[i] = int(v)  # truncation, as np.uint16 does in range
        else:
            out[i] = -1  # our definition: np.uint16 of it is undefined
    return out


def rescale(xs, ys, width: int, height: int, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """The original min-max rescale to pixel indices, axes independent.

    Args:
        xs: x coordinates (NaN-free).
        ys: y coordinates (NaN-free).
        width: Image width.
        height: Image height.
        pad: Margin in pixels on each side.

    Returns:
        ``px, py`` as ``int64`` arrays, ``-1`` where undefined.
    """
    return _rescale_axis(xs, width, pad), _rescale_axis(ys, height, pad)


# --------------------------------------------------------------------------
# Rasterisation
# --------------------------------------------------------------------------


def _in_image(x: int, y: int, width: int, height: int) -> bool:
    return 0 <= x < width and 0 <= y < height


def count_filled(px, py, width: int, height: int) -> int:
    """Number of distinct in-image pixels hit.

    Args:
        px: Column indices.
        py: Row indices.
        width: Image width.
        height: Image height.

    Returns:
        The count.
    """
    hit = set()
    for x, y in zip(px, py):
        if _in_image(int(x), int(y), width, height):
            hit.add((int(x), int(y)))
    return len(hit)


def draw_points(px, py, colors, img) -> np.ndarray:
    """Point mode: ``img[py, px, :] = colors[i % len(colors)]``.

    Args:
        px: Column indices.
        py: Row indices.
        colors: ``(K, C)`` colour table, cycled by point index.
        img: ``(H, W, C)`` background (not modified).

    Returns:
        The drawn copy.
    """
    img = img.copy()
    height, width = img.shape[:2]
    for i in range(len(px)):
        x, y = int(px[i]), int(py[i])
        if _in_image(x, y, width, height):
            img[y, x, :] = colors[i % len(colors)]
    return img


def draw_patches(px, py, colors, key, img, mask_fn=kernel_patch_mask) -> np.ndarray:
    """3x3 patch mode with the original overwrite semantics.

    Point ``i`` (in order) pastes a 3x3 block whose top-left cell is at column
    ``px + 1``, row ``py + 1``.  Bit ``k`` of its mask, most significant first,
    is cell ``(k // 3, k % 3)``: the colour when set, 0 when clear (zero cells
    overwrite earlier points too).  Cells outside the image are clipped.  A
    point with a negative (undefined, see :func:`rescale`) index is skipped.

    Args:
        px: Column indices.
        py: Row indices.
        colors: ``(K, C)`` colour table, cycled by point index.
        key: Patch-mask stream key.
        img: ``(H, W, C)`` background (not modified).
        mask_fn: ``mask_fn(key, i)`` gives point ``i``'s mask; the kernel's own
            (the RNG is tested separately against :func:`patch_mask`).

    Returns:
        The drawn copy.
    """
    img = img.copy()
    height, width = img.shape[:2]
    for i in range(len(px)):
        x, y = int(px[i]), int(py[i])
        if x < 0 or y < 0:
            continue
        mask = int(mask_fn(key, i))
        for k in range(9):
            row, col = y + 1 + k // 3, x + 1 + k % 3
            if not _in_image(col, row, width, height):
                continue
            if (mask >> (8 - k)) & 1:
                img[row, col, :] = colors[i % len(colors)]
            else:
                img[row, col, :] = 0
    return img


# --------------------------------------------------------------------------
# Whole pipelines
# --------------------------------------------------------------------------


def render_fill(maps, p, u, n: int, size: int, pad: int) -> int:
    """Fill count of one candidate: chaos game, trim, rescale, distinct pixels.

    Args:
        maps: ``(N, >=6)`` rows ``a, b, c, d, e, f``.
        p: Per-map probabilities.
        u: At least ``n - 1`` uniforms.
        n: Number of points.
        size: Square image side.
        pad: Margin.

    Returns:
        Number of distinct non-zero pixels of the point-mode raster.
    """
    xs, ys = chaos_game(maps, cumulative(p), u, n)
    xs, ys = trim_nan(xs, ys)
    px, py = rescale(xs, ys, size, size, pad)
    return count_filled(px, py, size, size)


def official_search(seed: int, n_candidates: int, n_points: int, size: int, pad: int,
                    fill_rate: float = 0.2) -> list[dict]:
    """Replay the original category search loop (SPEC 1.1) from one seed.

    Args:
        seed: The ``np.random.seed`` value (1 for FractalDB).
        n_candidates: How many candidates to replay, accepted or not.
        n_points: Points per candidate (100 000 in the original).
        size: Square image side (512 in the original).
        pad: Margin (6 in the original).
        fill_rate: Acceptance threshold.

    Returns:
        One dict per candidate: ``params`` (``(N, 7)`` rows a..f, p), ``state``
        (generator state right before its ``random(n_points)`` draw),
        ``fill`` (distinct pixels) and ``accepted``; plus, on the last
        element only, ``final_state`` after the whole replay.
    """
    rs = np.random.RandomState(seed)
    out = []
    for _ in range(n_candidates):
        n_maps = rs.randint(2, 8)
        params = np.zeros((n_maps, 7), dtype=np.float64)
        sum_proba = 0.0
        for i in range(n_maps):
            a, b, c, d, e, f = rs.uniform(-1.0, 1.0, 6)
            prob = abs(a * d - b * c)
            sum_proba += prob
            params[i, 0:6] = a, b, c, d, e, f
            params[i, 6] = prob
        for i in range(n_maps):
            params[i, 6] /= sum_proba
        state = state_array(rs)
        u = rs.random_sample(n_points)
        fill = render_fill(params, params[:, 6], u, n_points, size, pad)
        out.append({"params": params, "state": state, "fill": fill,
                    "accepted": fill / float(size * size) >= fill_rate})
    if out:
        out[-1]["final_state"] = state_array(rs)
    return out
