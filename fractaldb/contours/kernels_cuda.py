"""The GPU twin of the orbit rasteriser (numba-cuda): the same bytes as
:func:`fractaldb.contours.orbits.trace_orbits` drawn in order on the CPU.

Importing this module imports ``numba.cuda``; only GPU renderers import it, lazily.

**Why the same bytes.**  Each orbit has one gray and later orbits overwrite earlier
ones, so a pixel's final value is the gray of the *highest* operation covering it.
The GPU rasterises every edge of every orbit at once and keeps, per pixel, the
highest operation number with ``atomicMax``; a last pass maps numbers to grays
(and labels).  No race can change the result.  The vertices are computed by one
thread per vertex scanning its orbits in order with the CPU kernel's own scalar
steps (:func:`~fractaldb.contours.orbits.start_vertex`, ``noise_term``,
``step_vertex``, compiled for the device by
:func:`fractaldb.kernels.cuda_common.device_twin`: every multiply and add rounds
alone, no FMA), and the edges use the CPU's closed-form Bresenham
(:func:`~fractaldb.contours.lines.line_pixel`) with per-pixel bounds.  The trig table
comes from the host (the CPU kernel), so libm and CUDA ``sin`` never meet.  The noise
values ``P`` come from the host (a replayed CPython stream is sequential), or, for keyed
instances, from :func:`keyed_fill`: :data:`keyed_noise_kernel` and :data:`keyed_gray_kernel`
draw them on the device with the CPU's ``splitmix64`` and :func:`pnoise1` (compiled from
:func:`fractaldb.contours.noise.pnoise1`, its float32 products and sums through
``fmul_rn``/``fadd_rn``: never fused).

**A batch** is ``n`` contour *instances* (each one call of ``trace_orbits``) drawn into
``m`` images; several instances may share an image (drawn in instance order).
Host arrays (:func:`pack` builds them from per-instance pieces):

* ``trig`` ``(4, sum V)``; ``P`` ``(2, sum K*V)`` (``P[a, po[s] + k*V + v]``);
* per instance ``s``: ``vo[s]`` (offset into ``trig``), ``po[s]`` (into ``P``; ``po`` has
  ``n + 1`` entries), ``go[s]`` (into the op tables), ``nv[s]``, ``nk[s]``, ``target[s]``
  (its image), ``fpar[s] = (cx, cy, r0, ox, oy, c, lam, alpha)``,
  ``flags[s] = wave + 2 * centre_first``;
* per operation (orbit) ``op_gray``, ``op_label`` (``sum K``): operation ``go[s] + k`` is
  orbit ``k`` of instance ``s``; its number in ``idx`` is ``go[s] + k + 1``;
* per image ``background[m]``.

Kernels: :data:`scan_kernel` (vertices, drawn coordinates ``xy`` ``(2, sum K*V)``),
:data:`edge_kernel` (``atomicMax`` into ``idx`` ``(m, H, W)`` int32, zeroed first),
:data:`map_kernel` (``img`` ``(m, H, W)`` uint8 and, when ``lab`` has rows, ``lab``
int32 ``(m, H, W)``: the op's label, 0 where nothing is drawn).  :func:`trace_batch`
runs the three; :func:`keyed_fill` draws keyed instances' noise and grays on the device first.
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from ..kernels.cuda_common import MAX_GRID, SIMULATOR, TPB, device_twin, splitmix64
from . import lines as L
from . import noise as NZ
from . import orbits as O

__all__ = ["pack", "trace_batch", "spread_channels", "keyed_fill", "scan_kernel", "edge_kernel", "map_kernel",
           "keyed_noise_kernel", "keyed_gray_kernel", "pnoise1"]

_start = device_twin(O.start_vertex)
_noise = device_twin(O.noise_term)
_step = device_twin(O.step_vertex)
_steps = device_twin(L.line_steps)
_pixel = device_twin(L.line_pixel)
_LIMIT = L.LIMIT

if SIMULATOR:
    def _fmul(a, b):
        return np.float32(a * b)

    def _fadd(a, b):
        return np.float32(a + b)

    def _ffloor(x):
        return np.float32(np.floor(x))
else:  # pragma: no cover - needs the CUDA target
    from numba.cuda import libdevice

    # float32 products and sums rounded alone: NVVM would contract them into fma.rn.f32.
    _fmul = libdevice.fmul_rn
    _fadd = libdevice.fadd_rn
    _ffloor = libdevice.floorf

_crem = device_twin(NZ._crem)
_grad = device_twin(NZ._grad, fmul=_fmul)
#: ``noise.pnoise1`` on the device, compiled from :func:`fractaldb.contours.noise.pnoise1` itself.
pnoise1 = device_twin(NZ.pnoise1, _crem=_crem, _grad=_grad, fmul=_fmul, fadd=_fadd, ffloor=_ffloor)
_INV53 = 1.0 / 9007199254740992.0


@cuda.jit
def scan_kernel(trig, P, vo, po, nv, nk, fpar, flags, vinst, xy):
    """One thread per vertex (grid-stride): its K orbits in order, as ``trace_orbits``."""
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for j in range(start, vinst.shape[0], stride):
        s = vinst[j]
        v = j - vo[s]
        V = nv[s]
        wave = (flags[s] & 1) != 0
        first = (flags[s] & 2) != 0
        cx, cy, r0, ox, oy = fpar[s, 0], fpar[s, 1], fpar[s, 2], fpar[s, 3], fpar[s, 4]
        c, lam, alpha = fpar[s, 5], fpar[s, 6], fpar[s, 7]
        t0, t1, s1, s2 = trig[0, j], trig[1, j], trig[2, j], trig[3, j]
        x = _start(t0, r0, ox, cx, first)
        y = _start(t1, r0, oy, cy, first)
        for k in range(nk[s]):
            q = po[s] + k * V + v
            x = _step(x, t0, _noise(P[0, q], c, alpha, s1, s2, wave), lam)
            y = _step(y, t1, _noise(P[1, q], c, alpha, s1, s2, wave), lam)
            if first:
                xy[0, q] = x
                xy[1, q] = y
            else:
                xy[0, q] = x + cx  # one add, as the CPU's add(xs[v], cx)
                xy[1, q] = y + cy


@cuda.jit(device=True)
def _plot(idx, m, x, y, op):
    if 0 <= x < idx.shape[2] and 0 <= y < idx.shape[1]:
        cuda.atomic.max(idx, (m, y, x), op)


@cuda.jit
def edge_kernel(xy, po, nv, go, target, n_inst, idx):
    """One thread per edge (grid-stride over ``sum K*V``): ``atomicMax`` of its op number."""
    start, stride = cuda.grid(1), cuda.gridsize(1)
    h, w = idx.shape[1], idx.shape[2]
    for q in range(start, po[n_inst], stride):
        lo, hi = 0, n_inst - 1  # the instance: last s with po[s] <= q
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if po[mid] <= q:
                lo = mid
            else:
                hi = mid - 1
        s = lo
        V = nv[s]
        r = q - po[s]
        k = r // V
        v = r - k * V
        q1 = q + 1 if v + 1 < V else q + 1 - V
        x0, y0, x1, y1 = xy[0, q], xy[1, q], xy[0, q1], xy[1, q1]
        if not (abs(x0) < _LIMIT and abs(y0) < _LIMIT and abs(x1) < _LIMIT and abs(y1) < _LIMIT):
            continue
        X0, Y0, X1, Y1 = np.int64(x0), np.int64(y0), np.int64(x1), np.int64(y1)
        if max(X0, X1) < 0 or min(X0, X1) >= w or max(Y0, Y1) < 0 or min(Y0, Y1) >= h:
            continue
        op = np.int32(go[s] + k + 1)
        m = target[s]
        dx, dy, sx, sy, n = _steps(X0, Y0, X1, Y1)
        for i in range(n):
            x, y = _pixel(X0, Y0, dx, dy, sx, sy, i)
            _plot(idx, m, x, y, op)
        _plot(idx, m, X1, Y1, op)


@cuda.jit
def map_kernel(idx, op_gray, op_label, background, img, lab):
    """Per pixel: the gray (and label) of the highest op, or the image's background."""
    start, stride = cuda.grid(1), cuda.gridsize(1)
    h, w = idx.shape[1], idx.shape[2]
    total = idx.shape[0] * h * w
    for p in range(start, total, stride):
        m = p // (h * w)
        r = p - m * h * w
        y = r // w
        x = r - y * w
        op = idx[m, y, x]
        if op == 0:
            img[m, y, x] = background[m]
            if lab.shape[0] > 0:
                lab[m, y, x] = 0
        else:
            img[m, y, x] = min(op_gray[op - 1], 255)
            if lab.shape[0] > 0:
                lab[m, y, x] = op_label[op - 1]


def pack(instances) -> dict:
    """The batch tables of :func:`trace_batch` from per-instance dicts with keys ``P`` ``(K, 2, V)``,
    ``grays`` ``(K,)``, ``trig`` ``(4, V)``, ``cx cy r0 ox oy c lam alpha``, ``wave``,
    ``centre_first``, ``target`` (image index) and optionally ``label`` (every orbit's label).
    An instance without ``P`` and ``grays`` gives ``orbits`` (K) instead; :func:`keyed_fill`
    then draws them on the device."""
    n = len(instances)
    nv = np.array([d["trig"].shape[1] for d in instances], dtype=np.int64)
    nk = np.array([len(d["grays"]) if "grays" in d else d["orbits"] for d in instances], dtype=np.int64)
    vo = np.zeros(n + 1, dtype=np.int64)
    po = np.zeros(n + 1, dtype=np.int64)
    go = np.zeros(n + 1, dtype=np.int64)
    vo[1:], po[1:], go[1:] = np.cumsum(nv), np.cumsum(nv * nk), np.cumsum(nk)
    trig = np.concatenate([d["trig"] for d in instances], axis=1) if n else np.zeros((4, 0))
    P = np.zeros((2, po[-1]), dtype=np.float64)
    for s, d in enumerate(instances):
        if "P" in d:  # else drawn on the device (keyed_fill)
            P[:, po[s]:po[s + 1]] = np.ascontiguousarray(d["P"].transpose(1, 0, 2)).reshape(2, -1)
    names = ("cx", "cy", "r0", "ox", "oy", "c", "lam", "alpha")
    fpar = np.array([[float(d[k]) for k in names] for d in instances], dtype=np.float64).reshape(n, 8)
    flags = np.array([int(bool(d["wave"])) + 2 * int(bool(d["centre_first"])) for d in instances], dtype=np.int64)
    op_gray = np.concatenate([np.asarray(d.get("grays", np.zeros(k, np.int32)), dtype=np.int32)
                              for d, k in zip(instances, nk)]) if n else np.zeros(0, np.int32)
    op_label = np.concatenate([np.full(k, d.get("label", 0), dtype=np.int32) for d, k in zip(instances, nk)]) \
        if n else np.zeros(0, np.int32)
    vinst = np.repeat(np.arange(n, dtype=np.int64), nv)
    target = np.array([d["target"] for d in instances], dtype=np.int64)
    return {"trig": np.ascontiguousarray(trig), "P": P, "vo": vo, "po": po, "go": go, "nv": nv, "nk": nk,
            "fpar": fpar, "flags": flags, "vinst": vinst, "target": target, "op_gray": op_gray,
            "op_label": op_label, "n": n}


def _grid(total: int) -> int:
    return max(1, min(MAX_GRID, (total + TPB - 1) // TPB))


def trace_batch(tables: dict, background, img, lab=None, idx=None):
    """Draw a packed batch into device arrays ``img`` ``(m, H, W)`` uint8 (and ``lab`` int32).

    ``background`` holds each image's background byte; ``idx`` (optional) an ``(m, H, W)``
    int32 device scratch.  Returns ``idx`` (the op numbers, 0 = nothing drawn)."""
    to = cuda.to_device
    t = {k: (to(v) if isinstance(v, np.ndarray) else v) for k, v in tables.items()}
    m, h, w = img.shape
    if idx is None:
        idx = cuda.device_array((m, h, w), dtype=np.int32)
    _zero[_grid(m * h * w), TPB](idx)
    n = tables["n"]
    kv = int(tables["po"][n])
    if n:
        xy = cuda.device_array((2, max(kv, 1)), dtype=np.float64)
        scan_kernel[_grid(len(tables["vinst"])), TPB](t["trig"], t["P"], t["vo"], t["po"], t["nv"], t["nk"],
                                                      t["fpar"], t["flags"], t["vinst"], xy)
        edge_kernel[_grid(kv), TPB](xy, t["po"], t["nv"], t["go"], t["target"], n, idx)
    if lab is None:
        lab = cuda.device_array((0, 1, 1), dtype=np.int32)
    op_gray = t["op_gray"] if tables["op_gray"].size else to(np.zeros(1, np.int32))
    op_label = t["op_label"] if tables["op_label"].size else to(np.zeros(1, np.int32))
    # (P and op_gray may already be device arrays: keyed_fill)
    map_kernel[_grid(m * h * w), TPB](idx, op_gray, op_label, to(np.asarray(background, dtype=np.uint8)), img, lab)
    return idx


@cuda.jit
def _zero(a):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    h, w = a.shape[1], a.shape[2]
    for p in range(start, a.shape[0] * h * w, stride):
        m = p // (h * w)
        r = p - m * h * w
        a[m, r // w, r - (r // w) * w] = 0


@cuda.jit
def _spread(gray, out):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    m, h, w, c = out.shape
    for p in range(start, m * h * w, stride):
        i = p // (h * w)
        r = p - i * h * w
        y = r // w
        x = r - y * w
        for ch in range(c):
            out[i, y, x, ch] = gray[i, y, x]


def spread_channels(gray, out) -> None:
    """``out[..., ch] = gray`` for every channel of the device array ``out`` ``(m, H, W, C)``."""
    m, h, w, _ = out.shape
    if m:
        _spread[_grid(m * h * w), TPB](gray, out)


@cuda.jit(device=True)
def _instance_of(offsets, n_inst, q):
    """The last ``s`` with ``offsets[s] <= q`` (binary search)."""
    lo, hi = 0, n_inst - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if offsets[mid] <= q:
            lo = mid
        else:
            hi = mid - 1
    return lo


@cuda.jit
def keyed_noise_kernel(keys, po, nv, n_inst, fixed, P):
    """``P`` of :func:`fractaldb.contours.orbits.keyed_draws` for every instance, one thread per
    (instance, orbit, vertex): ``P[a, po[s] + k V + v]``."""
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for q in range(start, po[n_inst], stride):
        s = _instance_of(po, n_inst, q)
        V = nv[s]
        r = q - po[s]
        k = r // V
        v = r - k * V
        for a in range(2):
            u = np.float64(splitmix64(keys[s], (2 * k + a) * V + v) >> np.uint64(11)) * _INV53
            P[a, q] = pnoise1(10000.0 * u, fixed)


@cuda.jit
def keyed_gray_kernel(keys, go, nv, nk, n_inst, gray_lo, gray_hi, op_gray):
    """The grays of :func:`fractaldb.contours.orbits.keyed_draws`, one thread per orbit."""
    start, stride = cuda.grid(1), cuda.gridsize(1)
    n = np.uint64(gray_hi - gray_lo + 1)
    for q in range(start, go[n_inst], stride):
        s = _instance_of(go, n_inst, q)
        k = q - go[s]
        hi = splitmix64(keys[s], 2 * nk[s] * nv[s] + k) >> np.uint64(32)
        op_gray[q] = gray_lo + np.int64((hi * n) >> np.uint64(32))


def keyed_fill(tables: dict, keys, gray_lo: int, gray_hi: int, fixed: bool) -> dict:
    """Replace ``tables["P"]`` and ``tables["op_gray"]`` (from :func:`pack` of instances without
    noise) by device arrays drawn from each instance's key, as ``keyed_draws`` draws them."""
    n = tables["n"]
    kv, ops = int(tables["po"][n]), int(tables["go"][n])
    d_keys = cuda.to_device(np.asarray(keys, dtype=np.uint64))
    po, go, nv, nk = (cuda.to_device(tables[k]) for k in ("po", "go", "nv", "nk"))
    P = cuda.device_array((2, max(kv, 1)), dtype=np.float64)
    gray = cuda.device_array(max(ops, 1), dtype=np.int32)
    if n:
        keyed_noise_kernel[_grid(kv), TPB](d_keys, po, nv, n, bool(fixed), P)
        keyed_gray_kernel[_grid(ops), TPB](d_keys, go, nv, nk, n, gray_lo, gray_hi, gray)
    return {**tables, "P": P, "op_gray": gray}
