"""Start-up cost (issue 24): commands that render nothing import nothing heavy.

``fractaldb --help``, ``presets`` and ``verify`` must not import numba (or
llvmlite, SciPy, PyTorch); kernels are made lazily (:mod:`fractaldb._jit`): the
first call of any kernel imports numba and swaps every kernel for its
dispatcher, so kernels calling kernels compile and ``a.k is b.k`` holds across
modules.  The command line hides SciPy from numba's BLAS probe
(:func:`fractaldb._jit.skip_blas_probe`); a library user's process is unchanged.
Times are measured by ``benchmarks/bench_startup.py`` (docs/benchmarks.md), not here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tinyset import ROOT

HEAVY = ("numba", "llvmlite", "scipy", "torch", "torchvision", "timm", "distributed", "PIL")

_PROBE = """
import json, sys
from fractaldb.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "heavy": sorted({m.split(".")[0] for m in sys.modules} & set(%r))}))
""" % (HEAVY,)


def _command(argv) -> dict:
    proc = subprocess.run([sys.executable, "-c", _PROBE, *map(str, argv)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from fractaldb import config
    from fractaldb.dataset import generate

    out = tmp_path_factory.mktemp("tiny") / "data"
    generate(config.resolve("tiny"), str(out), workers=1)
    return out


@pytest.mark.parametrize("argv", [["--help"], ["presets", "list"], ["presets", "show", "tiny"],
                                  ["generate", "--help"], ["search", "--help"], ["preview", "--help"],
                                  ["index", "--help"]])
def test_commands_that_render_nothing_import_nothing_heavy(argv):
    got = _command(argv)
    assert got["code"] in (0, None) and got["heavy"] == [], got


def test_verify_imports_nothing_heavy(tiny):
    got = _command(["verify", tiny])
    assert got["code"] in (0, None) and got["heavy"] == [], got


@pytest.mark.slow
def test_generate_imports_numba_but_not_scipy(tmp_path):
    got = _command(["generate", "--preset", "tiny", "--out", tmp_path / "g"])
    assert got["code"] in (0, None)
    assert "numba" in got["heavy"] and "scipy" not in got["heavy"], got


_LAZY = """
import sys
import fractaldb.kernels.arith as A, fractaldb.families.perlin.kernels as P, fractaldb.ifs.kernels as K
import fractaldb.kernels.random as R
from fractaldb import _jit
assert "numba" not in sys.modules, "importing kernels imported numba"
assert type(A.mul) is _jit.LazyKernel and P.mul is A.mul and K.splitmix64 is R.splitmix64
import numpy as np
first = R.splitmix64(np.uint64(7), 3)  # the first call: numba, and every kernel swapped
import numba
from numba.core.registry import CPUDispatcher
assert _jit.active() and isinstance(A.mul, CPUDispatcher) and P.mul is A.mul and K.splitmix64 is R.splitmix64
assert R.splitmix64(np.uint64(7), 3) == first
import fractaldb.families.colorfractal.kernels as C  # defined after the swap: dispatchers at once
assert isinstance(C.splitmix64, CPUDispatcher) and C.splitmix64 is R.splitmix64
import numba.np.arraymath as arraymath
print(arraymath._HAVE_BLAS)
"""


def test_kernels_are_made_on_first_use_and_swapped_everywhere():
    proc = subprocess.run([sys.executable, "-c", _LAZY], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    # A library user's process: numba probes SciPy's BLAS as it always does.
    try:
        import scipy.linalg.cython_blas  # noqa: F401
        have = "True"
    except ImportError:
        have = "False"
    assert proc.stdout.strip() == have


def test_a_lazy_kernel_forwards_to_numba():
    from fractaldb import _jit
    from fractaldb.kernels import png

    import numpy as np

    assert png.bilevel(np.array([0, 5, 5, 0], np.uint8)) == 5  # in-process: may already be swapped
    k = _jit.LazyKernel(png.bilevel.py_func, {"nogil": True})
    assert k.py_func is png.bilevel.py_func and k.__name__ == "bilevel" and "bilevel" in repr(k)
    assert k(np.array([0, 3], np.uint8)) == 3 and k.signatures  # numba's attributes, through the proxy
