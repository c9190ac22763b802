"""The right hint when a command gets the wrong kind of folder, and the setting
that differs when ``--resume`` meets a dataset made with other settings."""

from __future__ import annotations

import pytest

from fractaldb.config import resolve
from fractaldb.dataset import generate
from fractaldb.folders import CATEGORIES, IMAGEFOLDER, SHARDS, folder_kind
from tinyset import assert_one_line_error, run_cli, tiny_dataset


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """One folder of each kind fractaldb writes."""
    root = tmp_path_factory.mktemp("kinds")
    shards = tiny_dataset(tmp_path_factory)
    code, _, err = run_cli(["search", "--categories", "2", "--points", "2000", "--size", "64", "--out", root / "cats",
                            "--workers", "1"])
    assert code == 0, err
    code, _, err = run_cli(["render", "--params", root / "cats", "--out", root / "rendered", "--size", "32",
                            "--points", "500", "--patches", "1", "--flips", "1", "--weights", "none"])
    assert code == 0, err
    return {"shards": shards, "cats": root / "cats", "rendered": root / "rendered"}


def test_folder_kinds(folders, tmp_path):
    assert folder_kind(folders["shards"]) == SHARDS
    assert folder_kind(folders["cats"]) == CATEGORIES
    assert folder_kind(folders["rendered"]) == IMAGEFOLDER
    assert folder_kind(tmp_path) is None and folder_kind(tmp_path / "missing") is None


@pytest.mark.parametrize("argv,fragments,never", [
    (["render", "--params", "{shards}", "--out", "{tmp}/r"], ["is a shard dataset", "not a category folder",
                                                            "fractaldb export"], "fractaldb search"),
    (["preview", "--params", "{shards}", "--out", "{tmp}/p.png"], ["is a shard dataset", "fractaldb preview"],
     "fractaldb search"),
    (["render", "--params", "{rendered}", "--out", "{tmp}/r"], ["is an ImageFolder", "category folder it was"],
     "fractaldb search --out"),
    (["verify", "{cats}"], ["is a category folder", "not a shard dataset", "fractal.category_dir="], None),
    (["export", "{cats}", "--out", "{tmp}/e"], ["is a category folder", "fractaldb render --params"], None),
    (["index", "{rendered}", "--for", "dali"], ["is an ImageFolder", "not a shard dataset"], None),
    (["regenerate", "{rendered}", "--shard", "0"], ["is an ImageFolder"], None),
    (["generate", "--preset", "{cats}", "--out", "{tmp}/g"], ["is a category folder", "not a preset",
                                                             "fractal.category_dir="], None),
    (["generate", "--preset", "{shards}", "--out", "{tmp}/g"], ["is a shard dataset", "--from-manifest"], None),
])
def test_wrong_kind_of_folder(folders, tmp_path, argv, fragments, never):
    argv = [a.format(tmp=tmp_path, **folders) for a in argv]
    code, _, err = run_cli(argv)
    line = assert_one_line_error(code, err, *fragments)
    if never:
        assert never not in line
    assert not any(tmp_path.iterdir())  # nothing written


def test_resume_names_the_setting_that_differs(folders, tmp_path):
    import shutil

    out = tmp_path / "t"
    shutil.copytree(folders["shards"], out)
    code, _, err = run_cli(["generate", "--preset", "tiny", "--set", "seed=2", "--out", out, "--resume"])
    assert_one_line_error(code, err, "made with other settings", "seed: 1 there, 2 here")
    code, _, err = run_cli(["generate", "--preset", "tiny", "--set", "fractal.flips=2", "--set",
                            "fractal.patches=2", "--out", out, "--resume"])
    assert_one_line_error(code, err, "fractal.flips: 4 there, 2 here", "fractal.patches: 3 there, 2 here")


def test_a_partial_run_names_the_setting_that_differs(tmp_path):
    out = tmp_path / "p"

    def stop(n):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate(resolve("tiny"), str(out), workers=1, progress=stop)
    code, _, err = run_cli(["generate", "--preset", "tiny", "--set", "fractal.image_size=32", "--out", out,
                            "--resume"])
    assert_one_line_error(code, err, "partial run with other settings", "fractal.image_size: 64 there, 32 here")
