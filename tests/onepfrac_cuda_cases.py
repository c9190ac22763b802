"""1p-frac on the GPU: the family's CUDA path (the fractal family's CUDA renderer
in official mode) must give its CPU images exactly.

Not collected by a plain ``pytest`` run: ``tests/test_onepfrac.py`` runs this
file under numba's CUDA simulator; on a machine with an NVIDIA GPU the same
cases run on the hardware (``python -m pytest tests/onepfrac_cuda_cases.py -q``).
Tiny sizes: the simulator runs every CUDA thread as a Python thread.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import cuda

from fractaldb.families import get_family
from fractaldb.families.onepfrac import OnePFracSettings
from fractaldb.families.onepfrac.model import search_classes

if not cuda.is_available():  # pragma: no cover - the driver test sets the simulator
    pytest.skip("needs a GPU or NUMBA_ENABLE_CUDASIM=1", allow_module_level=True)

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

CFG = OnePFracSettings(classes=3, image_size=24, points=300, fill_rate=0.0, seed=1)
FAM = get_family("onepfrac")


@pytest.fixture(scope="module")
def classes():
    return search_classes(CFG, workers=1)


def test_render_device_matches_cpu(classes):
    blocks = [(2, 0), (0, 0), (1, 0)]
    part = FAM.bind(CFG, classes)
    [(pos, want)] = part.render_device(part.renderer("cpu"), blocks)
    [(pos_gpu, got)] = part.render_device(part.renderer("cuda", max_batch=2), blocks)
    assert pos == pos_gpu == [0, 1, 2]
    assert want.shape == (3, 24, 24, 1)
    np.testing.assert_array_equal(got.copy_to_host(), want)


def test_render_blocks_match_cpu(classes):
    jobs = [(k, 0, [0]) for k in range(3)]
    part = FAM.bind(CFG, classes)
    cpu = [b.images[0].copy() for b in part.render_blocks(part.renderer("cpu"), jobs)]
    gpu = [np.asarray(b.images[0]).copy() for b in part.render_blocks(part.renderer("cuda"), jobs)]
    for a, b in zip(cpu, gpu):
        np.testing.assert_array_equal(a, b)
    assert any(a.any() for a in cpu)
