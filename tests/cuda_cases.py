"""CUDA renderer cases: the GPU twin must give the CPU renderer's blocks exactly.

Not collected by a plain ``pytest`` run (the name does not start with
``test_``): ``tests/test_cuda.py`` runs this file in a subprocess under
numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1`` must be set before numba
is imported).  On a machine with an NVIDIA GPU the same cases run on the
hardware::

    python -m pytest tests/cuda_cases.py -q

Sizes stay tiny (24-40 px, 200-800 points): the simulator runs every CUDA
thread as a Python thread.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import cuda

from fractaldb.ifs.system import IFS
from fractaldb.families.fractal.imagefolder import create_renderer
from fractaldb.ifs.render import CPURenderer, RenderConfig
import published

CAT_00000, CAT_00001, CAT_00002 = (published.rows(name) for name in ("00000", "00001", "00002"))
from tinyset import checked_to_torch

if not cuda.is_available():  # pragma: no cover - the driver test sets the simulator
    pytest.skip("needs a GPU or NUMBA_ENABLE_CUDASIM=1", allow_module_level=True)

from fractaldb.ifs import kernels_cuda as KC  # noqa: E402
from fractaldb.ifs import kernels as K  # noqa: E402
from fractaldb.ifs.render_cuda import CUDARenderer  # noqa: E402

# NumPy scalars overflow on purpose in splitmix64 under the simulator, and
# diverging systems divide by zero: both are the defined behaviour.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

#: 10 maps: more than the CPU kernel's 8 unrolled slots.
_RS = np.random.RandomState(5)
_TEN = np.concatenate([_RS.uniform(-0.6, 0.6, (10, 6)), np.full((10, 1), 0.1)], axis=1)

#: Overflows to inf after about 175 steps, then ``inf * 0`` is NaN: the NaN
#: trim runs with every point count used here (>= 200).
DIVERGING = [[60.0, 0.0, 0.0, 60.0, 1.0, 1.0, 0.5], [60.0, 0.0, 0.0, 60.0, -1.0, 0.5, 0.5]]

SYSTEMS = {
    "cat00000": CAT_00000,
    "cat00001": CAT_00001,
    "cat00002": CAT_00002,
    "diverging": DIVERGING,  # overflow -> inf -> NaN: the NaN trim
    "all_zero": [[0, 0, 0, 0, 0, 0, 0.5], [0, 0, 0, 0, 0, 0, 0.5]],
    "nan_within_100": [[1e200, 0, 0, 1e200, 1, 1, 1.0]],  # every point trimmed
    "identity": [[1.0, 0, 0, 1.0, 0, 0, 1.0]],  # zero span on both axes
    "inf_coefficient": [[1e308, 0, 0, 0.5, 0, 0, 1.0]],  # weight 4 multiplies a by 1.8
    "huge_offsets": [[0.5, 0, 0, 0.5, 1e308, -1e308, 0.5], [0.5, 0, 0, 0.5, -1e308, 1e308, 0.5]],
    "expanding": [[-1.5, 0.3, 0.2, 1.9, 0.0, 1.0, 1.0]],
    "zero_probability_map": [[0.5, 0.1, 0, 0.5, 0, 0, 0.4], [0.3, 0, 0.2, 0.6, 0.5, 0, 0.0],
                             [0.4, 0, 0, -0.4, 0.2, 0.5, 0.6]],
    "ten_maps": _TEN.tolist(),
}

#: (mode, color, compat, size, points): every rasteriser, both compat modes.
CONFIGS = {
    "patch-gray-modern": ("patch", "gray", "modern", 32, 600),
    "patch-color-official": ("patch", "color", "official", 24, 400),
    "patch-gray-official": ("patch", "gray", "official", 40, 800),
    "point-gray-official": ("point", "gray", "official", 32, 500),
    "point-color-modern": ("point", "color", "modern", 28, 300),
    "point-gray-modern": ("point", "gray", "modern", 24, 200),
}

#: (system, weight) pairs run with every configuration; weight 4 is a x 1.8
#: (diverges for category 00000 with enough points).
PAIRS = [("cat00000", 0), ("cat00000", 4), ("cat00001", 7), ("diverging", 0), ("zero_probability_map", 9),
         ("ten_maps", 13)]
#: Degenerate systems (zero spans, inf, every point trimmed): the rescale and
#: NaN paths, which do not depend on the rasteriser, in both compat modes.
DEGENERATE_PAIRS = [("all_zero", 3), ("nan_within_100", 0), ("identity", 2), ("inf_coefficient", 4),
                    ("huge_offsets", 20), ("expanding", 0)]
DEGENERATE_CONFIGS = ["patch-gray-modern", "patch-color-official", "point-gray-official"]


def _config(name: str, **kw) -> RenderConfig:
    mode, color, compat, size, points = CONFIGS[name]
    base = dict(mode=mode, color=color, compat=compat, size=size, points=points, patches=2, flips=4, seed=11,
                degenerate="keep" if compat == "official" else "replace")
    base.update(kw)
    return RenderConfig(**base)


def assert_same_block(got, want, what: str = "") -> None:
    """Images, fill, factors, record and draws identical."""
    assert got.category == want.category and got.weight == want.weight, what
    assert got.images.shape == want.images.shape, what
    assert got.images.dtype == want.images.dtype, what
    diff = np.flatnonzero(np.asarray(got.images) != want.images)
    assert diff.size == 0, f"{what}: {diff.size} pixel values differ, first at flat index {diff[:1]}"
    assert got.fill == want.fill, f"{what}: fill {got.fill} != {want.fill}"
    np.testing.assert_array_equal(got.factors, want.factors, err_msg=what)
    assert got.record == want.record, f"{what}: record {got.record} != {want.record}"
    assert list(got.draws) == list(want.draws), what


_RENDERERS: dict = {}


def _pair(cfg: RenderConfig):
    """(CUDARenderer, CPURenderer) for ``cfg``, built once (kernels compile once)."""
    if cfg not in _RENDERERS:
        _RENDERERS[cfg] = (CUDARenderer(cfg), CPURenderer(cfg))
    return _RENDERERS[cfg]


def _both(cfg: RenderConfig, category: int, rows, weight: int, draws=None):
    gpu, cpu = _pair(cfg)
    ifs = IFS.from_rows(rows)
    with np.errstate(all="ignore"):
        return gpu.render_block(category, ifs, weight, draws=draws), cpu.render_block(category, ifs, weight,
                                                                                      draws=draws)


# --------------------------------------------------------------------------- device functions


@cuda.jit
def _streams_kernel(keys, counters, sm, mask, uni):
    i = cuda.grid(1)
    if i < keys.shape[0]:
        sm[i] = KC.splitmix64(keys[i], counters[i])
        mask[i] = KC.patch_mask(keys[i], counters[i])
        uni[i] = KC.uniform(keys[i], counters[i])


def test_stream_device_functions_match_cpu():
    keys = np.array([0, 1, 2**63 + 12345, 2**64 - 1, 0x5EED000000000000, 977], dtype=np.uint64)
    counters = np.array([0, 1, 7, 199_999, 2**31 + 5, 12], dtype=np.int64)
    sm = np.zeros(6, dtype=np.uint64)
    mask = np.zeros(6, dtype=np.int64)
    uni = np.zeros(6, dtype=np.float64)
    _streams_kernel[2, 4](keys, counters, sm, mask, uni)
    for i in range(6):
        assert sm[i] == K.splitmix64(keys[i], int(counters[i]))
        assert mask[i] == K.patch_mask(keys[i], int(counters[i]))
        u = np.empty(int(counters[i]) + 1) if counters[i] < 10**6 else None
        if u is not None:
            K.fill_uniform(keys[i], u)
            assert uni[i] == u[-1]


def _special_points(kind: str, n: int = 64) -> tuple:
    rs = np.random.RandomState(len(kind))
    xs, ys = rs.normal(size=n), rs.normal(size=n) * 3.0
    if kind == "signed_zeros":
        xs[::3], ys[1::3] = -0.0, 0.0
    elif kind == "infinities":
        xs[5], xs[9], ys[7] = np.inf, -np.inf, np.inf
    elif kind == "span_overflows":
        xs[3], xs[4], ys[2], ys[6] = 1e308, -1e308, 1.5e308, -1.2e308
    elif kind == "all_equal":
        xs[:], ys[:] = 0.25, -7.0
    elif kind == "subnormal":
        xs *= 5e-324
        ys = np.abs(ys) * 1e-310
    elif kind == "nan_inside":  # the last point is finite: no trimming; min/max skip NaN
        xs[10], ys[20] = np.nan, np.nan
    elif kind.startswith("nan_from_"):  # a chaos game's NaNs: a suffix per axis (x from fx, y from fy)
        fx, fy = (int(v) for v in kind[len("nan_from_"):].split("_"))
        xs[min(fx, n):], ys[min(fy, n):] = np.nan, np.nan
    return xs, ys


# (first NaN of x, first NaN of y) over 400 points; 400 = no NaN on that axis.
NAN_SUFFIXES = ["nan_from_399_399", "nan_from_250_250", "nan_from_250_252", "nan_from_252_250", "nan_from_300_120",
                "nan_from_120_300", "nan_from_300_210", "nan_from_300_199", "nan_from_150_400", "nan_from_400_150",
                "nan_from_99_300", "nan_from_300_99", "nan_from_100_100", "nan_from_0_0", "nan_from_5_400"]


@pytest.mark.parametrize("x86_cast", [False, True])
@pytest.mark.parametrize("kind", ["normal", "signed_zeros", "infinities", "span_overflows", "all_equal",
                                  "subnormal", "nan_inside"] + NAN_SUFFIXES)
def test_rescale_kernel_matches_cpu(kind: str, x86_cast: bool) -> None:
    """The GPU NaN trim and rescale against the CPU kernels on special values, width != height."""
    width, height, pad = 40, 33, 5
    xs, ys = _special_points(kind, 400 if kind.startswith("nan_from_") else 64)
    n = xs.size
    px = np.full((1, n), -99, dtype=np.int32)
    py = np.full((1, n), -99, dtype=np.int32)
    npts = np.full(1, -1, dtype=np.int32)
    nan = np.full(1, -1, dtype=np.int32)
    act = np.zeros(1, dtype=np.int32)
    KC.rescale_kernel[KC.MAX_GRID, KC.TPB](act, xs[None].copy(), ys[None].copy(), width, height, pad, x86_cast,
                                           px, py, npts, nan)
    hx, hy = xs.copy(), ys.copy()
    m = K.trim_nan(hx, hy, np.empty(n, dtype=np.bool_))
    assert npts[0] == m
    assert nan[0] == int(m < n) == int(kind.startswith("nan_from_"))
    want_x = np.empty(n, dtype=np.int32)
    want_y = np.empty(n, dtype=np.int32)
    K.rescale(hx, hy, m, width, height, pad, want_x, want_y, x86_cast)
    np.testing.assert_array_equal(px[0, :m], want_x[:m])
    np.testing.assert_array_equal(py[0, :m], want_y[:m])
    assert (px[0, m:] == -99).all() and (py[0, m:] == -99).all()


@pytest.mark.parametrize("width, height", [(40, 33), (8, 8), (64, 3)])
def test_fill_kernels_match_count_filled(width: int, height: int) -> None:
    """Both fill kernels (global and shared-memory bitmap) give the CPU's count and the exact bitmap."""
    rs = np.random.RandomState(width * height)
    slots, n = 3, 300
    px = rs.randint(-3, width + 3, size=(slots, n)).astype(np.int32)
    py = rs.randint(-3, height + 3, size=(slots, n)).astype(np.int32)
    px[1, 100:200], py[1, 100:200] = px[1, :100], py[1, :100]  # repeated pixels count once
    npts = np.array([n, 250, 0], dtype=np.int32)  # points past npts are ignored; an empty slot
    words = (width * height + 63) // 64
    act = np.arange(slots, dtype=np.int32)
    results = []
    for shared in (False, True):
        hits = np.full((slots, words), 0xFFFF, dtype=np.uint64)  # the global kernel needs its clearing pass
        filled = np.full(slots, -5, dtype=np.int64)
        if shared:
            KC.fill_shared_kernel[KC.MAX_GRID, KC.TPB, 0, words * 8](act, px, py, npts, width, height, hits, filled)
        else:
            KC.clear_fill_kernel[(KC.MAX_GRID, KC.MAX_GRID), KC.TPB](act, hits, filled)
            KC.fill_kernel[(KC.MAX_GRID, KC.MAX_GRID), KC.TPB](act, px, py, npts, width, height, hits, filled)
        results.append((hits.copy(), filled.copy()))
    for s in range(slots):
        m = int(npts[s])
        want = K.count_filled(px[s], py[s], m, width, height, np.zeros(words, dtype=np.uint64))
        image = np.zeros(width * height, dtype=bool)
        inside = (px[s, :m] >= 0) & (py[s, :m] >= 0) & (px[s, :m] < width) & (py[s, :m] < height)
        image[(py[s, :m] * width + px[s, :m])[inside]] = True
        bitmap = np.zeros(words * 64, dtype=bool)
        bitmap[:width * height] = image
        want_bits = (bitmap.reshape(words, 64).astype(np.uint64) << np.arange(64, dtype=np.uint64)).sum(axis=1)
        for hits, filled in results:
            assert filled[s] == want == image.sum()
            np.testing.assert_array_equal(hits[s], want_bits)


# --------------------------------------------------------------------------- block parity


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("system, weight", PAIRS)
def test_block_matches_cpu(config: str, system: str, weight: int) -> None:
    cfg = _config(config)
    got, want = _both(cfg, 3, SYSTEMS[system], weight)
    assert_same_block(got, want, f"{config} {system} w{weight}")


@pytest.mark.parametrize("config", DEGENERATE_CONFIGS)
@pytest.mark.parametrize("system, weight", DEGENERATE_PAIRS)
def test_degenerate_block_matches_cpu(config: str, system: str, weight: int) -> None:
    cfg = _config(config)
    got, want = _both(cfg, 3, SYSTEMS[system], weight)
    assert_same_block(got, want, f"{config} {system} w{weight}")


@pytest.mark.parametrize("config", ["patch-gray-modern", "point-gray-modern"])
def test_block_matches_cpu_with_the_global_fill_bitmap(config: str, monkeypatch) -> None:
    """Images too large for the shared-memory bitmap take fill_kernel: the same blocks."""
    monkeypatch.setattr(KC, "FILL_SHARED_BYTES", 0)
    cfg = _config(config, seed=12)
    for system, weight in [("cat00000", 4), ("diverging", 0), ("cat00001", 7)]:
        got, want = _both(cfg, 3, SYSTEMS[system], weight)
        assert_same_block(got, want, f"{config} {system} w{weight} (global bitmap)")


def test_cases_reach_their_branches() -> None:
    """The parity cases above cover the NaN trim, degenerate records and all-black images."""
    cfg = _config("patch-gray-modern")
    gpu, _ = _pair(cfg)
    before = gpu.nan_trimmed
    got, want = _both(cfg, 3, DIVERGING, 0)
    assert gpu.nan_trimmed > before
    got, want = _both(cfg, 3, SYSTEMS["nan_within_100"], 0)
    assert want.fill == 0.0 and not want.images.any()
    # Category 00000 x 1.8 at this size is degenerate and replaced.
    got, want = _both(_config("point-gray-modern", min_fill=0.1), 0, CAT_00000, 4)
    assert want.record is not None and "replaced_by" in want.record


@pytest.mark.parametrize("policy", ["replace", "record", "keep"])
def test_degenerate_policies_match_cpu(policy: str) -> None:
    # A high floor makes most variants degenerate: several replacement rounds,
    # some ending on the identity factors.
    cfg = _config("point-gray-modern", degenerate=policy, min_fill=0.3)
    for rows, weight in ((CAT_00000, 4), (CAT_00001, 1), (CAT_00002, 0)):
        got, want = _both(cfg, 0, rows, weight)
        assert_same_block(got, want, f"{policy} w{weight}")
    if policy == "replace":
        assert want.record is not None and "replaced_by" in want.record


@pytest.mark.parametrize("flips", [1, 3])
def test_fewer_flips_and_chosen_draws(flips: int) -> None:
    cfg = _config("patch-gray-modern", flips=flips, patches=3)
    got, want = _both(cfg, 4, CAT_00001, 5, draws=[2, 0])
    assert_same_block(got, want, f"flips {flips}")
    assert got.images.shape[0] == 2 * flips


# --------------------------------------------------------------------------- batches


def _jobs():
    return [(0, IFS.from_rows(CAT_00000), 4), (1, IFS.from_rows(CAT_00001), 0, [1]),
            (2, IFS.from_rows(DIVERGING), 2), (7, IFS.from_rows(SYSTEMS["ten_maps"]), 11),
            (5, IFS.from_rows(CAT_00002), 24)]


@pytest.mark.parametrize("config", ["patch-color-official", "point-gray-modern"])
def test_batch_independence(config: str) -> None:
    """A block gives the CPU's images in one launch with others, or split across launches.

    (Alone, it gives the CPU's images too: test_block_matches_cpu.)"""
    cfg = _config(config, min_fill=0.1)
    jobs = _jobs()
    with np.errstate(all="ignore"):
        together = CUDARenderer(cfg, max_batch=8)
        dev, blocks = together.render_blocks_device(jobs, with_blocks=True)
        split = CUDARenderer(cfg, max_batch=2).render_blocks_device(jobs)
        cpu = CPURenderer(cfg)
        images = dev.copy_to_host()
        assert images.shape == (sum(len(j[3]) if len(j) > 3 else cfg.draws for j in jobs) * cfg.flips,
                                cfg.size, cfg.size, cfg.channels)
        np.testing.assert_array_equal(split.copy_to_host(), images)
        assert together.nan_trimmed > 0  # the diverging job
        if cfg.compat == "modern":
            assert any(b.record for b in blocks)  # a replaced variant inside the batch
        offset = 0
        for job, block in zip(jobs, blocks):
            draws = job[3] if len(job) > 3 else None
            want = cpu.render_block(*job[:3], draws=draws)
            k = want.images.shape[0]
            np.testing.assert_array_equal(images[offset:offset + k], want.images)
            block.images = block.images.copy_to_host()
            assert_same_block(block, want, f"job {job[:3:2]}")
            offset += k


def test_render_block_into_reused_buffer() -> None:
    cfg = _config("patch-gray-modern")
    gpu, cpu = _pair(cfg)
    buf = gpu.block_buffer(cfg.draws)
    got = gpu.render_block(1, IFS.from_rows(CAT_00002), 6, out=buf)
    assert got.images is buf
    assert_same_block(got, cpu.render_block(1, IFS.from_rows(CAT_00002), 6), "into block_buffer")


# --------------------------------------------------------------------------- entry points


def test_create_renderer_cuda() -> None:
    cfg = _config("point-color-modern")
    renderer = create_renderer(cfg, "cuda")
    assert isinstance(renderer, CUDARenderer) and renderer.device == "cuda"
    with np.errstate(all="ignore"):
        got = renderer.render_block(2, IFS.from_rows(CAT_00001), 3)
    assert_same_block(got, CPURenderer(cfg).render_block(2, IFS.from_rows(CAT_00001), 3), "create_renderer")


def test_to_torch() -> None:
    cfg = _config("point-gray-modern")
    gpu, cpu = _pair(cfg)
    dev = gpu.render_blocks_device([(0, IFS.from_rows(CAT_00002), 1)])
    t = checked_to_torch(gpu, dev)
    if t is not None:  # pragma: no cover - real GPU only
        np.testing.assert_array_equal(t.cpu().numpy(), cpu.render_block(0, IFS.from_rows(CAT_00002), 1).images)



# -- the simulator's block scheduler of the test runs (tests/simulator_poll.py) --------------------

@pytest.mark.skipif(not KC.SIMULATOR, reason="the simulator's scheduler")
def test_the_simulator_runs_with_the_sleeping_scheduler():
    from numba.cuda.simulator import kernel

    import simulator_poll

    assert kernel.BlockManager.run is simulator_poll._run


@cuda.jit
def _reverse_in_shared(values, out):
    """Each thread writes one slot, waits for the block, then reads its mirror slot (twice)."""
    shared = cuda.shared.array(16, dtype=np.int64)
    i = cuda.threadIdx.x
    shared[i] = values[cuda.blockIdx.x * 16 + i]
    cuda.syncthreads()
    mirrored = shared[15 - i]
    cuda.syncthreads()
    shared[i] = mirrored * 2
    cuda.syncthreads()
    out[cuda.blockIdx.x * 16 + i] = shared[15 - i]


def test_syncthreads_orders_the_block():
    values = np.arange(32, dtype=np.int64)
    out = np.zeros(32, dtype=np.int64)
    _reverse_in_shared[2, 16](values, out)
    assert out.tolist() == (values * 2).tolist()


@cuda.jit
def _fail_in_thread_three(out):
    if cuda.threadIdx.x == 3:
        out[99] = 1  # out of bounds: the simulator raises IndexError in that thread
    cuda.syncthreads()
    out[cuda.threadIdx.x] = 1


@pytest.mark.skipif(not KC.SIMULATOR, reason="only the simulator checks bounds")
def test_an_error_in_one_thread_ends_the_launch():
    with pytest.raises(IndexError, match="tid=\\[3, 0, 0\\]"):
        _fail_in_thread_three[1, 8](np.zeros(8, dtype=np.int64))
