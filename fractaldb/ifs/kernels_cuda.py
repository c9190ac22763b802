"""CUDA twins of the chaos game, rescale and rasterisation kernels (numba-cuda).

Each kernel mirrors a CPU kernel of :mod:`fractaldb.ifs.kernels` and must give
bit-identical results; ``tests/cuda_cases.py`` compares them under numba's
CUDA simulator.  Importing this module imports ``numba.cuda`` (and nothing
touches a GPU until a kernel is launched); only
:mod:`fractaldb.ifs.render_cuda` imports it, lazily.

Layout of one launch: ``B`` (category, weight) blocks in scratch *slots*
``0..B-1``; every kernel receives ``act``, the slots it works on (all of them,
or the ones a degenerate-variant retry re-renders), and loops over them with
a grid-stride loop, so the results never depend on the launch geometry.

* :func:`select_kernel` -- the map index of every step, one thread per
  eight steps: the random numbers do not depend on the points.
* :func:`chaos_game_kernel` -- one thread per slot: the recurrence is
  sequential (software-pipelined around the dependent arithmetic).
* :func:`rescale_kernel` -- one thread block per slot: the CPU's NaN trim (a
  prefix of the points: see ``fractaldb.ifs.kernels.nan_prefix``), a min/max
  reduction in shared memory, then the original min-max formula per point.
* :func:`fill_kernel` / :func:`fill_shared_kernel` -- distinct pixels of the
  point raster (``atomic.or_`` on a bitmap, in shared memory when it fits),
  the fill rate of the degenerate-variant gate.
* :func:`owner_kernel` then :func:`compose_kernel` -- the raster with the
  original *overwrite* semantics in parallel: phase 1 records, per pixel, the
  highest index of a point whose 3x3 patch (or pixel) covers it
  (``atomic.max``); phase 2 gives each pixel the value that point writes
  there, and writes the requested flips straight into the output.  The
  sequential loop leaves exactly that value, because the last write wins and
  every cell of a patch is written, zero cells included.

Floating point: NVVM contracts ``a * b + c`` into one fused multiply-add by
default (numba-cuda passes no ``-fma=0``, even with ``fastmath=False``), and a
fused result is rounded once instead of twice, so it differs from the CPU's.
The products and sums of the chaos game and of the rescale therefore go
through :func:`_mul` and :func:`_add`: libdevice's ``__nv_dmul_rn`` /
``__nv_dadd_rn``, which compile to ``mul.rn.f64`` / ``add.rn.f64``; PTX
treats an instruction with an explicit rounding modifier conservatively and
never fuses it.  ``tests/test_cuda.py::test_kernels_compile_for_the_gpu_without_fma``
checks the PTX.  Under the simulator they are plain Python arithmetic on
NumPy float64.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float64, int32, int64, uint64

from ..kernels.cuda_common import MAX_GRID, SIMULATOR, TPB, _add, _mul, patch_mask, splitmix64, uniform
from . import kernels as K

__all__ = [
    "SIMULATOR", "TPB", "CHAOS_TPB", "MAX_GRID",
    "splitmix64", "patch_mask", "uniform",
    "select_kernel", "chaos_game_kernel", "rescale_kernel", "clear_fill_kernel", "fill_kernel",
    "fill_shared_kernel", "FILL_SHARED_BYTES", "copy_slots_kernel",
    "clear_owner_kernel", "owner_kernel", "compose_kernel",
    "COMPOSE_POINT_GRAY", "COMPOSE_POINT_COLOR", "COMPOSE_PATCH",
]

#: Threads per block of the chaos game: few, so that the slots spread over as
#: many multiprocessors as possible -- each thread is a long dependent chain,
#: latency-bound (H100, 1024 slots: 18 ms per launch with 4, 32 ms with 32).
CHAOS_TPB = 2 if SIMULATOR else 4
#: Largest fill bitmap :func:`fill_shared_kernel` takes: the 48 KiB of shared
#: memory a kernel gets without opting in, less room for its static counter
#: (images up to 626 x 626); larger images use :func:`fill_kernel` on global memory.
FILL_SHARED_BYTES = 48 * 1024 - 64

#: ``compose_kernel`` modes.
COMPOSE_POINT_GRAY = 0
COMPOSE_POINT_COLOR = 1
COMPOSE_PATCH = 2


# --------------------------------------------------------------------------- device functions

# The CPU's O(1) NaN-trim length (a plain function under NUMBA_DISABLE_JIT).
_nan_prefix = cuda.jit(device=True)(getattr(K.nan_prefix, "py_func", K.nan_prefix))


@cuda.jit(device=True)
def _pixel(v, shift, span, scale, fpad, pad, x86_cast):
    """One coordinate of ``_rescale_axis`` (CPU): same formula, same casts."""
    if x86_cast:
        p = _add(_mul((v - shift) / span, scale), fpad)
        ok = (p > -2147483649.0) and (p < 2147483648.0)
        return np.int32(np.int64(p if ok else 0.0) & 0xFFFF)
    if span == 0.0:
        return np.int32(pad)
    p = _add(_mul((v - shift) / span, scale), fpad)
    ok = (p >= 0.0) and (p < 65536.0)
    return np.int32(p if ok else -1.0)


# --------------------------------------------------------------------------- points


@cuda.jit
def select_kernel(act, cum, nmaps, keys, u_shared, official, steps, sel):
    """The map index of every chaos-game step of the slots in ``act``, eight per word.

    Mirrors ``fill_uniform`` + ``select_maps``: the uniform of step ``i`` is
    draw ``i`` of ``keys[slot]`` (modern) or ``u_shared[i]`` (official: the
    shared ``np.random.seed(100)`` stream), and its map index is the number of
    cumulative probabilities below it (``nmaps[slot]``: no map, the point
    repeats).  Byte ``k`` of ``sel[slot, w]`` is the index of step
    ``8 w + k``.  The steps are independent, so this runs one thread per word;
    it takes the random numbers and the comparisons off the chaos game's
    sequential path.

    Args:
        act: ``(A,)`` int32 slots to run.
        cum: ``(B, M)`` float64 cumulative probabilities.
        nmaps: ``(B,)`` int32 map counts (at most 255).
        keys: ``(B,)`` uint64 point-stream keys.
        u_shared: ``(points - 1,)`` float64 official uniforms (unused in modern mode).
        official: whether to read ``u_shared``.
        steps: ``points - 1``.
        sel: ``(B, ceil(steps / 8))`` uint64 output; bytes past the last step are 0.
    """
    words = sel.shape[1]
    for a in range(cuda.blockIdx.y, act.shape[0], cuda.gridDim.y):
        s = act[a]
        m = nmaps[s]
        key = keys[s]
        for w in range(cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x, words, cuda.gridDim.x * cuda.blockDim.x):
            word = np.uint64(0)
            for k in range(8):
                i = w * 8 + k
                if i < steps:
                    if official:
                        u = u_shared[i]
                    else:
                        u = uniform(key, i)
                    j = 0
                    for q in range(m):
                        if u > cum[s, q]:
                            j += 1
                    word |= np.uint64(j) << np.uint64(8 * k)
            sel[s, w] = word


@cuda.jit(device=True)
def _step_map(maps, s, m, word, k):
    """The map index in byte ``k`` of ``word`` and that map's six coefficients
    (row 0's when the index is past the maps: loaded, never used)."""
    j = np.int32((word >> np.uint64(8 * k)) & np.uint64(0xFF))
    r = j if j < m else 0
    return j, maps[s, r, 0], maps[s, r, 1], maps[s, r, 2], maps[s, r, 3], maps[s, r, 4], maps[s, r, 5]


@cuda.jit
def chaos_game_kernel(act, maps, nmaps, sel, xs, ys):
    """Chaos game of every slot in ``act``, one thread each (``chaos_game``).

    Step ``i`` applies map ``j`` (byte ``i`` of ``sel[slot]``, from
    :func:`select_kernel`) to the point, or repeats it when ``j`` is past the
    maps.  The recurrence is sequential, so the loop is software-pipelined:
    step ``i + 1``'s map index and coefficients are loaded before step ``i``'s
    arithmetic (and the next word of indices eight steps ahead), so their
    latency hides behind the dependent multiply-adds instead of adding to them.

    Args:
        act: ``(A,)`` int32 slots to run.
        maps: ``(B, M, 6)`` float64 weighted maps (rows past ``nmaps`` unused, row 0 always present).
        nmaps: ``(B,)`` int32 map counts.
        sel: ``(B, W)`` uint64 map indices from :func:`select_kernel`.
        xs, ys: ``(B, points)`` float64 outputs.
    """
    n = xs.shape[1]
    words = sel.shape[1]
    for a in range(cuda.grid(1), act.shape[0], cuda.gridsize(1)):
        s = act[a]
        m = nmaps[s]
        x = 0.0
        y = 0.0
        xs[s, 0] = x
        ys[s, 0] = y
        word = sel[s, 0]
        nxt = sel[s, 1] if words > 1 else np.uint64(0)
        j, c0, c1, c2, c3, c4, c5 = _step_map(maps, s, m, word, 0)
        for i in range(n - 1):
            # Load step i + 1's index and coefficients first ...
            i1 = i + 1
            if (i1 & 7) == 0:
                word = nxt
                w2 = (i1 >> 3) + 1
                if w2 < words:
                    nxt = sel[s, w2]
            jn, n0, n1, n2, n3, n4, n5 = _step_map(maps, s, m, word, i1 & 7)
            # ... then step i: (x*a + y*b) + e, rounded after every operation, as on the CPU.
            if j < m:
                nx = _add(_add(_mul(x, c0), _mul(y, c1)), c4)
                ny = _add(_add(_mul(x, c2), _mul(y, c3)), c5)
                x = nx
                y = ny
            xs[s, i1] = x
            ys[s, i1] = y
            j = jn
            c0 = n0
            c1 = n1
            c2 = n2
            c3 = n3
            c4 = n4
            c5 = n5


@cuda.jit(device=True)
def _block_min2(a, b, t):
    """Tree minimum of the ``TPB`` entries of the shared arrays ``a`` and ``b``,
    left in ``a[0]`` and ``b[0]``; every thread of the block calls it (barriers)."""
    cuda.syncthreads()
    step = TPB // 2
    while step > 0:
        if t < step:
            if a[t + step] < a[t]:
                a[t] = a[t + step]
            if b[t + step] < b[t]:
                b[t] = b[t + step]
        cuda.syncthreads()
        step //= 2


@cuda.jit(device=True)
def _block_max2(a, b, t):
    """:func:`_block_min2` for the maximum."""
    cuda.syncthreads()
    step = TPB // 2
    while step > 0:
        if t < step:
            if a[t + step] > a[t]:
                a[t] = a[t + step]
            if b[t + step] > b[t]:
                b[t] = b[t + step]
        cuda.syncthreads()
        step //= 2


@cuda.jit
def rescale_kernel(act, xs, ys, width, height, pad, x86_cast, px, py, npts, nan_flag):
    """NaN trim and min-max rescale of every slot in ``act``, one thread block per slot.

    ``trim_nan`` + ``rescale`` of the CPU.  A slot whose last point is NaN
    (the CPU's ``has_nan``) is trimmed to its first ``nan_prefix(first NaN
    of x, first NaN of y)`` points (the NaNs of a chaos game are a suffix per
    axis, so the CPU's trimming keeps a prefix); ``npts[slot]`` is the number
    of points kept and ``nan_flag[slot]`` whether any NaN was trimmed.

    Min and max are exact whatever the reduction order; a signed zero in
    them cannot change a pixel (``shift`` is 0.0 for ``-0.0``, and a zero
    span takes the same branch with either sign).
    """
    lo_x = cuda.shared.array(TPB, float64)
    hi_x = cuda.shared.array(TPB, float64)
    lo_y = cuda.shared.array(TPB, float64)
    hi_y = cuda.shared.array(TPB, float64)
    first_x = cuda.shared.array(TPB, int32)
    first_y = cuda.shared.array(TPB, int32)
    t = cuda.threadIdx.x
    n = xs.shape[1]
    for a in range(cuda.blockIdx.x, act.shape[0], cuda.gridDim.x):
        s = act[a]
        m = n
        nan = math.isnan(xs[s, n - 1]) or math.isnan(ys[s, n - 1])
        if nan:  # the same for every thread of the block: no divergence at the barriers
            fx = n
            fy = n
            for i in range(t, n, TPB):  # i grows: the first NaN a thread sees is its smallest
                if fx == n and math.isnan(xs[s, i]):
                    fx = i
                if fy == n and math.isnan(ys[s, i]):
                    fy = i
            first_x[t] = fx
            first_y[t] = fy
            _block_min2(first_x, first_y, t)
            m = _nan_prefix(first_x[0], first_y[0], n)
            cuda.syncthreads()  # everyone has read the result before the next slot reuses the arrays
        if t == 0:
            npts[s] = m
            nan_flag[s] = 1 if nan else 0
        lx = np.inf
        hx = -np.inf
        ly = np.inf
        hy = -np.inf
        for i in range(t, m, TPB):
            v = xs[s, i]
            lx = v if v < lx else lx
            hx = v if v > hx else hx
            v = ys[s, i]
            ly = v if v < ly else ly
            hy = v if v > hy else hy
        lo_x[t] = lx
        hi_x[t] = hx
        lo_y[t] = ly
        hi_y[t] = hy
        _block_min2(lo_x, lo_y, t)
        _block_max2(hi_x, hi_y, t)
        lx = lo_x[0]
        hx = hi_x[0]
        ly = lo_y[0]
        hy = hi_y[0]
        cuda.syncthreads()  # everyone has read the result before the next slot reuses the arrays
        # axis_transform: shift only when min < 0; the span is max - min either way.
        shift_x = lx if lx < 0.0 else 0.0
        shift_y = ly if ly < 0.0 else 0.0
        span_x = hx - lx
        span_y = hy - ly
        scale_x = np.float64(width - 2 * pad)
        scale_y = np.float64(height - 2 * pad)
        fpad = np.float64(pad)
        for i in range(t, m, TPB):
            px[s, i] = _pixel(xs[s, i], shift_x, span_x, scale_x, fpad, pad, x86_cast)
            py[s, i] = _pixel(ys[s, i], shift_y, span_y, scale_y, fpad, pad, x86_cast)


# --------------------------------------------------------------------------- fill rate


@cuda.jit
def clear_fill_kernel(act, hits, filled):
    """Zero the fill bitmaps and counters of the slots in ``act``."""
    words = hits.shape[1]
    for a in range(cuda.blockIdx.y, act.shape[0], cuda.gridDim.y):
        s = act[a]
        start = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        if start == 0:
            filled[s] = 0
        for k in range(start, words, cuda.gridDim.x * cuda.blockDim.x):
            hits[s, k] = 0


@cuda.jit
def fill_kernel(act, px, py, npts, width, height, hits, filled):
    """``filled[slot]`` += distinct pixels hit by the slot's points (``count_filled``).

    ``hits`` is a zeroed ``(B, ceil(W*H/64))`` uint64 bitmap per slot; a thread
    counts the bits it turned on (``atomic.or_`` returns the old word), so
    every pixel is counted once.  The bitmap is kept: gray point mode draws
    from it.
    """
    for a in range(cuda.blockIdx.y, act.shape[0], cuda.gridDim.y):
        s = act[a]
        n = npts[s]
        count = 0
        for i in range(cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x, n, cuda.gridDim.x * cuda.blockDim.x):
            x = px[s, i]
            y = py[s, i]
            if x >= 0 and y >= 0 and x < width and y < height:
                b = y * width + x
                bit = np.uint64(1) << np.uint64(b & 63)
                old = cuda.atomic.or_(hits, (s, b >> 6), bit)
                if (old & bit) == np.uint64(0):
                    count += 1
        if count > 0:
            cuda.atomic.add(filled, s, count)


@cuda.jit
def fill_shared_kernel(act, px, py, npts, width, height, hits, filled):
    """:func:`fill_kernel` with each slot's bitmap in shared memory: one thread block per slot.

    Launch with ``hits.shape[1] * 8`` bytes of dynamic shared memory (at most
    :data:`FILL_SHARED_BYTES`).  The atomics hit shared memory instead of
    global memory; the finished bitmap and count are then written out whole
    (no clearing pass needed).  Same results as :func:`fill_kernel`.
    """
    bits = cuda.shared.array(0, dtype=uint64)
    count = cuda.shared.array(1, dtype=int64)
    words = hits.shape[1]
    t = cuda.threadIdx.x
    for a in range(cuda.blockIdx.x, act.shape[0], cuda.gridDim.x):
        s = act[a]
        for k in range(t, words, cuda.blockDim.x):
            bits[k] = 0
        if t == 0:
            count[0] = 0
        cuda.syncthreads()
        c = 0
        for i in range(t, npts[s], cuda.blockDim.x):
            x = px[s, i]
            y = py[s, i]
            if x >= 0 and y >= 0 and x < width and y < height:
                b = y * width + x
                bit = np.uint64(1) << np.uint64(b & 63)
                old = cuda.atomic.or_(bits, b >> 6, bit)
                if (old & bit) == np.uint64(0):
                    c += 1
        if c > 0:
            cuda.atomic.add(count, 0, c)
        cuda.syncthreads()
        for k in range(t, words, cuda.blockDim.x):
            hits[s, k] = bits[k]
        if t == 0:
            filled[s] = count[0]
        cuda.syncthreads()  # the bitmap is written out before the next slot clears it


@cuda.jit
def copy_slots_kernel(src, dst, px, py, npts, hits, to_px, to_py, to_npts, to_hits):
    """Slot ``src[k]`` of one scratch set to slot ``dst[k]`` of another: points, count, fill bitmap.

    Moves the chosen degenerate-variant attempt into its block's slot.
    """
    n = px.shape[1]
    words = hits.shape[1]
    for k in range(cuda.blockIdx.y, src.shape[0], cuda.gridDim.y):
        a = src[k]
        b = dst[k]
        start = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        stride = cuda.gridDim.x * cuda.blockDim.x
        if start == 0:
            to_npts[b] = npts[a]
        for i in range(start, n, stride):
            to_px[b, i] = px[a, i]
            to_py[b, i] = py[a, i]
        for i in range(start, words, stride):
            to_hits[b, i] = hits[a, i]


# --------------------------------------------------------------------------- raster


@cuda.jit
def clear_owner_kernel(act, owner):
    """``owner[slot] = -1`` (no point) for the slots in ``act``."""
    w = owner.shape[2]
    npix = owner.shape[1] * w
    for a in range(cuda.blockIdx.y, act.shape[0], cuda.gridDim.y):
        s = act[a]
        for q in range(cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x, npix, cuda.gridDim.x * cuda.blockDim.x):
            owner[s, q // w, q % w] = -1


@cuda.jit
def owner_kernel(act, px, py, npts, patch, owner):
    """Phase 1: ``owner[slot, y, x]`` = highest point index writing pixel (x, y).

    Patch mode: point ``i`` writes the 9 cells (x+1..x+3, y+1..y+3) clipped to
    the image, and nothing when x or y is negative (an undefined index in
    modern mode), as ``draw_patches``.  Point mode: the pixel itself when
    inside the image, as ``draw_points``.
    """
    h = owner.shape[1]
    w = owner.shape[2]
    for a in range(cuda.blockIdx.y, act.shape[0], cuda.gridDim.y):
        s = act[a]
        n = npts[s]
        for i in range(cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x, n, cuda.gridDim.x * cuda.blockDim.x):
            x = px[s, i]
            y = py[s, i]
            me = np.int32(i)
            if patch:
                if x >= 0 and y >= 0:
                    for r in range(3):
                        yy = y + 1 + r
                        if yy < h:
                            for c in range(3):
                                xx = x + 1 + c
                                if xx < w:
                                    cuda.atomic.max(owner, (s, yy, xx), me)
            elif x >= 0 and y >= 0 and x < w and y < h:
                cuda.atomic.max(owner, (s, y, x), me)


@cuda.jit
def compose_kernel(slots, d_first, d_key, d_base, px, py, owner, hits, colors, mode, flips, images):
    """Phase 2: every pixel of every requested draw, written in each flip.

    Job ``a`` (slot ``slots[a]``) owns draws ``d_first[a]`` to
    ``d_first[a + 1] - 1``.  For draw ``d`` the raster pixel (X, Y) is

    * gray point mode: ``colors[0]`` if the fill bitmap has the pixel, else 0;
    * colour point mode: ``colors[o % K]`` for the owner ``o``, else 0;
    * patch mode: ``colors[o % K] * bit`` where ``bit`` is bit ``8 - (3 r + c)``
      of ``patch_mask(d_key[d], o)`` and (r, c) the pixel's cell in the
      owner's patch, else 0.

    Flip ``t < flips`` of the raster goes to ``images[d_base[d] + t]``, with
    ``fractaldb.ifs.render.flip``'s definition (the original's flipud first).  A
    thread reads a pixel's owner and its patch cell once and writes the
    pixel of every draw: only the patch bit differs between draws.
    """
    h = images.shape[1]
    w = images.shape[2]
    nch = images.shape[3]
    nc = colors.shape[0]
    npix = h * w
    for a in range(cuda.blockIdx.y, slots.shape[0], cuda.gridDim.y):
        s = slots[a]
        for q in range(cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x, npix, cuda.gridDim.x * cuda.blockDim.x):
            yy = q // w
            xx = q - yy * w
            on = 0
            ci = 0
            o = -1
            shift = 0
            if mode == COMPOSE_POINT_GRAY:
                if (hits[s, q >> 6] >> np.uint64(q & 63)) & np.uint64(1):
                    on = 1
            else:
                o = owner[s, yy, xx]
                if o >= 0:
                    ci = o % nc
                    on = 1
                    if mode == COMPOSE_PATCH:
                        shift = 8 - (3 * (yy - (py[s, o] + 1)) + (xx - (px[s, o] + 1)))
            yf = h - 1 - yy
            xf = w - 1 - xx
            for d in range(d_first[a], d_first[a + 1]):
                bit = on
                if mode == COMPOSE_PATCH and o >= 0:
                    bit = (patch_mask(d_key[d], o) >> shift) & 1
                base = d_base[d]
                for ch in range(nch):
                    v = np.uint8(colors[ci, ch] * bit)
                    images[base, yf, xx, ch] = v
                    if flips > 1:
                        images[base + 1, yy, xx, ch] = v
                    if flips > 2:
                        images[base + 2, yf, xf, ch] = v
                    if flips > 3:
                        images[base + 3, yy, xf, ch] = v
