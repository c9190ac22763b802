"""The ``fractaldb`` command line: exact one-line errors, exit codes, outputs.

Most cases call :func:`fractaldb.cli.main.main` in-process (fast); a few run
the real command in a subprocess to check that no traceback or progress
output reaches a user's terminal.  Bad input must end with exactly one line
``error: ...`` on stderr, exit code 2, and nothing written (SPEC 8).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fractaldb._jit import COMPILE_LINE
import yaml
from PIL import Image

from fractaldb.ifs.system import read_csv
from fractaldb.ifs.render import CPURenderer, RenderConfig

from tinyset import run_cli

#: sha256 of the published FractalDB-1k categories 00000..00002 (see test_search.py).
PUBLISHED_SHA256 = [
    "2fe76fe188a5ea3084890f576a74d92b6316f71e3e15785c7dc70458f448d34b",
    "4473d595c53f7c8e1bc657c07194d521b097ac90cb83d448ebad3a5d9d6eaef9",
    "01be2e15a379d149a0d13b1c554f814a2ad57b7fa8cd27b599beac668bbf936e",
]

#: A small, valid --params file: the Sierpinski triangle's three maps, equal probabilities.
GOOD_CSV = (
    "0.5,0,0,0.5,0,0,0.3333333333333333\n"
    "0.5,0,0,0.5,0.5,0,0.3333333333333333\n"
    "0.5,0,0,0.5,0.25,0.5,0.3333333333333334\n"
)

# Small renders keep the command-line tests fast.
SMALL = ["--size", "64", "--points", "2000"]


def run_process(argv):
    """Run the real command in a fresh interpreter."""
    return subprocess.run([sys.executable, "-m", "fractaldb.cli.main", *map(str, argv)],
                          capture_output=True, text=True, timeout=120)


def assert_one_line_error(code, err, expected=None, prefix=None):
    """Exit 2, exactly one line on stderr, ``error: ...``, no traceback."""
    assert code == 2, err
    assert "Traceback" not in err
    err = "".join(ln for ln in err.splitlines(True) if not ln.startswith(COMPILE_LINE))  # a first run's word
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert err.endswith("\n")
    assert lines[0].startswith("error: ")
    if expected is not None:
        assert lines[0] == expected
    if prefix is not None:
        assert lines[0].startswith(prefix), lines[0]
    return lines[0]


def assert_nothing_written(out: Path):
    """``out`` does not exist and no temporary sibling ``.NAME.tmp-*`` is left."""
    assert not out.exists()
    if out.parent.is_dir():
        assert not list(out.parent.glob(f".{out.name}.tmp-*"))


@pytest.fixture
def files(tmp_path):
    """Input files, good and bad, in a fresh folder."""
    (tmp_path / "good.csv").write_text(GOOD_CSV)
    (tmp_path / "short.csv").write_text("1,2,3,4,5,6\n")
    (tmp_path / "words.csv").write_text("a,b,c,d,e,f,g\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "nan.csv").write_text("0.5,0,0,0.5,0,0,nan\n")
    (tmp_path / "file.txt").write_text("a file, not a folder\n")
    return tmp_path


# --------------------------------------------------------------------------- bad input

# (argv after the command, with {d} = the tmp folder; expected line or prefix)
_EXACT_ERRORS = {
    "unknown-sampler": (
        ["search", "--sampler", "foo", "--categories", "1", "--out", "{d}/out"],
        "error: unknown sampler 'foo'; choose one of official, modern, svd"),
    "categories-0": (
        ["search", "--categories", "0", "--out", "{d}/out"],
        "error: categories must be a positive integer, got 0"),
    "fill-rate-0": (
        ["search", "--categories", "1", "--fill-rate", "0", "--out", "{d}/out"],
        "error: fill rate must be in (0, 1], got 0.0"),
    "fill-rate-1.5": (
        ["search", "--categories", "1", "--fill-rate", "1.5", "--out", "{d}/out"],
        "error: fill rate must be in (0, 1], got 1.5"),
    "search-negative-seed": (
        ["search", "--categories", "1", "--seed", "-1", "--out", "{d}/out"],
        "error: seed must be an integer in 0..2**32-1, got -1"),
    "search-size-too-small": (
        ["search", "--categories", "1", "--size", "10", "--out", "{d}/out"],
        "error: size 10 is too small for pad 6; use a size above 13"),
    "short-row": (
        ["render", "--params", "{d}/short.csv", "--out", "{d}/out"],
        "error: {d}/short.csv: line 1 has 6 values, expected 7 (a,b,c,d,e,f,p)"),
    "malformed": (
        ["render", "--params", "{d}/words.csv", "--out", "{d}/out"],
        "error: {d}/words.csv: line 1 is not 7 comma-separated numbers: 'a,b,c,d,e,f,g'"),
    "empty-csv": (
        ["render", "--params", "{d}/empty.csv", "--out", "{d}/out"],
        "error: {d}/empty.csv: no maps found; a category CSV needs one line a,b,c,d,e,f,p per map"),
    "nan-csv": (
        ["render", "--params", "{d}/nan.csv", "--out", "{d}/out"],
        "error: {d}/nan.csv: line 1 contains NaN or inf; every coefficient must be finite"),
    "size-below-range": (
        ["render", "--params", "{d}/good.csv", "--out", "{d}/out", "--size", "10"],
        "error: --size must be an integer in 16..8192, got 10"),
    "negative-size": (
        ["render", "--params", "{d}/good.csv", "--out", "{d}/out", "--size", "-5"],
        "error: --size must be an integer in 16..8192, got -5"),
    "size-too-small-for-pad": (
        ["render", "--params", "{d}/good.csv", "--out", "{d}/out", "--size", "20", "--pad", "10"],
        "error: size 20 is too small for pad 10; use a size of at least 24"),
    "render-seed-above-range": (
        ["render", "--params", "{d}/good.csv", "--out", "{d}/out", "--seed", "99999999999"],
        "error: --seed must be an integer in 0..2**32-1, got 99999999999"),
    "missing-params": (
        ["render", "--params", "{d}/missing.csv", "--out", "{d}/out"],
        "error: {d}/missing.csv does not exist; pass a category folder or a .csv file"),
    "flips-5": (
        ["render", "--params", "{d}/good.csv", "--out", "{d}/out", "--flips", "5"],
        "error: --flips must be an integer in 1..4, got 5"),
    "render-workers-0": (
        ["render", "--params", "{d}/good.csv", "--out", "{d}/out", "--workers", "0"],
        "error: workers must be a positive integer, got 0"),
    "unknown-format": (
        ["render", "--params", "{d}/good.csv", "--out", "{d}/out", "--format", "bmp"],
        "error: unknown format 'bmp'; choose png, jpg, webp"),
    "unknown-device": (
        ["render", "--params", "{d}/good.csv", "--out", "{d}/out", "--device", "tpu"],
        "error: unknown device 'tpu'; choose cpu or cuda"),
    "weight-step-too-big": (
        ["render", "--params", "{d}/good.csv", "--out", "{d}/out", "--weights", "0.7"],
        "error: weight step must be in (0, 0.5], got 0.7; the original tables use 0.0125 ... 0.5"),
    "not-an-integer": (
        ["search", "--categories", "abc", "--out", "{d}/out"],
        "error: Invalid value for '--categories': 'abc' is not a valid integer. (see 'fractaldb search --help')"),
    "missing-option": (
        ["render", "--out", "{d}/out"],
        "error: Missing option '--params'. (see 'fractaldb render --help')"),
}

_PREFIX_ERRORS = {
    "unknown-weights": (
        ["render", "--params", "{d}/good.csv", "--out", "{d}/out", "--weights", "abc"],
        "error: weights 'abc' not understood; give a step such as 0.4"),
    "unknown-preset": (
        ["presets", "show", "nope"],
        "error: unknown preset 'nope'; choose one of: "),
    "preview-bad-suffix": (
        ["preview", "--params", "{d}/good.csv", "--out", "{d}/out.txt"],
        "error: --out {d}/out.txt must end in .png, .jpg or .webp"),
    "preview-nothing-given": (
        ["preview", "--out", "{d}/out.png"],
        "error: give exactly one of FOLDER, --params or --preset"),
}


def _fill(argv, d):
    return [a.replace("{d}", str(d)) for a in argv]


@pytest.mark.parametrize("case", sorted(_EXACT_ERRORS))
def test_bad_input_exact_message(files, case):
    argv, expected = _EXACT_ERRORS[case]
    code, out, err = run_cli(_fill(argv, files))
    assert_one_line_error(code, err, expected=expected.replace("{d}", str(files)))
    assert out == ""
    assert_nothing_written(files / "out")


@pytest.mark.parametrize("case", sorted(_PREFIX_ERRORS))
def test_bad_input_message_prefix(files, case):
    argv, prefix = _PREFIX_ERRORS[case]
    code, out, err = run_cli(_fill(argv, files))
    line = assert_one_line_error(code, err, prefix=prefix.replace("{d}", str(files)))
    if case == "unknown-preset":
        for name in ("fractaldb-1k", "fractaldb-10k", "fractaldb-1k-fast", "tiny"):
            assert name in line
    assert out == ""
    assert_nothing_written(files / "out")
    assert_nothing_written(files / "out.png")
    assert_nothing_written(files / "out.txt")


@pytest.mark.parametrize("command", ["search", "render"])
def test_output_under_a_file_is_refused(files, command):
    blocker = files / "file.txt"
    out = blocker / "out"
    argv = ["search", "--categories", "1", "--out", out] if command == "search" \
        else ["render", "--params", files / "good.csv", "--out", out, *SMALL]
    code, _, err = run_cli(argv)
    line = assert_one_line_error(code, err, prefix="error: cannot write")
    assert f"{blocker} is a file, not a folder; choose another --out" in line
    assert blocker.read_text() == "a file, not a folder\n"
    assert not list(files.glob(".file.txt.tmp-*"))
    assert sorted(p.name for p in files.iterdir()) == sorted(
        ["good.csv", "short.csv", "words.csv", "empty.csv", "nan.csv", "file.txt"])


@pytest.mark.parametrize("command", ["search", "render"])
def test_output_that_is_a_file_is_refused(files, command):
    out = files / "file.txt"
    argv = ["search", "--categories", "1", "--out", out] if command == "search" \
        else ["render", "--params", files / "good.csv", "--out", out, *SMALL]
    code, _, err = run_cli(argv)
    assert_one_line_error(code, err, expected=f"error: output {out} exists and is not a directory; "
                                               "choose another --out")
    assert out.read_text() == "a file, not a folder\n"


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("command", ["search", "render"])
def test_output_in_proc_is_refused(files, command):
    out = Path("/proc/fractaldb-test-out")
    argv = ["search", "--categories", "1", "--out", out] if command == "search" \
        else ["render", "--params", files / "good.csv", "--out", out, *SMALL]
    code, _, err = run_cli(argv)
    # Refused before any work (no write permission) or when the folder is created.
    line = assert_one_line_error(code, err, prefix="error: cannot write")
    assert "/proc" in line and "choose a writable --out" in line
    assert_nothing_written(out)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores directory permissions")
def test_output_in_read_only_folder_is_refused(files):
    locked = files / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, _, err = run_cli(["render", "--params", files / "good.csv", "--out", locked / "out", *SMALL])
        line = assert_one_line_error(code, err, prefix="error: cannot write")
        assert "choose a writable --out" in line
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("command", ["search", "render"])
def test_non_empty_output_needs_overwrite(files, command):
    out = files / "taken"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    base = ["search", "--categories", "1", "--sampler", "svd", "--out", out] if command == "search" \
        else ["render", "--params", files / "good.csv", "--out", out, *SMALL, "--weights", "none",
              "--patches", "1", "--flips", "1"]
    code, _, err = run_cli(base)
    assert_one_line_error(code, err, expected=f"error: output {out} exists and is not empty; "
                                               "choose a new --out or pass --overwrite")
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    assert (out / "mine.txt").read_text() == "keep me"
    assert not list(files.glob(".taken.tmp-*"))
    # --overwrite replaces it.
    code, stdout, err = run_cli([*base, "--overwrite"])
    assert code == 0, err
    assert not (out / "mine.txt").exists()
    assert "-> " in stdout
    assert not list(files.glob(".taken.tmp-*"))


def test_search_workers_0_is_refused(files):
    code, _, err = run_cli(["search", "--categories", "1", "--sampler", "svd", "--workers", "0",
                            "--out", files / "out"])
    assert_one_line_error(code, err, expected="error: workers must be a positive integer, got 0")
    assert_nothing_written(files / "out")


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["search", "--sampler", "foo", "--categories", "1", "--out", "{d}/out"],
         "error: unknown sampler 'foo'; choose one of official, modern, svd"),
        (["render", "--params", "{d}/words.csv", "--out", "{d}/out"],
         "error: {d}/words.csv: line 1 is not 7 comma-separated numbers: 'a,b,c,d,e,f,g'"),
        (["render", "--params", "{d}/good.csv", "--out", "{d}/file.txt/out", "--size", "64", "--points", "500"],
         None),
    ],
    ids=["unknown-sampler", "malformed-csv", "out-under-a-file"],
)
def test_real_command_prints_one_line(files, argv, expected):
    proc = run_process(_fill(argv, files))
    line = assert_one_line_error(proc.returncode, proc.stderr,
                                 expected=expected.replace("{d}", str(files)) if expected else None)
    assert proc.stdout == ""
    assert not (files / "out").exists()
    if expected is None:
        assert line.startswith("error: cannot write")


# --------------------------------------------------------------------------- happy paths


@pytest.fixture(scope="module")
def categories(tmp_path_factory):
    """``fractaldb search --categories 3 --out D``."""
    d = tmp_path_factory.mktemp("search") / "D"
    code, out, err = run_cli(["search", "--categories", "3", "--out", d])
    assert code == 0, err
    assert out.startswith("3 categories from ")
    return d


def _expected_names(categories, weights, draws, flips):
    return {f"{c:05d}/{c:05d}_{w:02d}_count_{k}_flip{t}.png"
            for c in categories for w in range(weights) for k in range(draws) for t in range(flips)}


def _tree(root: Path):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_search_writes_published_categories(categories):
    assert sorted(p.name for p in categories.iterdir()) == ["00000.csv", "00001.csv", "00002.csv",
                                                            "categories.json"]
    for i in range(3):
        assert hashlib.sha256((categories / f"{i:05d}.csv").read_bytes()).hexdigest() == PUBLISHED_SHA256[i]
    doc = json.loads((categories / "categories.json").read_text())
    assert doc["sampler"] == "official" and doc["seed"] == 1
    assert [c["file"] for c in doc["categories"]] == ["00000.csv", "00001.csv", "00002.csv"]
    assert not list(categories.parent.glob(".D.tmp-*"))


@pytest.fixture(scope="module")
def rendered(categories, tmp_path_factory):
    """``fractaldb render --params D --out R`` with 2 patch draws and 2 flips, on 1 and 2 workers."""
    outs = {}
    for workers in (1, 2):
        r = tmp_path_factory.mktemp(f"render{workers}") / "R"
        code, out, err = run_cli(["render", "--params", categories, "--out", r, *SMALL,
                                  "--patches", "2", "--flips", "2", "--workers", str(workers)])
        assert code == 0, err
        assert out.startswith("300 images of 3 categories")
        outs[workers] = r
    return outs


def test_render_writes_original_names(rendered):
    r = rendered[1]
    tree = _tree(r)
    assert set(tree) == _expected_names(range(3), 25, 2, 2) | {"render.json"}
    assert sorted(p.name for p in r.iterdir()) == ["00000", "00001", "00002", "render.json"]
    doc = json.loads(tree["render.json"])
    assert doc["images"] == 300 and doc["categories"] == 3
    assert doc["render"]["size"] == 64 and doc["render"]["patches"] == 2 and doc["render"]["flips"] == 2
    with Image.open(r / "00000" / "00000_00_count_0_flip0.png") as im:
        assert im.size == (64, 64)
        assert set(np.unique(np.array(im.convert("RGB"))).tolist()) <= {0, 127}
    assert not list(r.parent.glob(".R.tmp-*"))


def test_render_is_independent_of_workers(rendered):
    one, two = _tree(rendered[1]), _tree(rendered[2])
    assert set(one) == set(two)
    for name in one:
        assert one[name] == two[name], name


def test_render_point_mode_official(categories, tmp_path):
    r = tmp_path / "R"
    code, out, err = run_cli(["render", "--params", categories, "--out", r, *SMALL, "--mode", "point",
                              "--compat", "official", "--flips", "2"])
    assert code == 0, err
    tree = _tree(r)
    assert set(tree) == _expected_names(range(3), 25, 1, 2) | {"render.json"}
    # The files hold the compat renderer's pixels (the original's, see test_render.py).
    ifs = read_csv(categories / "00000.csv")
    block = CPURenderer(RenderConfig(mode="point", compat="official", size=64, points=2000,
                                     flips=2)).render_block(0, ifs, 4)
    for t in range(2):
        with Image.open(r / "00000" / f"00000_04_count_0_flip{t}.png") as im:
            np.testing.assert_array_equal(np.array(im), block.images[t, :, :, 0])


def test_render_single_csv(files, tmp_path):
    r = tmp_path / "R1"
    code, out, err = run_cli(["render", "--params", files / "good.csv", "--out", r, *SMALL,
                              "--weights", "none", "--patches", "3", "--flips", "1", "--color", "color"])
    assert code == 0, err
    # A file name without digits: category 0.
    assert set(_tree(r)) == _expected_names([0], 1, 3, 1) | {"render.json"}
    with Image.open(r / "00000" / "00000_00_count_2_flip0.png") as im:
        assert im.mode == "RGB"


def test_preview_from_params_and_folder(categories, rendered, tmp_path):
    sheet = tmp_path / "sheet.png"
    code, out, err = run_cli(["preview", "--params", categories, "--out", sheet, *SMALL])
    assert code == 0, err
    assert out.startswith("contact sheet ")
    with Image.open(sheet) as im:
        im.load()
        assert im.mode == "RGB" and im.size[0] > 64 and im.size[1] >= 64
    sheet2 = tmp_path / "sheet2.png"
    code, out, err = run_cli(["preview", rendered[1], "--out", sheet2])
    assert code == 0, err
    with Image.open(sheet2) as im:
        im.load()
        arr = np.array(im)
        assert im.mode == "RGB" and arr.shape[0] >= 64 and arr.shape[1] > 64
        assert (arr == 127).any()  # the fractals are on it


def test_presets_list():
    code, out, err = run_cli(["presets", "list"])
    assert code == 0, err
    names = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert {"fractaldb-1k", "fractaldb-10k", "fractaldb-1k-fast", "tiny"} <= names


def test_presets_show_tiny():
    code, out, err = run_cli(["presets", "show", "tiny"])
    assert code == 0, err
    assert "  image_size: 64" in out.splitlines() and "fractal:" in out.splitlines()
    doc = yaml.safe_load(out)
    assert doc["fractal"]["image_size"] == 64
    assert doc["fractal"]["categories"] == 4
    assert doc["families"] == ["fractal"]
    # what 'show' prints is a preset that resolves to the same config
    from fractaldb.config import resolve
    assert resolve(doc) == resolve("tiny")


def test_version_and_help():
    code, out, _ = run_cli(["--version"])
    assert code == 0 and "fractaldb" in out
    code, out, _ = run_cli(["--help"])
    assert code == 0
    for command in ("search", "render", "preview", "presets"):
        assert command in out
