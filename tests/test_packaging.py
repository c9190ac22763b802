"""The package as a user installs it: a wheel, not the checkout.

Presets and the command line must ship inside the wheel (SPEC: presets load
from an installed wheel too) and nothing may install as a plain top-level
``cli`` or ``presets`` module that would shadow other packages.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(out), str(ROOT)],
        check=True, capture_output=True, text=True,
    )
    (whl,) = out.glob("fractaldb-*.whl")
    return whl


def test_wheel_contents(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for preset in ("fractaldb-1k", "fractaldb-10k", "fractaldb-1k-fast", "tiny"):
        assert f"fractaldb/presets/{preset}.yaml" in names
    # every module of the checkout is packaged (pyproject lists the packages by hand)
    for path in (ROOT / "fractaldb").rglob("*.py"):
        assert path.relative_to(ROOT).as_posix() in names
    for path in (ROOT / "cli").glob("*.py"):
        assert f"fractaldb/cli/{path.name}" in names
    top = {n.split("/")[0] for n in names if not n.startswith("fractaldb-")}
    assert top == {"fractaldb"}, f"unexpected top-level names in the wheel: {top}"


def test_installed_wheel_loads_presets_and_runs(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, text=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = ("import fractaldb, fractaldb.config as c; print(fractaldb.__file__); print(','.join(c.list_presets()));"
            "print(c.resolve('tiny')['fractal']['image_size'])")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True,
                         capture_output=True, text=True).stdout.split("\n")
    assert out[0].startswith(str(target)), "the test must import the installed copy, not the checkout"
    assert out[1] == ("color-fractal-1k,color-fractal-tiny,fractal+perlin,fractaldb-10k,fractaldb-1k,fractaldb-1k-fast,"
                      "multi-fractal-1k,multi-fractal-tiny,perlin-1k,perlin-tiny,tiny")
    assert out[2] == "64"
    run = subprocess.run([sys.executable, "-m", "fractaldb.cli.main", "presets", "show", "fractaldb-1k"],
                         cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "sampler: official" in run.stdout
