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

from fractaldb.ifs import IFS
from fractaldb.render import CPURenderer, RenderConfig, create_renderer
from test_render import CAT_00000, CAT_00001, CAT_00002

if not cuda.is_available():  # pragma: no cover - the driver test sets the simulator
    pytest.skip("needs a GPU or NUMBA_ENABLE_CUDASIM=1", allow_module_level=True)

from fractaldb.kernels import cuda as KC  # noqa: E402
from fractaldb.kernels import ifs as K  # noqa: E402
from fractaldb.render_cuda import CUDARenderer  # noqa: E402

# NumPy scalars overflow on purpose in splitmix64 under the simulator, and
# diverging systems divide by zero: both are the defined behaviour.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

#: 10 maps: more than the CPU kernel's 8 unrolled slots.
_RS = np.random.RandomState(5)
_TEN = np.concatenate([_RS.uniform(-0.6, 0.6, (10, 6)), np.full((10, 1), 0.1)], axis=1)

#: Overflows to inf after about 175 steps, then ``inf * 0`` is NaN: the host
#: NaN-trim fallback runs with every point count used here (>= 200).
DIVERGING = [[60.0, 0.0, 0.0, 60.0, 1.0, 1.0, 0.5], [60.0, 0.0, 0.0, 60.0, -1.0, 0.5, 0.5]]

SYSTEMS = {
    "cat00000": CAT_00000,
    "cat00001": CAT_00001,
    "cat00002": CAT_00002,
    "diverging": DIVERGING,  # overflow -> inf -> NaN: the host NaN-trim fallback
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
    elif kind == "nan_last":
        xs[-1] = ys[-1] = np.nan
    return xs, ys


@pytest.mark.parametrize("x86_cast", [False, True])
@pytest.mark.parametrize("kind", ["normal", "signed_zeros", "infinities", "span_overflows", "all_equal",
                                  "subnormal", "nan_inside", "nan_last"])
def test_rescale_kernel_matches_cpu(kind: str, x86_cast: bool) -> None:
    """The GPU rescale against the CPU kernel on special values, width != height."""
    width, height, pad = 40, 33, 5
    xs, ys = _special_points(kind)
    n = xs.size
    px = np.full((1, n), -99, dtype=np.int32)
    py = np.full((1, n), -99, dtype=np.int32)
    nan = np.full(1, -1, dtype=np.int32)
    act = np.zeros(1, dtype=np.int32)
    KC.rescale_kernel[KC.MAX_GRID, KC.TPB](act, xs[None].copy(), ys[None].copy(), width, height, pad, x86_cast,
                                           px, py, nan)
    assert nan[0] == int(kind == "nan_last")
    if kind == "nan_last":
        assert (px == -99).all()  # left to the host fallback
        return
    want_x = np.empty(n, dtype=np.int32)
    want_y = np.empty(n, dtype=np.int32)
    K.rescale(xs.copy(), ys.copy(), n, width, height, pad, want_x, want_y, x86_cast)
    np.testing.assert_array_equal(px[0], want_x)
    np.testing.assert_array_equal(py[0], want_y)


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


def test_cases_reach_their_branches() -> None:
    """The parity cases above cover the NaN fallback, degenerate records and all-black images."""
    cfg = _config("patch-gray-modern")
    gpu, _ = _pair(cfg)
    before = gpu.nan_fallbacks
    got, want = _both(cfg, 3, DIVERGING, 0)
    assert gpu.nan_fallbacks > before
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
        assert together.nan_fallbacks > 0  # the diverging job
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
    from fractaldb.errors import ConfigError

    cfg = _config("point-gray-modern")
    gpu, cpu = _pair(cfg)
    dev = gpu.render_blocks_device([(0, IFS.from_rows(CAT_00002), 1)])
    if KC.SIMULATOR:  # simulated device arrays live in host memory: nothing to share
        with pytest.raises(ConfigError, match="to_torch needs a real GPU"):
            gpu.to_torch(dev)
        return
    torch = pytest.importorskip("torch")  # pragma: no cover - real GPU only
    if not torch.cuda.is_available():  # pragma: no cover
        with pytest.raises(ConfigError, match="to_torch needs a CUDA build"):
            gpu.to_torch(dev)
        return
    t = gpu.to_torch(dev)  # pragma: no cover
    assert t.is_cuda and tuple(t.shape) == tuple(dev.shape) and t.dtype == torch.uint8
    assert t.data_ptr() == dev.__cuda_array_interface__["data"][0]  # zero-copy
    np.testing.assert_array_equal(t.cpu().numpy(), cpu.render_block(0, IFS.from_rows(CAT_00002), 1).images)

