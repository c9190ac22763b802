"""RCDB and SegRCDB GPU renderer cases: the CUDA renderers give the CPU renderers' images (and
SegRCDB's masks) exactly, in modern and official mode.

Not collected by a plain ``pytest`` run: ``tests/test_cuda.py::test_rcdb_simulator_cases_pass``
runs it under numba's CUDA simulator (tiny images); on a GPU run it directly::

    python -m pytest tests/rcdb_cuda_cases.py -q
"""

from __future__ import annotations

import numpy as np
import pytest
from tinyset import cuda_case_marks

from fractaldb.families import get_family
from fractaldb.schema import defaults

pytestmark = cuda_case_marks()

SIZE = 24
RCDB_SIZE = 160


def _bound(name, **kw):
    fam = get_family(name)
    d = defaults(fam.settings)
    d.update(kw)
    s = fam.configure(d, 3)
    return fam.bind(s, fam.find_classes(s, 1))


def _blocks(bound, device, jobs):
    r = bound.renderer(device)
    out = []
    for rb in bound.render_blocks(r, jobs):
        for i, img in enumerate(rb.images):
            out.append((img.copy(), None if rb.masks is None else rb.masks[i].copy()))
    return out


@pytest.mark.parametrize("compat", ["modern", "official"])
def test_rcdb_gpu_equals_cpu(compat):
    # r0 is 0..100 by the script's rule: a 160 px frame centred, so the contours show
    b = _bound("rcdb", classes=2, instances=3, workers=2, compat=compat, image_size=RCDB_SIZE, start_pos=0,
               vertex_num=8, line_num_min=1, radius_min=0)
    jobs = [(0, 0, [0, 2]), (1, 0, [1])] if compat == "official" else [(0, 0, [0]), (1, 2, [0])]
    cpu, gpu = _blocks(b, "cpu", jobs), _blocks(b, "cuda", jobs)
    assert len(cpu) == len(gpu) == sum(len(j[2]) for j in jobs)
    for (a, _), (g, _) in zip(cpu, gpu):
        assert a.shape == g.shape == (RCDB_SIZE, RCDB_SIZE, 1) and np.array_equal(a, g)
    assert any((a != 255).any() for a, _ in cpu)


@pytest.mark.parametrize("compat", ["modern", "official"])
def test_segrcdb_gpu_equals_cpu_images_and_masks(compat):
    b = _bound("segrcdb", classes=4, images=4, workers=2, polygons=3, compat=compat, image_size=SIZE, start_pos=16,
               vertex_num=10, line_num_max=4, radius_max=4)
    jobs = [(0, 1, [0, 1])] if compat == "official" else [(0, 0, [0]), (0, 3, [0])]
    cpu, gpu = _blocks(b, "cpu", jobs), _blocks(b, "cuda", jobs)
    assert len(cpu) == len(gpu) == sum(len(j[2]) for j in jobs)
    for (a, ma), (g, mg) in zip(cpu, gpu):
        assert np.array_equal(a, g) and np.array_equal(ma, mg) and ma.dtype == mg.dtype == np.uint8
    assert any(m.any() for _, m in cpu)


def test_rcdb_render_device_batches():
    b = _bound("rcdb", classes=2, instances=2, image_size=RCDB_SIZE, start_pos=0, vertex_num=8)
    cpu = b.render_device(b.renderer("cpu"), [(0, 0), (1, 1)])[0][1]
    gpu = b.render_device(b.renderer("cuda"), [(0, 0), (1, 1)])[0][1]
    assert np.array_equal(cpu, gpu.copy_to_host())


def test_modern_blocks_in_several_launches_equal_cpu():
    """Modern jobs go to the GPU max_batch at a time: 3 jobs in launches of 2, the CPU's images and masks."""
    rc = _bound("rcdb", classes=2, instances=3, image_size=RCDB_SIZE, start_pos=0, vertex_num=8)
    sg = _bound("segrcdb", classes=4, images=3, polygons=3, image_size=SIZE, start_pos=16, vertex_num=10,
                line_num_max=4, radius_max=4)
    for b, jobs in ((rc, [(0, 0, [0]), (1, 1, [0]), (1, 2, [0])]), (sg, [(0, 0, [0]), (0, 1, [0]), (0, 2, [0])])):
        cpu = _blocks(b, "cpu", jobs)
        gpu = []
        for rb in b.render_blocks(b.renderer("cuda", max_batch=2), jobs):
            for i, img in enumerate(rb.images):
                gpu.append((img.copy(), None if rb.masks is None else rb.masks[i].copy()))
        assert len(gpu) == 3
        for (a, ma), (g, mg) in zip(cpu, gpu):
            assert np.array_equal(a, g) and (ma is None or np.array_equal(ma, mg))
