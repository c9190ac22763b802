"""3-D fractal CUDA renderer cases: the GPU twin must give the CPU renderer's images exactly.

Not collected by a plain ``pytest`` run: ``tests/test_fractal3d.py::
test_cuda_simulator_cases_pass`` runs this file in a subprocess under numba's
CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``).  On a machine with an NVIDIA GPU
the same cases run on the hardware (``python -m pytest
tests/fractal3d_cuda_cases.py -q``), where they also check that no multiply-add
was fused.  Sizes stay tiny: the simulator runs each CUDA thread as a Python thread.
"""

from __future__ import annotations

import numpy as np
import pytest
from tinyset import cuda_case_marks

pytestmark = cuda_case_marks()

from fractaldb.families import create_renderer, get_family  # noqa: E402
from fractaldb.families.base import settings_of  # noqa: E402
from fractaldb.families.fractal3d import model as M  # noqa: E402

POINTS = 120
DIVERGING = M.Fractal3DClass([[1e200, 0, 0, 0, 0.5, 0, 0, 0, 0.5, 1.0, 0.1, 0.1, 1.0]])  # whatever the factors
#: Finite over 119 steps as it is (a = 300), but weight row 12 (a x 1.6) overflows: the
#: replacement finds a smaller factor (the third attempt, 1.253).
EDGE = M.Fractal3DClass([[300.0, 0, 0, 0, 0.5, 0, 0, 0, 0.5, 1.0, 0.1, 0.1, 1.0]])


def _settings(**kw):
    fam = get_family("fractal3d")
    base = {k: s.default for k, s in settings_of(fam.settings).items()}
    return fam.configure({**base, "points": POINTS, "image_size": 24, "n_views": 3, "instances": 145, **kw}, 7)


@pytest.mark.parametrize("views", ["mv", "random"])
@pytest.mark.parametrize("compat", ["official", "modern"])
def test_blocks_bit_identical(views, compat):
    cfg = _settings(views=views, compat=compat)
    cats = [M.candidate(7, 1), M.candidate(7, 86), DIVERGING]
    cpu = create_renderer("fractal3d", cfg, "cpu")
    gpu = create_renderer("fractal3d", cfg, "cuda", max_batch=2)
    assert gpu.device == "cuda"
    items = [(cats[0], 0, 0), (cats[1], 1, 108), (cats[2], 2, 6)]
    dev = gpu.render_many_device(items).copy_to_host()
    want = cpu.render_many_device(items)
    assert dev.shape == want.shape and np.array_equal(dev, want)
    assert want[:6].any()
    for cls, k, i in items:
        a, na, ra = cpu.render(cls, k, i, views=[2, 0])
        b, nb, rb = gpu.render(cls, k, i, views=[2, 0])
        assert np.array_equal(a, b) and na == nb and _same(ra, rb)
    assert gpu.render(cats[2], 2, 6)[1] == "xyz"


def _same(a, b):
    return (a is b) or (a is not None and b is not None and a is not False and b is not False
                        and np.array_equal(a, b))


@pytest.mark.parametrize("degenerate", ["replace", "record"])
@pytest.mark.parametrize("point_size,near", [(1, 1.0), (3, 0.1)])
def test_diverging_instances_and_point_sizes(degenerate, point_size, near):
    """The replacement of diverging instances and the earlier renderer's point size and near
    plane, on both twins: the same images, NaN axes and replacement factors."""
    cfg = _settings(degenerate=degenerate, point_size=point_size, near=near)
    cpu = create_renderer("fractal3d", cfg, "cpu")
    gpu = create_renderer("fractal3d", cfg, "cuda", max_batch=3)
    items = [(EDGE, 0, 12), (M.candidate(7, 1), 1, 3), (DIVERGING, 2, 6), (EDGE, 3, 0)]
    dev = gpu.render_many_device(items).copy_to_host()
    assert np.array_equal(dev, cpu.render_many_device(items))
    for cls, k, i in items:
        a, na, ra = cpu.render(cls, k, i)
        b, nb, rb = gpu.render(cls, k, i)
        assert np.array_equal(a, b) and na == nb and _same(ra, rb)
    a, nan, replaced = cpu.render(EDGE, 0, 12)
    assert nan == "xyz" and (a.any() if degenerate == "replace" else not a.any())
    assert (replaced is not False) == (degenerate == "replace")
    assert cpu.render(DIVERGING, 2, 6)[2] is (None if degenerate == "replace" else False)


def test_family_render_blocks_on_the_gpu():
    fam = get_family("fractal3d")
    cfg = _settings()
    cats = [M.candidate(7, 1), M.candidate(7, 86)]
    jobs = [(0, 3, [0, 2]), (1, 0, [1])]
    part = fam.bind(cfg, cats)
    a = list(part.render_blocks(part.renderer("cpu"), jobs))
    b = list(part.render_blocks(part.renderer("cuda"), jobs))
    for x, y in zip(a, b):
        assert x.offsets == y.offsets and all(np.array_equal(p, q) for p, q in zip(x.images, y.images))


@pytest.mark.parametrize("per", ["class", "instance"])
def test_gpu_stream_samples_the_cpu_stream_s_views(per):
    """GPUFractalStream with a view sampler keeps the views FractalStream renders (same images)."""
    import hashlib
    from collections import Counter

    from fractaldb.config import resolve
    from fractaldb.data import FractalStream, GPUFractalStream
    from fractaldb.dataset import Dataset

    ds = Dataset.from_config(resolve("fractal3d-tiny", ["fractal3d.categories=2", f"fractal3d.points={POINTS}",
                                                        "fractal3d.instances=2", "fractal3d.n_views=3",
                                                        "fractal3d.image_size=24"]))

    def count(pairs):
        out = Counter()
        for x, y in pairs:
            out[(int(y), hashlib.sha256(np.ascontiguousarray(x.cpu().numpy()).tobytes()).hexdigest())] += 1
        return out

    for epoch in (0, 1):
        cpu = FractalStream(dataset=ds, shuffle=1, views=per)
        gpu = GPUFractalStream(dataset=ds, batch_size=1, window=4, drop_last=False, views=per)
        cpu.set_epoch(epoch)
        gpu.set_epoch(epoch)
        want = count(cpu)
        got = count((x[0], y[0]) for x, y in gpu)
        assert got == want and sum(want.values()) == len(cpu) == len(gpu) == (2 if per == "class" else 4)
