"""Perlin CUDA renderer cases: the GPU twin must give the CPU renderer's images exactly.

Not collected by a plain ``pytest`` run (the name does not start with
``test_``): ``tests/test_cuda.py::test_perlin_simulator_cases_pass`` runs this
file in a subprocess under numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``
must be set before numba is imported).  On a machine with an NVIDIA GPU the
same cases run on the hardware, where they also check the arithmetic (no
fused multiply-add, libdevice's floor, the float-to-integer conversions)::

    python -m pytest tests/perlin_cuda_cases.py -q

Images compare with ``==`` on every byte; float fields compare bit for bit
(``view(uint64)``, so even the sign of a zero must agree).  Sizes stay tiny
(16-40 px): the simulator runs every CUDA thread as a Python thread.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import cuda, float64, int32

from fractaldb.errors import ConfigError
from tinyset import checked_to_torch
from fractaldb.families.perlin import kernels as K
from fractaldb.families import create_renderer  # noqa: E402
from fractaldb.families.perlin.model import (
    PALETTES, PerlinClass, PerlinRenderConfig, PerlinRenderer, class_gain, instance_key,
    octave_table,
)

if not cuda.is_available():  # pragma: no cover - the driver test sets the simulator
    pytest.skip("needs a GPU or NUMBA_ENABLE_CUDASIM=1", allow_module_level=True)

from fractaldb.ifs import kernels_cuda as KC  # noqa: E402
from fractaldb.families.perlin import kernels_cuda as KP  # noqa: E402
from fractaldb.families.perlin.render_cuda import PerlinCUDARenderer  # noqa: E402

# splitmix64 wraps around on purpose: under the simulator NumPy scalars warn.
# On a GPU, the tiny launches here warn about occupancy.
pytestmark = [pytest.mark.filterwarnings("ignore::RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:.*Grid size")]

#: Classes reaching every branch (name -> class).  At 16 px the Nyquist
#: taper weighs octaves from 4 cycles on and drops those from 8 on.
CLASSES = {
    "one_octave_gray": PerlinClass(1.0, 1, 0.5, 2.0, "gray"),
    "six_octaves_viridis": PerlinClass(3.7, 6, 0.55, 2.3, "viridis"),
    "below_one_cycle_magma": PerlinClass(0.6, 4, 0.9, 1.6, "magma"),  # tileable rounds 0.6 up to 1
    "octaves_dropped_gray": PerlinClass(11.2, 3, 0.35, 2.9, "gray"),  # octave 0 past Nyquist at 16 px
    "lacunarity_near_one_terrain": PerlinClass(2.5, 5, 1.0, 1.05, "terrain"),
    "max_octaves_ocean": PerlinClass(0.3, 16, 0.8, 1.2, "ocean"),  # all 16 kept at 24 px
    "max_octaves_tapered_ice": PerlinClass(1.3, 16, 0.95, 1.5, "ice"),  # some dropped, some faded
    "half_nyquist_gray": PerlinClass(5.5, 2, 0.6, 1.4, "gray"),  # octave 1 in the taper's fade
    "huge_frequency_gray": PerlinClass(1e19, 2, 0.5, 2.0, "gray"),  # lattice coordinates past 2^63
}
#: (size, tileable) render settings every class runs with.
CONFIGS = [(16, False), (17, True), (24, False), (24, True)]
#: Keys: ordinary ones and the extremes of the 64-bit range.
KEYS = [instance_key(5, 3, 11), np.uint64(0), np.uint64(2**64 - 1)]

_RENDERERS: dict = {}


def _pair(cfg: PerlinRenderConfig, max_batch: int = 1024):
    """(PerlinCUDARenderer, PerlinRenderer) for ``cfg``, built once."""
    if (cfg, max_batch) not in _RENDERERS:
        _RENDERERS[cfg, max_batch] = (PerlinCUDARenderer(cfg, max_batch=max_batch), PerlinRenderer(cfg))
    return _RENDERERS[cfg, max_batch]


def _cases(configs) -> list:
    """(class name, size, tileable) for every class and config.

    Without tileable renders of frequencies past 2^63: their integer periods
    do not fit int64, and ``octave_table`` (the CPU's) cannot build them.
    """
    return [(name, size, tileable) for name, cls in CLASSES.items() for size, tileable in configs
            if not (tileable and cls.frequency >= 2.0**63)]


def assert_same_image(got, want, what: str = "") -> None:
    assert got.shape == want.shape and got.dtype == want.dtype == np.uint8, what
    diff = np.flatnonzero(np.asarray(got) != want)
    assert diff.size == 0, f"{what}: {diff.size} bytes differ, first at flat index {diff[:1]}"


def assert_same_bits(got, want, what: str = "") -> None:
    assert got.shape == want.shape and got.dtype == want.dtype == np.float64, what
    diff = np.flatnonzero(got.view(np.uint64) != want.view(np.uint64))
    assert diff.size == 0, (f"{what}: {diff.size} values differ in their bits, first at flat index {diff[:1]}: "
                            f"{got.ravel()[diff[:1]]} != {want.ravel()[diff[:1]]}")


# --------------------------------------------------------------------------- device functions


@cuda.jit
def _scalar_kernel(ts, vs, gain, fades, levels):
    for i in range(cuda.grid(1), ts.shape[0], cuda.gridsize(1)):
        fades[i] = KP.fade(ts[i])
        levels[i] = KP.level(vs[i], gain)


def test_fade_and_level_match_cpu() -> None:
    rs = np.random.RandomState(3)
    ts = np.concatenate([rs.uniform(0.0, 1.0, 40), [0.0, 0.5, 1.0 - 2**-53, 1e-300, 5e-324]])
    vs = np.concatenate([rs.normal(0.0, 0.5, 40), [0.0, -0.0, 10.0, -10.0, 1.0 / 7.0]])
    gain = class_gain(octave_table(CLASSES["six_octaves_viridis"], 24, False)[1])
    fades = np.empty_like(ts)
    levels = np.empty(ts.size, dtype=np.uint8)
    _scalar_kernel[KC.MAX_GRID, KC.TPB](ts, vs, gain, fades, levels)
    assert_same_bits(fades, np.array([K.fade(t) for t in ts]), "fade")
    np.testing.assert_array_equal(levels, [K._level(v, gain) for v in vs])
    assert levels.min() == 0 and levels.max() == 255  # the clip reached both ends


@cuda.jit
def _grad_kernel(perm, a, b, dx, dy, out):
    for i in range(cuda.grid(1), a.shape[0], cuda.gridsize(1)):
        out[i] = KP._grad(perm, a[i], b[i], dx[i], dy[i])


def test_gradients_are_the_cpu_table() -> None:
    """``_grad`` selects ``(GRAD_X[h], GRAD_Y[h])`` for each of the 8 hashes, signed zeros included."""
    perm = np.arange(256, dtype=np.int32)  # hash(a, 0) = a: every h = a & 7
    a = np.repeat(np.arange(8), 6).astype(np.int64)
    d = np.array([(0.25, -0.75), (-0.0, 0.0), (0.0, -0.5), (-1.0, -0.0), (0.5, 1e-300), (-1e-310, 0.75)] * 8)
    out = np.empty(a.size)
    _grad_kernel[KC.MAX_GRID, KC.TPB](perm, a, np.zeros_like(a), d[:, 0].copy(), d[:, 1].copy(), out)
    want = np.array([K.GRAD_X[h] * dx + K.GRAD_Y[h] * dy for h, (dx, dy) in zip(a, d)])
    assert_same_bits(out, want, "gradient dot products")


#: A module global: a compile-time constant for the shared array's shape.
_MAX_OCTAVES = KP.MAX_OCTAVES


@cuda.jit
def _lattice_kernel(keys, perms, offs):
    perm = cuda.shared.array(256, int32)
    draws = cuda.shared.array(256, int32)
    sh = cuda.shared.array((_MAX_OCTAVES, 2), float64)
    for s in range(cuda.blockIdx.x, keys.shape[0], cuda.gridDim.x):
        KP._lattice(keys[s], _MAX_OCTAVES, perm, draws, sh)
        for i in range(cuda.threadIdx.x, 256, cuda.blockDim.x):
            perms[s, i] = perm[i]
        for k in range(cuda.threadIdx.x, 2 * _MAX_OCTAVES, cuda.blockDim.x):
            offs[s, k >> 1, k & 1] = sh[k >> 1, k & 1]
        cuda.syncthreads()


def test_lattice_matches_cpu() -> None:
    """Permutation and offsets drawn on the device == ``fill_permutation`` / ``fill_offsets``."""
    keys = np.array([int(k) for k in KEYS] + [int(instance_key(9, 0, i)) for i in range(3)], dtype=np.uint64)
    perms = np.zeros((keys.size, 256), dtype=np.int32)
    offs = np.zeros((keys.size, KP.MAX_OCTAVES, 2))
    _lattice_kernel[KC.MAX_GRID, KP.PERLIN_TPB](keys, perms, offs)
    for s, key in enumerate(keys):
        perm = np.empty(512, dtype=np.int32)
        K.fill_permutation(key, perm)
        want = np.empty((KP.MAX_OCTAVES, 2))
        K.fill_offsets(key, want)
        np.testing.assert_array_equal(perms[s], perm[:256])
        assert_same_bits(offs[s], want, f"offsets of key {key}")


# --------------------------------------------------------------------------- single instances


@pytest.mark.parametrize("name, size, tileable", _cases(CONFIGS))
def test_render_matches_cpu(name: str, size: int, tileable: bool) -> None:
    cls = CLASSES[name]
    gpu, cpu = _pair(PerlinRenderConfig(size=size, tileable=tileable))
    key = KEYS[(list(CLASSES).index(name) + size) % len(KEYS)]
    assert_same_image(gpu.render(cls, key), cpu.render(cls, key), f"{name} {size} {tileable}")


@pytest.mark.parametrize("name, size, tileable", _cases([(16, False), (17, True)]))
def test_field_matches_cpu_bit_for_bit(name: str, size: int, tileable: bool) -> None:
    cls = CLASSES[name]
    gpu, cpu = _pair(PerlinRenderConfig(size=size, tileable=tileable))
    key = KEYS[1] if tileable else KEYS[2]
    got = gpu.render_field(cls, key)
    assert got is gpu.field and got.shape == (size, size)
    assert_same_bits(got, cpu.render_field(cls, key).copy(), f"{name} {size} {tileable}")


def test_larger_image_matches_cpu() -> None:
    """One 40 px render: many pixels per thread in the grid-stride loop, a non-power-of-two size."""
    gpu, cpu = _pair(PerlinRenderConfig(size=40))
    cls = CLASSES["six_octaves_viridis"]
    key = instance_key(1, 2, 3)
    assert_same_image(gpu.render(cls, key), cpu.render(cls, key), "40 px")


def test_cases_reach_their_branches() -> None:
    """The classes above cover dropped octaves, faded octaves, 16 octaves and one octave."""
    def kept(name, size=16, tileable=False):
        return len(octave_table(CLASSES[name], size, tileable)[0])

    assert kept("octaves_dropped_gray") == 1 < CLASSES["octaves_dropped_gray"].octaves
    assert kept("max_octaves_ocean", 24) == 16
    assert 1 < kept("max_octaves_tapered_ice") < 16
    freqs, amps, _ = octave_table(CLASSES["half_nyquist_gray"], 16, False)
    assert 0.5 < 2.0 * freqs[1] / 16 < 1.0  # in the taper's fade: weight strictly between 0 and 1
    assert kept("one_octave_gray") == 1
    assert octave_table(CLASSES["below_one_cycle_magma"], 17, True)[2][0] == 1  # 0.6 cycles -> period 1


# --------------------------------------------------------------------------- batches


def _items():
    """Mixed colour classes: different octave counts (padded tables), palettes and gains."""
    names = ["six_octaves_viridis", "below_one_cycle_magma", "lacunarity_near_one_terrain", "max_octaves_ocean",
             "max_octaves_tapered_ice"]
    return [(CLASSES[n], instance_key(2, i, j)) for i, n in enumerate(names) for j in range(2)]


@pytest.mark.parametrize("tileable", [False, True])
def test_batch_matches_cpu_and_is_batch_independent(tileable: bool) -> None:
    """Each instance of a mixed launch is the CPU's image; so is every split of the list into launches."""
    cfg = PerlinRenderConfig(size=16, tileable=tileable)
    items = _items()
    whole = PerlinCUDARenderer(cfg, max_batch=64).render_many_device(items)
    assert tuple(whole.shape) == (len(items), 16, 16, 3)
    images = whole.copy_to_host()
    cpu = PerlinRenderer(cfg)
    for i, (cls, key) in enumerate(items):
        assert_same_image(images[i], cpu.render(cls, key), f"item {i} {cls}")
    # Other batch sizes and another order: the same image per item.
    split = PerlinCUDARenderer(cfg, max_batch=3).render_many_device(items).copy_to_host()
    assert_same_image(split, images, "max_batch=3")
    order = [7, 0, 9, 3]
    again = PerlinCUDARenderer(cfg, max_batch=2).render_many_device([items[i] for i in order]).copy_to_host()
    assert_same_image(again, images[order], "reordered subset")


def test_gray_batch_and_out() -> None:
    cfg = PerlinRenderConfig(size=16)
    gpu, cpu = _pair(cfg, max_batch=2)
    items = [(CLASSES["one_octave_gray"], KEYS[0]), (CLASSES["octaves_dropped_gray"], KEYS[1]),
             (CLASSES["half_nyquist_gray"], KEYS[2])]
    out = cuda.device_array((3, 16, 16, 1), dtype=np.uint8)
    got = gpu.render_many_device(items, out=out)
    assert got is out
    images = out.copy_to_host()
    for i, (cls, key) in enumerate(items):
        assert_same_image(images[i], cpu.render(cls, key), f"gray item {i}")


def test_mixed_channel_counts_are_refused() -> None:
    gpu, _ = _pair(PerlinRenderConfig(size=16))
    items = [(CLASSES["six_octaves_viridis"], KEYS[0]), (CLASSES["one_octave_gray"], KEYS[0])]
    with pytest.raises(ConfigError) as info:
        gpu.render_many_device(items)
    assert str(info.value) == ("render_many_device needs items of one channel count, got 1 gray (1 channel, "
                               "e.g. item 1) and 1 colour (3 channels); render gray and colour palettes in "
                               "separate calls")


@pytest.mark.parametrize("bad, fragment", [
    (lambda: np.empty((1, 16, 16, 3), np.uint8), "got a numpy.ndarray of shape (1, 16, 16, 3)"),
    (lambda: cuda.device_array((2, 16, 16, 3), np.uint8), "got a device array of shape (2, 16, 16, 3)"),
    (lambda: cuda.device_array((1, 16, 16, 1), np.uint8), "got a device array of shape (1, 16, 16, 1)"),
    (lambda: cuda.device_array((1, 16, 16, 3), np.float32), "and dtype float32"),
])
def test_render_many_device_bad_out(bad, fragment) -> None:
    gpu, _ = _pair(PerlinRenderConfig(size=16))
    with pytest.raises(ConfigError) as info:
        gpu.render_many_device([(CLASSES["six_octaves_viridis"], KEYS[0])], out=bad())
    assert str(info.value).startswith("out must be a numba.cuda device array of shape (1, 16, 16, 3) and "
                                      "dtype uint8, ")
    assert fragment in str(info.value)


def test_empty_items() -> None:
    gpu, _ = _pair(PerlinRenderConfig(size=16))
    assert tuple(gpu.render_many_device([]).shape) == (0, 16, 16, 1)
    out = cuda.device_array((0, 16, 16, 3), dtype=np.uint8)
    assert gpu.render_many_device([], out=out) is out


# --------------------------------------------------------------------------- the renderer's interface


def test_render_into_out_and_bad_out() -> None:
    """``render`` has the CPU renderer's contract: ``out`` is filled and returned; a bad ``out`` is a ValueError."""
    gpu, cpu = _pair(PerlinRenderConfig(size=16))
    for cls in (CLASSES["one_octave_gray"], CLASSES["six_octaves_viridis"]):
        out = np.full((16, 16, cls.channels), 7, dtype=np.uint8)
        got = gpu.render(cls, KEYS[0], out=out)
        assert got is out and gpu.shape(cls) == cpu.shape(cls) == out.shape
        assert_same_image(out, cpu.render(cls, KEYS[0]), f"into out, {cls.palette}")
    for bad in (np.empty((16, 16, 3), np.uint8), np.empty((16, 16, 1), np.float64),
                np.empty((16, 32, 1), np.uint8)[:, ::2]):
        with pytest.raises(ValueError) as got_err:
            gpu.render(CLASSES["one_octave_gray"], KEYS[0], out=bad)
        with pytest.raises(ValueError) as want_err:
            cpu.render(CLASSES["one_octave_gray"], KEYS[0], out=bad)
        assert str(got_err.value) == str(want_err.value)
        assert str(got_err.value).startswith("out must be a C-contiguous uint8 array of shape (16, 16, 1)")


@pytest.mark.parametrize("max_batch", [0, -1, 2.5, True, "8"])
def test_bad_max_batch(max_batch) -> None:
    with pytest.raises(ConfigError, match=r"max_batch must be a positive integer, got"):
        PerlinCUDARenderer(PerlinRenderConfig(size=16), max_batch=max_batch)


def test_create_renderer_perlin_cuda() -> None:
    cfg = PerlinRenderConfig(size=16, tileable=True)
    renderer = create_renderer("perlin", cfg, "cuda")
    assert isinstance(renderer, PerlinCUDARenderer) and renderer.device == "cuda" and renderer.cfg is cfg
    cls = CLASSES["max_octaves_tapered_ice"]
    assert_same_image(renderer.render(cls, KEYS[0]), create_renderer("perlin", cfg, "cpu").render(cls, KEYS[0]),
                      "create_renderer")
    assert create_renderer("perlin", cfg).device == "cpu"


def test_palette_tables_on_the_device_are_the_palettes() -> None:
    gpu, _ = _pair(PerlinRenderConfig(size=16))
    luts = gpu._d_luts.copy_to_host()
    for i, name in enumerate(PALETTES):
        np.testing.assert_array_equal(luts[i], PALETTES[name], err_msg=name)


def test_to_torch() -> None:
    cfg = PerlinRenderConfig(size=16)
    gpu, cpu = _pair(cfg)
    items = [(CLASSES["six_octaves_viridis"], KEYS[0])]
    dev = gpu.render_many_device(items)
    t = checked_to_torch(gpu, dev)
    if t is not None:  # pragma: no cover - real GPU only
        assert tuple(t.shape) == (1, 16, 16, 3)
        assert_same_image(t.cpu().numpy()[0], cpu.render(*items[0]), "to_torch")
