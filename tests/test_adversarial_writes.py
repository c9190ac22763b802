"""Hostile input, round 2 (issue 27): what fractaldb writes.

One rule for every output: files are written whole through an exclusive, unpredictable
temporary and a rename (a link planted at an output's name is replaced, never written
through; a linked subfolder is refused), a non-empty folder that is not the command's is
refused, only what carries fractaldb's mark is ever deleted, and http(s)/hf URLs are never
written.  The walk below plants links at every output name of every command that writes
and checks that what they point to is untouched.  Each case asserts the exit code, the
single ``error:`` line when it fails, and what is on disk.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from hostile import Server, file_route, temporaries, tree
from tinyset import TINY_SHARDS, assert_one_line_error, run_cli, snapshot


@pytest.fixture
def bait(tmp_path):
    """Things outside every output that planted links point at: a file, a card-like file and a folder."""
    root = tmp_path / "bait"
    root.mkdir()
    (root / "secret.txt").write_text("precious\n")
    (root / "folder").mkdir()
    (root / "folder" / "keep.txt").write_text("mine\n")
    return root


def _plant(folder, names, target) -> None:
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
        os.symlink(target, path)


def _untouched(bait, before) -> None:
    assert tree(bait) == before, "a write went through a planted link"


# -- 1. the walk: links at every output name ---------------------------------------------------

OPTS = ["--size", "32", "--points", "400", "--patches", "1", "--flips", "2", "--weights", "none", "--workers", "1"]


def _cats(tmp_path):
    cats = tmp_path / "cats"
    code, _, err = run_cli(["search", "--out", cats, "--categories", 2, "--workers", 1])
    assert code == 0, err
    return cats


def _copy(tiny, dest):
    shutil.copytree(tiny, dest)
    return dest


def _walk_generate(tmp_path, tiny, target):
    out = _copy(tiny, tmp_path / "out")  # a finished run: --resume keeps what is intact, makes the rest
    _plant(out, TINY_SHARDS[:2] + ["wids-index.json", "_info.json", "contact-sheet.png", "README.md"], target)
    return ["generate", "--preset", "tiny", "--out", out, "--resume", "--workers", 1], out


def _walk_regenerate(tmp_path, tiny, target):
    ds = _copy(tiny, tmp_path / "ds")
    _plant(ds, [TINY_SHARDS[1]], target)
    return ["regenerate", ds, "--shard", 1], ds


def _walk_index(tmp_path, tiny, target):
    ds = _copy(tiny, tmp_path / "ds")
    _plant(ds, ["wids-index.json", "_info.json", "contact-sheet.png", "tiny-000000.idx", "tiny-000001.tar.idx",
                ".nv-meta/split.yaml", ".nv-meta/index.sqlite"], target)
    return ["index", ds, "--for", "wids", "--for", "timm", "--for", "hf", "--for", "dali", "--for", "energon"], ds


def _walk_export(tmp_path, tiny, target):
    out = tmp_path / "exported"
    os.symlink(target, out)
    return ["export", tiny, "--out", out, "--overwrite"], out


def _walk_report(tmp_path, tiny, target):
    out = tmp_path / "report"
    out.mkdir()
    _plant(out, ["report.json", "report.md", "coverage.png", "samples.png"], target)
    return ["report", tiny, "--out", out, "--overwrite"], out


def _walk_preview(tmp_path, tiny, target):
    _plant(tmp_path, ["sheet.png"], target)
    return ["preview", tiny, "--out", tmp_path / "sheet.png"], tmp_path / "sheet.png"


def _walk_search(tmp_path, tiny, target):
    out = tmp_path / "cats"
    os.symlink(target, out)
    return ["search", "--out", out, "--categories", 1, "--workers", 1, "--overwrite"], out


def _walk_render(tmp_path, tiny, target):
    cats = _cats(tmp_path)
    out = tmp_path / "imgs"
    out.mkdir()
    _plant(out, ["render.json", "00000"], target)
    return ["render", "--params", cats, "--out", out, "--overwrite", *OPTS], out


WALK = {"generate": _walk_generate, "regenerate": _walk_regenerate, "index": _walk_index, "export": _walk_export,
        "report": _walk_report, "preview": _walk_preview, "search": _walk_search, "render": _walk_render}


@pytest.mark.parametrize("command", sorted(WALK))
@pytest.mark.parametrize("kind", ["file", "folder"])
def test_no_command_writes_through_a_link_planted_at_its_output(tiny, tmp_path, bait, command, kind):
    target = bait / ("secret.txt" if kind == "file" else "folder")
    before = tree(bait)
    argv, out = WALK[command](tmp_path, tiny, target)
    code, _, err = run_cli(argv)
    _untouched(bait, before)
    if code != 0:  # refusing is allowed (a linked subfolder, an --out that is a file): one line, then
        assert_one_line_error(code, err)
    assert not temporaries(tmp_path)


def test_index_refuses_a_linked_folder_of_its_own(tiny, tmp_path, bait):
    ds = _copy(tiny, tmp_path / "ds")
    _plant(ds, [".nv-meta"], bait / "folder")
    before = tree(bait)
    code, _, err = run_cli(["index", ds, "--for", "energon"])
    assert_one_line_error(code, err, ".nv-meta is a symbolic link")
    _untouched(bait, before)


# -- 2. render's hidden folder ------------------------------------------------------------------

def _interrupted_render(tmp_path):
    """A render interrupted after its first block: its ``.imgs.partial`` folder."""
    from fractaldb.families.fractal.imagefolder import partial_dir, write_imagefolder
    from fractaldb.families.fractal.commands import render_config
    from fractaldb.ifs.system import load_categories
    from fractaldb.ifs.render import RenderConfig
    from fractaldb.schema import settings_of

    cats = _cats(tmp_path)
    opts = {name: s.default for name, s in settings_of(RenderConfig).items()}
    opts.update(size=32, points=400, patches=1, flips=2, weights="none")
    ids, systems = load_categories(cats)

    def stop(n):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_imagefolder(ids, systems, render_config(**opts), tmp_path / "imgs", workers=1, progress=stop)
    return cats, partial_dir(tmp_path / "imgs")


@pytest.mark.parametrize("plant, fragment", [
    (".render-done.jsonl", "symbolic link or not a file"),
    ("00001", "is a symbolic link or a file"),
    (".render-run.json", "not a partial render fractaldb made"),
    ("render.json", None),  # replaced at the end: the link, never its target
])
def test_render_resume_never_follows_a_link_in_its_hidden_folder(tmp_path, bait, plant, fragment):
    cats, part = _interrupted_render(tmp_path)
    target = bait / ("folder" if plant == "00001" else "secret.txt")
    _plant(part, [plant], target)
    before = tree(bait)
    code, _, err = run_cli(["render", "--params", cats, "--out", tmp_path / "imgs", "--resume", *OPTS])
    _untouched(bait, before)
    if fragment is None:
        assert code == 0, err
        assert not (tmp_path / "imgs" / "render.json").is_symlink()
    else:
        assert_one_line_error(code, err, fragment)
        assert not (tmp_path / "imgs").exists()


@pytest.mark.parametrize("flag", ["--overwrite", "--resume"])
def test_render_never_deletes_or_resumes_a_users_folder_named_like_its_partial(tmp_path, flag):
    cats = _cats(tmp_path)
    mine = tmp_path / ".imgs.partial"
    (mine / "00000").mkdir(parents=True)
    (mine / "00000" / "holiday.png").write_bytes(b"not a render")
    (mine / "notes.txt").write_text("mine\n")
    before = snapshot(tmp_path)
    code, _, err = run_cli(["render", "--params", cats, "--out", tmp_path / "imgs", flag, *OPTS])
    assert_one_line_error(code, err, "not a partial render fractaldb made", "move it away")
    assert snapshot(tmp_path) == before


# -- 3. folders that are not the command's ------------------------------------------------------

def test_report_refuses_a_folder_with_files_unless_overwrite_and_never_its_dataset(tiny, tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "report.md").write_text("my own notes\n")
    code, _, err = run_cli(["report", tiny, "--out", out])
    assert_one_line_error(code, err, "not empty", "--overwrite")
    assert (out / "report.md").read_text() == "my own notes\n"
    code, _, err = run_cli(["report", tiny, "--out", out, "--overwrite"])
    assert code == 0, err
    assert sorted(os.listdir(out)) == sorted(json.loads((out / "report.json").read_text())["figures"]
                                             + ["report.json", "report.md"])
    ds = _copy(tiny, tmp_path / "ds")
    before = snapshot(ds)
    code, _, err = run_cli(["report", ds, "--out", ds, "--overwrite"])
    assert_one_line_error(code, err, "holds the input")  # never the dataset itself
    assert snapshot(ds) == before


def test_a_generate_refused_for_its_name_leaves_nothing(tmp_path):
    out = tmp_path / "o"
    code, _, err = run_cli(["generate", "--preset", "tiny", "--set", "name=" + "x" * 250, "--out", out])
    assert_one_line_error(code, err, "at most 200 bytes")
    assert not out.exists()
    code, _, err = run_cli(["generate", "--preset", "tiny", "--set", "name=" + "名" * 70, "--out", out])
    assert_one_line_error(code, err, "at most 200 bytes")  # 210 bytes of UTF-8
    assert not out.exists()


def test_http_datasets_are_read_never_written(tiny):
    routes = {f"/ds/{n}": file_route((tiny / n).read_bytes(), (tiny / n).stat().st_size)
              for n in os.listdir(tiny)}
    routes["/ds"] = file_route(b"a listing", 9)
    srv = Server(routes)
    try:
        for argv in (["index", f"{srv.url}/ds", "--for", "wids"], ["index", f"{srv.url}/ds", "--for", "dali"],
                     ["regenerate", f"{srv.url}/ds", "--shard", 0]):
            code, _, err = run_cli(argv)
            assert_one_line_error(code, err, "http")
        code, _, err = run_cli(["verify", f"{srv.url}/ds"])  # reading it is fine
        assert code == 0, err
    finally:
        srv.close()
    assert {m for m, _ in srv.requests} <= {"GET", "HEAD"}, srv.requests


# -- 4. the dataset card ------------------------------------------------------------------------

def test_index_never_replaces_a_hand_written_readme(tiny, tmp_path):
    ds = _copy(tiny, tmp_path / "ds")
    (ds / "README.md").write_text("# Our dataset\n\nWritten by hand.\n")
    before = snapshot(ds)
    code, _, err = run_cli(["index", ds, "--for", "wids", "--for", "hf"])
    assert_one_line_error(code, err, "README.md is not a dataset card fractaldb wrote", "move it away")
    assert snapshot(ds) == before  # not even wids-index.json: refused before anything is written
    (ds / "README.md").write_text((tiny / "README.md").read_text() + "\nA publisher's note.\n")
    code, _, err = run_cli(["index", ds, "--for", "hf"])  # a card of ours, edited: written again
    assert code == 0, err
    assert (ds / "README.md").read_bytes() == (tiny / "README.md").read_bytes()


def test_generate_keeps_a_hand_written_readme_with_a_note(tiny, tmp_path):
    out = _copy(tiny, tmp_path / "o")
    (out / "README.md").write_text("# Ours\n")
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", out, "--resume"])
    assert code == 0, err
    assert "note: kept" in err and (out / "README.md").read_text() == "# Ours\n"
    assert run_cli(["verify", out])[0] == 0


# -- 5. the transfer study ----------------------------------------------------------------------

STUDY = ["experiment", "transfer", "--protocol", "v1", "--quick", "--target", "digits", "--arms", "scratch", "--shots", "3",
         "--seeds", "1", "--cached-only"]


@pytest.mark.slow
def test_a_study_writes_only_into_its_own_folder_and_merges_only_its_own_files(tmp_path, bait):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("mine\n")
    code, _, err = run_cli([*STUDY, "--out", mine])
    assert_one_line_error(code, err, "no cache/runs.json", "not the --out of an 'experiment transfer' run")
    assert os.listdir(mine) == ["thesis.tex"]

    src = tmp_path / "src"
    code, _, err = run_cli([*STUDY, "--out", src])
    assert code == 0, err
    _plant(src, ["results.json", "results.md", "learning_curves.png"], bait / "secret.txt")
    before = tree(bait)
    code, _, err = run_cli([*STUDY, "--out", src])  # a rerun replaces the links, never writes through them
    assert code == 0, err
    _untouched(bait, before)
    assert not (src / "results.json").is_symlink()

    (src / "reports" / "scratch").mkdir(parents=True)  # a source whose reports hold what no study writes
    os.symlink("/dev/zero", src / "reports" / "scratch" / "report.md")
    os.mkfifo(src / "reports" / "scratch" / "samples.png")
    dst = tmp_path / "dst"
    code, _, err = run_cli([*STUDY, "--out", dst, "--merge", src])
    assert_one_line_error(code, err, "--merge", "not a regular file")
    used = sum(f.stat().st_size for f in dst.rglob("*") if f.is_file()) if dst.exists() else 0
    assert used < 1 << 20  # nothing was copied from /dev/zero
