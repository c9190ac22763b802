"""Hostile input (issue 16): tampered manifests, outputs that would destroy a user's
files, impossible or unbounded settings, damaged shards and images, bad presets.

Every case asserts the exit code, the single ``error: ...`` line (no traceback)
and what is left on disk: nothing written outside the dataset, no temporaries,
the user's files untouched.  Signals, concurrency and storage faults are in
tests/test_adversarial_faults.py.
"""

from __future__ import annotations

import json
import os
import socket
import warnings

import pytest

from tinyset import TINY_SHARDS, assert_one_line_error, copy_tiny, run_cli, snapshot


def _tamper(folder, change) -> None:
    path = folder / "manifest.json"
    m = json.loads(path.read_text())
    change(m)
    path.write_text(json.dumps(m))


def _no_temporaries(*folders) -> None:
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            for name in dirs + files:
                assert not name.startswith(".fractaldb-tmp-"), os.path.join(root, name)
                assert ".tmp-" not in name or name == ".env.tmp-backup", os.path.join(root, name)


@pytest.fixture
def world(tmp_path, tmp_path_factory):
    """A dataset copy inside a 'world' folder whose other contents must never change."""
    root = tmp_path / "world"
    root.mkdir()
    (root / "bystander.txt").write_text("not yours\n")
    ds = copy_tiny(tmp_path_factory, root / "ds")
    return root, ds


def _outside(root, ds) -> dict:
    """Everything in the world but the dataset."""
    return {k: v for k, v in snapshot(root).items() if not k.startswith("ds/")}


# -- 1. manifests are untrusted ------------------------------------------------------------------

MANIFEST_CASES = {
    "name-traversal": (lambda m: m["config"].__setitem__("name", "../evil"), "name in the config"),
    "absolute-name": (lambda m: m["config"].__setitem__("name", "/tmp/evil"), "name in the config"),
    "shard-outside": (lambda m: m["shards"][0].__setitem__("name", "/etc/passwd"), "not a plain file name"),
    "shard-dotdot": (lambda m: m["shards"][0].__setitem__("name", "../world.tar"), "not a plain file name"),
    "shard-renamed": (lambda m: m["shards"][0].__setitem__("name", "other-000000.tar"), "its config names it"),
    "no-plan": (lambda m: m.pop("plan"), "'plan' is missing"),
    "plan-wrong-type": (lambda m: m["plan"].__setitem__("samples", "48"), "plan.samples"),
    "plan-lies": (lambda m: m["plan"].__setitem__("samples", 47), "plan.samples is 47"),
    "shards-not-list": (lambda m: m.__setitem__("shards", "x"), "'shards' is missing or not a list"),
    "shards-empty": (lambda m: m.__setitem__("shards", []), "lists 0 shards, its config plans 3"),
    "shards-short": (lambda m: m["shards"].pop(), "lists 2 shards"),
    "samples-changed": (lambda m: m["shards"][1].__setitem__("samples", 15), "shard 1 has 15 samples"),
    "bad-sha": (lambda m: m["shards"][0].__setitem__("sha256", "zz"), "sha256 of 64 hex"),
    "negative-bytes": (lambda m: m["shards"][0].__setitem__("bytes", -1), "non-negative samples and bytes"),
    "entry-not-dict": (lambda m: m["shards"].__setitem__(0, 7), "shard entry 0 is not a mapping"),
    "unknown-key": (lambda m: m["config"]["fractal"].__setitem__("evil", 1), "unknown key fractal.evil"),
    "huge-points": (lambda m: m["config"]["fractal"].__setitem__("points", 10**12), "fractal.points"),
    "huge-patches": (lambda m: m["config"]["fractal"].__setitem__("patches", 10**9), "of memory"),
    "categories-garbage": (lambda m: m.__setitem__("categories", [{"label": 0}] * 4), "regenerate the dataset"),
    "wrong-format": (lambda m: m.__setitem__("format", "x"), "not a fractaldb manifest"),
    "labels-shuffled": (lambda m: m["categories"][0].__setitem__("label", 3), "labelled 0..3 in order"),
    "category-id-word": (lambda m: m["categories"][0].__setitem__("id", "x"), "regenerate the dataset"),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_CASES))
@pytest.mark.parametrize("command", ["verify", "regenerate", "export"])
def test_a_tampered_manifest_is_refused_before_any_work(world, case, command):
    root, ds = world
    change, fragment = MANIFEST_CASES[case]
    _tamper(ds, change)
    before, inside = _outside(root, ds), snapshot(ds)
    argv = {"verify": ["verify", ds], "regenerate": ["regenerate", ds, "--shard", 0],
            "export": ["export", ds, "--out", root / "exported"]}[command]
    code, _, err = run_cli(argv)
    assert_one_line_error(code, err, fragment)
    assert _outside(root, ds) == before and snapshot(ds) == inside


@pytest.mark.parametrize("content", [b"[" * 100_000 + b"]" * 100_000, b"{not json", b"\xff\xfe", b""])
def test_a_garbage_manifest_is_one_line(world, content):
    root, ds = world
    (ds / "manifest.json").write_bytes(content)
    code, _, err = run_cli(["verify", ds])
    assert_one_line_error(code, err, "manifest.json")


def test_writes_never_follow_a_link_out_of_the_folder(tmp_path):
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / ".fractaldb-progress").symlink_to(outside)
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", out])
    assert_one_line_error(code, err, "is a symbolic link")
    assert not os.listdir(outside)


def test_a_manifest_that_is_a_folder_or_a_fifo_is_not_read(world):
    root, ds = world
    (ds / "manifest.json").unlink()
    (ds / "manifest.json").mkdir()
    code, _, err = run_cli(["verify", ds])
    assert_one_line_error(code, err, "not a regular file")
    (ds / "manifest.json").rmdir()
    os.mkfifo(ds / "manifest.json")
    code, _, err = run_cli(["regenerate", ds, "--shard", 0])  # would block forever if it were opened
    assert_one_line_error(code, err, "not a regular file")


# -- 2. the user's files -------------------------------------------------------------------------

def test_render_refuses_an_out_that_holds_its_input(tmp_path):
    proj = tmp_path / "proj"
    code, _, err = run_cli(["search", "--out", proj / "cats", "--categories", 2, "--workers", 1])
    assert code == 0, err
    (proj / "mine.txt").write_text("keep\n")
    before = snapshot(proj)
    code, _, err = run_cli(["render", "--params", proj / "cats", "--out", proj, "--overwrite", "--size", 32,
                            "--points", 200, "--patches", 1, "--weights", "none"])
    assert_one_line_error(code, err, "holds the input")
    assert snapshot(proj) == before


def test_export_refuses_to_replace_its_own_dataset(world):
    root, ds = world
    before = snapshot(root)
    code, _, err = run_cli(["export", ds, "--out", ds, "--overwrite"])
    assert_one_line_error(code, err, "holds the input")
    code, _, err = run_cli(["export", ds, "--out", root, "--overwrite"])
    assert_one_line_error(code, err, "holds the input")
    assert snapshot(root) == before


def test_an_out_that_is_the_current_folder_is_refused(world, monkeypatch):
    root, ds = world
    monkeypatch.chdir(root)
    before = snapshot(root)
    code, _, err = run_cli(["export", ds, "--out", ".", "--overwrite"])
    assert_one_line_error(code, err, "current folder")
    code, _, err = run_cli(["search", "--out", ".", "--categories", 1, "--overwrite"])
    assert_one_line_error(code, err, "current folder")
    assert snapshot(root) == before


def test_files_that_only_look_like_temporaries_are_never_deleted(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".env.tmp-backup").write_text("secret\n")
    (out / ".x.tmp-1").mkdir()
    (out / ".x.tmp-1" / "a").write_text("mine\n")
    (out / ".fractaldb-tmp-notours").write_text("mine too\n")
    mine = snapshot(out)
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", out, "--resume"])
    assert code == 0, err
    after = snapshot(out)
    assert {k: after[k] for k in mine} == mine
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", out, "--resume"])
    assert code == 0, err
    assert {k: snapshot(out)[k] for k in mine} == mine


def test_our_stale_temporaries_are_removed_with_a_note(tmp_path):
    from fractaldb.safety import temp_name

    out = tmp_path / "out"
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", out])
    assert code == 0, err
    stale = out / temp_name()
    stale.write_bytes(b"half a shard")
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", out, "--resume"])
    assert code == 0, err
    assert not stale.exists()
    assert "note: removed 1 temporary file(s)" in err and "Traceback" not in err


def test_resume_refuses_a_folder_that_is_not_ours(tmp_path):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"jpeg")
    before = snapshot(out)
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", out, "--resume"])
    assert_one_line_error(code, err, "not a fractaldb output")
    assert snapshot(out) == before


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(world):
    root, ds = world
    (ds / ".fractaldb-lock").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    before = snapshot(ds)
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", ds, "--resume"])
    assert_one_line_error(code, err, "another fractaldb run", f"pid {os.getpid()}")
    code, _, err = run_cli(["regenerate", ds, "--shard", 0])
    assert_one_line_error(code, err, "another fractaldb run")
    assert snapshot(ds) == before


def test_a_lock_whose_process_is_gone_is_taken_over(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    out = tmp_path / "out"
    out.mkdir()
    (out / ".fractaldb-lock").write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}))
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", out])
    assert code == 0, err
    assert "note: taking over" in err
    assert not (out / ".fractaldb-lock").exists()


def test_a_staging_folder_of_a_killed_run_is_removed_and_a_live_one_kept(tmp_path):
    import subprocess
    import sys

    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    out = tmp_path / "cats"
    stale = tmp_path / f".fractaldb-tmp-{'a' * 32}-new-cats"
    live = tmp_path / f".fractaldb-tmp-{'b' * 32}-new-cats"
    lookalike = tmp_path / f".fractaldb-tmp-{'c' * 32}-new-cats"  # no marker: not provably ours
    for folder, pid in ((stale, dead), (live, os.getpid()), (lookalike, None)):
        folder.mkdir()
        (folder / "00000.csv").write_text("x")
        if pid is not None:
            (folder / ".fractaldb-staging").write_text(json.dumps({"pid": pid, "host": socket.gethostname()}))
    code, _, err = run_cli(["search", "--out", out, "--categories", 1, "--workers", 1])
    assert code == 0, err
    assert not stale.exists() and live.exists() and lookalike.exists()


def test_preview_writes_through_an_unpredictable_exclusive_temporary(tiny, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    for pid in range(os.getpid() - 2, os.getpid() + 3):  # links where the old code put its temporary
        os.symlink(victim, tmp_path / f".sheet.png.tmp-{pid}.png")
    code, _, err = run_cli(["preview", tiny, "--out", tmp_path / "sheet.png"])
    assert code == 0, err
    assert victim.read_text() == "precious\n"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".fractaldb-tmp-")]


# -- 3. bounds and impossible searches ----------------------------------------------------------

@pytest.mark.parametrize("setting, fragment", [
    ("fractal.points=100000000000", "at most"),
    ("fractal.points=1000000000", "of memory"),
    ("fractal.patches=1000000000", "of memory"),
    ("fractal.image_size=8192", None),
    ("shard_size=100000000000", "shard_size"),
    ("fractal.categories=3000000000", "at most"),
    ("fractal.search_points=100", "smallest workable --points"),
    ("fractal.fill_rate=1.0", "pad border"),
])
def test_unbounded_or_impossible_settings_are_refused_up_front(tmp_path, monkeypatch, setting, fragment):
    monkeypatch.setenv("FRACTALDB_MEMORY_GB", "1")
    out = tmp_path / "out"
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", out, "--set", setting])
    if fragment is None:  # 8192^2 x 3 x 12 images per block: over 1 GiB
        fragment = "of memory"
    line = assert_one_line_error(code, err, fragment)
    assert "FRACTALDB_MEMORY_GB" in line or "at most" in line or "points" in line or "fill rate" in line
    assert not out.exists()


def test_a_worker_count_that_would_exhaust_memory_is_refused(tmp_path):
    from fractaldb.safety import max_workers

    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", tmp_path / "o", "--workers", 100_000])
    assert_one_line_error(code, err, f"at most {max_workers()}")
    code, _, err = run_cli(["search", "--out", tmp_path / "c", "--workers", 100_000])
    assert_one_line_error(code, err, "at most")
    assert not os.listdir(tmp_path)


def test_the_search_names_the_smallest_workable_points_and_has_a_budget(tmp_path):
    code, _, err = run_cli(["search", "--out", tmp_path / "c", "--points", 1000, "--categories", 2])
    assert_one_line_error(code, err, "smallest workable --points (search_points in a preset) is 52429")
    code, _, err = run_cli(["search", "--out", tmp_path / "c", "--fill-rate", 0.99])
    assert_one_line_error(code, err, "pad border")
    code, _, err = run_cli(["search", "--out", tmp_path / "c", "--fill-rate", 0.6, "--points", 200000,
                            "--categories", 2, "--max-candidates", 100, "--workers", 1])
    assert_one_line_error(code, err, "--max-candidates", "accepted only 0 of 2")
    assert not (tmp_path / "c").exists()


def test_preview_refuses_a_sheet_too_large(tiny, tmp_path):
    code, _, err = run_cli(["preview", tiny, "--per-category", 10**9, "--out", tmp_path / "s.png"])
    assert_one_line_error(code, err, "at most 100000 images")
    assert not os.listdir(tmp_path)


# -- 4. readers ----------------------------------------------------------------------------------

def test_export_and_preview_check_size_and_hash_before_trusting_a_shard(world):
    root, ds = world
    data = (ds / TINY_SHARDS[1]).read_bytes()
    (ds / TINY_SHARDS[1]).write_bytes(data[:5120])  # cut at a member boundary: tar itself cannot tell
    code, _, err = run_cli(["export", ds, "--out", root / "ex"])
    assert_one_line_error(code, err, TINY_SHARDS[1], "5120 bytes")
    code, _, err = run_cli(["preview", ds, "--out", root / "p.png", "--limit", 100])
    assert_one_line_error(code, err, TINY_SHARDS[1])
    flipped = bytearray(data)
    flipped[3000] ^= 1
    (ds / TINY_SHARDS[1]).write_bytes(bytes(flipped))
    code, _, err = run_cli(["export", ds, "--out", root / "ex"])
    assert_one_line_error(code, err, TINY_SHARDS[1], "sha256")
    assert not (root / "ex").exists() and not (root / "p.png").exists()
    _no_temporaries(root)


def test_verify_does_not_read_fifos_or_devices_and_finds_extra_files(world):
    root, ds = world
    (ds / TINY_SHARDS[0]).unlink()
    os.symlink("/dev/zero", ds / TINY_SHARDS[0])
    (ds / TINY_SHARDS[1]).unlink()
    os.mkfifo(ds / TINY_SHARDS[1])
    (ds / "tiny-000099.tar").write_bytes(b"x")
    (ds / "wids-index.json").write_text("garbage")
    (ds / "_info.json").write_text(json.dumps({"splits": {}}))
    code, out, err = run_cli(["verify", ds])
    assert code == 1, err
    assert "Traceback" not in err
    for fragment in (f"{TINY_SHARDS[0]}: ", f"{TINY_SHARDS[1]}: ", "tiny-000099.tar: a shard file the manifest does "
                     "not list", "wids-index.json: does not match", "_info.json: does not match"):
        assert fragment in err, (fragment, err)
    assert err.count("not a regular file") == 2
    assert "error: 2 shard(s) do not match the manifest; run fractaldb regenerate" in err
    assert "error: 3 other file(s) do not match the manifest" in err


def test_a_corrupt_image_in_a_folder_is_one_line_naming_it(tmp_path):
    import struct
    import zlib

    import numpy as np
    from PIL import Image

    for cls in ("a", "b"):
        (tmp_path / "f" / cls).mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "f" / "a" / "1.png")
    (tmp_path / "f" / "b" / "2.png").write_bytes(b"\x89PNG garbage")
    code, _, err = run_cli(["preview", tmp_path / "f", "--out", tmp_path / "s.png"])
    assert_one_line_error(code, err, "2.png", "not a readable image")

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))
    (tmp_path / "f" / "b" / "2.png").write_bytes(bomb)
    code, _, err = run_cli(["preview", tmp_path / "f", "--out", tmp_path / "s.png"])
    assert_one_line_error(code, err, "2.png", "DecompressionBombError")
    from fractaldb.errors import InputError

    pytest.importorskip("torchvision")
    from fractaldb.train.sources import load_image

    with pytest.raises(InputError, match="2.png is not a readable image"):
        load_image(str(tmp_path / "f" / "b" / "2.png"))


def test_loaders_raise_a_clear_error_or_skip_with_a_warning(world):
    pytest.importorskip("webdataset")
    from fractaldb.data import shard_dataset
    from fractaldb.errors import InputError

    root, ds = world
    shard = ds / TINY_SHARDS[0]
    data = bytearray(shard.read_bytes())
    i = data.find(b"IDAT")
    data[i + 8:i + 200] = bytes(192)  # same size, a broken PNG inside
    shard.write_bytes(bytes(data))
    with pytest.raises(InputError, match=f"{TINY_SHARDS[0]}: sample .* cannot be decoded"):
        list(shard_dataset(ds, resampled=False, shuffle=0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        n = sum(1 for _ in shard_dataset(ds, resampled=False, shuffle=0, handler="warn"))
    assert n == 47
    assert any("skipped" in str(w.message) for w in caught)
    shard.write_bytes(bytes(data[:1024]))  # shorter than the manifest says: refused before reading
    with pytest.raises(InputError, match="1024 bytes, the manifest says"):
        shard_dataset(ds, resampled=False)


# -- 5. presets, URLs, schedulers ----------------------------------------------------------------

@pytest.mark.parametrize("text, fragment", [
    (b"name: a\nname: b\n", "key 'name' is given twice"),
    (b"fractal:\n  points: 1\n  points: 2\n", "given twice"),
    (b"name: t\xff\n", "not UTF-8"),
    (b"a: [" * 50_000, "nested too deeply"),
])
def test_bad_preset_files_are_one_line(tmp_path, text, fragment):
    (tmp_path / "p.yaml").write_bytes(text)
    code, _, err = run_cli(["presets", "show", tmp_path / "p.yaml"])
    assert_one_line_error(code, err, fragment)


def test_preset_names_are_never_paths(tmp_path):
    for name in ("../../etc/passwd", "../presets/tiny", "/etc/hostname"):
        code, _, err = run_cli(["presets", "show", name])
        assert_one_line_error(code, err, "unknown preset")
    (tmp_path / "d.yaml").mkdir()
    os.mkfifo(tmp_path / "f.yaml")
    for p in ("d.yaml", "f.yaml"):  # a folder, a FIFO (never opened)
        code, _, err = run_cli(["presets", "show", tmp_path / p])
        assert_one_line_error(code, err, "not a regular file")


@pytest.mark.parametrize("url", ["zip://x.zip", "http://127.0.0.1:1/x", "memory://x", "ftp://h/x",
                                 "simplecache::s3://b/x"])
def test_outputs_that_cannot_hold_a_dataset_are_refused(tmp_path, monkeypatch, url):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", url])
    assert_one_line_error(code, err, "cannot hold a dataset")
    assert not os.listdir(tmp_path)


def test_an_unknown_scheduler_scheme_is_one_line(tmp_path):
    pytest.importorskip("distributed")
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", tmp_path / "o", "--executor", "dask",
                            "--scheduler", "foo://bar:1"])
    assert_one_line_error(code, err, "unknown address scheme 'foo'")
    assert not (tmp_path / "o").exists()


def test_category_files_with_odd_names_load(tmp_path):
    code, _, err = run_cli(["search", "--out", tmp_path / "c", "--categories", 1, "--workers", 1])
    assert code == 0, err
    os.rename(tmp_path / "c" / "00000.csv", tmp_path / "c" / "\u00b2.csv")
    code, _, err = run_cli(["render", "--params", tmp_path / "c", "--out", tmp_path / "r", "--size", 32,
                            "--points", 200, "--patches", 1, "--weights", "none"])
    assert code == 0, err


@pytest.mark.parametrize("errno_name", ["ENOSPC", "EFBIG"])
def test_a_full_disk_is_one_line_and_leaves_no_temporaries(tmp_path, monkeypatch, errno_name):
    import builtins
    import errno

    import fractaldb.storage as storage

    real_open = builtins.open
    calls = {"n": 0}

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(getattr(errno, errno_name), os.strerror(getattr(errno, errno_name)))

    def full_after_two(path, mode="r", *a, **k):
        f = real_open(path, mode, *a, **k)
        if "x" in mode:
            calls["n"] += 1
            if calls["n"] > 2:
                return Full(f)
        return f

    monkeypatch.setattr(storage, "open", full_after_two, raising=False)
    out = tmp_path / "out"
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", out, "--workers", 1])
    assert_one_line_error(code, err, os.strerror(getattr(errno, errno_name)))
    left = [str(p.relative_to(out)) for p in out.rglob("*")]
    assert not [p for p in left if "tmp" in p or p.endswith(".fractaldb-lock")], left
    monkeypatch.undo()
    code, out_text, err = run_cli(["generate", "--preset", "tiny", "--out", out, "--resume"])
    assert code == 0, err
    assert run_cli(["verify", out])[0] == 0


def test_a_newline_in_a_path_keeps_the_error_on_one_line(tmp_path):
    code, _, err = run_cli(["verify", tmp_path / "a\nb"])
    assert_one_line_error(code, err, "a\\nb does not exist")
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", tmp_path / "o", "--set", "seed=x\ny"])
    assert_one_line_error(code, err, "seed")


def test_training_settings_are_bounded_too(monkeypatch):
    pytest.importorskip("torch")
    from fractaldb.errors import ConfigError
    from fractaldb.train.config import resolve_config

    monkeypatch.setenv("FRACTALDB_MEMORY_GB", "1")
    with pytest.raises(ConfigError, match="a batch of 100000 images of 224x224 would need"):
        resolve_config("pretrain", "paper", {"batch_size": 100_000})
    with pytest.raises(ConfigError, match="--workers from the command line must be at most"):
        resolve_config("pretrain", "paper", {"workers": 100_000})
    assert resolve_config("pretrain", "deit-tiny", {})["batch_size"] == 1024  # the recipes fit


def test_overwriting_an_out_that_is_a_link_replaces_the_link_not_its_target(tiny, tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep.txt").write_text("mine\n")
    (tmp_path / "out").symlink_to(target)
    code, _, err = run_cli(["export", tiny, "--out", tmp_path / "out", "--overwrite"])
    assert code == 0, err
    assert (target / "keep.txt").read_text() == "mine\n" and not (tmp_path / "out").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "out"]


@pytest.mark.parametrize("setting, fragment", [
    ("perlin.octaves=[1, 1000000000]", "high <= 32"),
    ("perlin.lacunarity=[2.0, 1e300]", "high <= 16"),
    ("perlin.instances=100000000000", "at most"),
    ("perlin.classes=2000000000", "of memory"),
])
def test_perlin_counts_are_bounded(tmp_path, monkeypatch, setting, fragment):
    monkeypatch.setenv("FRACTALDB_MEMORY_GB", "1")
    code, _, err = run_cli(["generate", "--preset", "perlin-tiny", "--out", tmp_path / "o", "--set", setting])
    assert_one_line_error(code, err, fragment)
    assert not (tmp_path / "o").exists()
