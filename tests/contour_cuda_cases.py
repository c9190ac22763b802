"""Contour GPU rasteriser cases: ``fractaldb.contours.kernels_cuda.trace_batch`` must give
``fractaldb.contours.orbits.trace_orbits``'s images (and orbit numbers) exactly.

Not collected by a plain ``pytest`` run: ``tests/test_cuda.py::test_contour_simulator_cases_pass``
runs it under numba's CUDA simulator (tiny images); on a GPU run it directly::

    python -m pytest tests/contour_cuda_cases.py -q
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import cuda
from tinyset import cuda_case_marks

from fractaldb.contours import orbits as O

pytestmark = cuda_case_marks()

from fractaldb.contours import kernels_cuda as KC  # noqa: E402

SIZE = 20


def _instance(rng, V, K, centre_first, alpha, wave, target, label=0):
    P = rng.uniform(-0.95, 0.95, (K, 2, V))
    grays = rng.integers(0, 257, K).astype(np.int32)
    n1, n2 = int(rng.integers(0, 21)), int(rng.integers(0, 21))
    trig = np.empty((4, V))
    O.trig_table(n1, n2, trig)
    return {"P": P, "grays": grays, "trig": trig, "cx": float(rng.integers(-4, 2 * SIZE + 4)) / 2,
            "cy": float(rng.integers(-4, 2 * SIZE + 4)) / 2, "r0": float(rng.integers(0, 8)),
            "ox": rng.uniform(1, 2), "oy": rng.uniform(1, 2), "c": rng.uniform(0, 4), "lam": rng.uniform(0, 0.1),
            "alpha": alpha, "wave": wave, "centre_first": centre_first, "target": target, "label": label}


def _cpu(instances, m, background):
    img = np.empty((m, SIZE, SIZE), dtype=np.uint8)
    idx = np.zeros((m, SIZE, SIZE), dtype=np.int32)
    lab = np.zeros((m, SIZE, SIZE), dtype=np.int32)
    img[:] = np.asarray(background, dtype=np.uint8)[:, None, None]
    base = 0
    for d in instances:
        V = d["trig"].shape[1]
        O.trace_orbits(d["P"], d["grays"], d["trig"], d["cx"], d["cy"], d["r0"], d["ox"], d["oy"], d["c"], d["lam"],
                       d["alpha"], d["wave"], d["centre_first"], img[d["target"]], idx[d["target"]], base,
                       np.empty(V), np.empty(V))
        base += len(d["grays"])
    return img, idx


@pytest.mark.parametrize("case", range(6))
def test_trace_batch_equals_cpu(case):
    rng = np.random.default_rng(case)
    order = [(True, 1.0, True), (False, 2.0, False), (True, 2.0, False)][case % 3]
    m = 2
    instances = [_instance(rng, int(rng.integers(3, 14)), int(rng.integers(1, 6)), *order, target=t, label=t + 5)
                 for t in (0, 1, 1)]  # image 1 holds two instances: the second overwrites
    background = [0, 255] if case % 2 else [255, 0]
    want, want_idx = _cpu(instances, m, background)
    assert (want_idx[1] > 0).any()  # something is drawn
    img = cuda.device_array((m, SIZE, SIZE), dtype=np.uint8)
    lab = cuda.device_array((m, SIZE, SIZE), dtype=np.int32)
    idx = KC.trace_batch(KC.pack(instances), background, img, lab)
    assert np.array_equal(img.copy_to_host(), want)
    assert np.array_equal(idx.copy_to_host(), want_idx)
    labels = lab.copy_to_host()
    assert np.array_equal(labels == 0, want_idx == 0)


def test_empty_batch_is_background():
    img = cuda.device_array((1, SIZE, SIZE), dtype=np.uint8)
    KC.trace_batch(KC.pack([]), [7], img)
    assert (img.copy_to_host() == 7).all()


# ---------------------------------------------------------------- the VisualAtom GPU renderer


@pytest.mark.parametrize("compat,channels", [("modern", 1), ("official", 3), ("modern", 3)])
def test_visualatom_cuda_renderer_equals_cpu(compat, channels):
    from fractaldb.families.visualatom import model as M
    from fractaldb.families.visualatom.render_cuda import VisualAtomCUDARenderer

    side = 64  # radii reach radius_min + 50
    r = M.ClassRanges((5, 12), (1, 4), 0.0, 0.1, 0, 2.0, (0, 6), 16, side)
    cfg = M.VisualAtomRenderConfig(size=side, compat=compat, start_pos=16, channels=channels)
    if compat == "official":
        classes = M.official_classes(2, 2, 1, 6, r)
        B = M.block_size(6)
        items = [M.Item(c, block=b, count=B) for c in classes for b in range(6 // B)]
    else:
        classes = M.modern_classes(3, 2, r)
        items = [M.Item(c, key=M.instance_key(3, k, i)) for k, c in enumerate(classes) for i in range(3)]
    want = M.VisualAtomRenderer(cfg).render_many_device(items)
    gpu = VisualAtomCUDARenderer(cfg, max_batch=3)  # several launches
    got = gpu.render_many_device(items).copy_to_host()
    assert got.shape == want.shape and np.array_equal(got, want) and want.any()
    assert all(np.array_equal(a, b) for a, b in zip(gpu.render_many(items), want))


def test_keyed_fill_equals_keyed_draws():
    """Noise and grays drawn on the device from keys == orbits.keyed_draws on the CPU, bit for bit."""
    rng = np.random.default_rng(9)
    instances, want_P, want_g, keys = [], [], [], []
    for s, (V, K) in enumerate(((3, 2), (7, 3), (5, 1))):
        key = np.uint64(rng.integers(0, 2**63)) if s else np.uint64(2**64 - 1)
        P, g = np.empty((K, 2, V)), np.empty(K, dtype=np.int32)
        O.keyed_draws(key, 0, 256, s == 2, P, g)
        trig = np.empty((4, V))
        O.trig_table(1, 2, trig)
        instances.append({"orbits": K, "trig": trig, "cx": 5.0, "cy": 5.0, "r0": 3.0, "ox": 1.0, "oy": 1.0,
                          "c": 1.0, "lam": 0.0, "alpha": 1.0, "wave": True, "centre_first": True, "target": 0})
        want_P.append(np.ascontiguousarray(P.transpose(1, 0, 2)).reshape(2, -1))
        want_g.append(g)
        keys.append(key)
    tables = KC.pack(instances)
    for fixed in (False, True):  # the fixed-gradient instance: index 2 only, so draw twice
        got = KC.keyed_fill(tables, keys, 0, 256, fixed)
        P = got["P"].copy_to_host()
        for s in range(3):
            if (s == 2) == fixed:
                seg = P[:, tables["po"][s]:tables["po"][s + 1]]
                assert np.array_equal(seg.view(np.uint64), want_P[s].view(np.uint64))
        assert np.array_equal(got["op_gray"].copy_to_host(), np.concatenate(want_g))
