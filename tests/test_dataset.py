"""``fractaldb generate / verify / regenerate / export``: WebDataset shards plus a manifest (SPEC 3, 8).

The ``tiny`` preset (4 classes x 12 images at 64x64, shard_size 16 -> 3
shards) keeps every case to a second or two.  What is checked:

* the same config gives byte-identical folders for any worker count, CLI or API;
* the shard format (names, fixed tar headers, members, keys, labels, mixing);
* the manifest and the wids / timm indexes agree with the files;
* verify / regenerate find and repair a damaged shard, exactly;
* an interrupted run (an exception, or SIGKILL) leaves no partial shard in
  sight and ``--resume`` finishes it to the same bytes as a clean run;
* bad input ends in one ``error:`` line, exit 2, and nothing written;
* the ImageFolder export has the original names;
* the plan assigns every sample to exactly one shard, shard by shard.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import signal
import subprocess
import tarfile
import time
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

import fractaldb
from fractaldb.config import resolve
from fractaldb.dataset import Dataset, generate, regenerate, verify
from fractaldb.errors import ConfigError, FractalDBError, OutputError
from fractaldb.ifs.system import IFS
from fractaldb.plan import Plan, Sample

from tinyset import (TINY_CLASSES, TINY_FILES, TINY_SAMPLES, TINY_SHARDS, assert_one_line_error,
                     copy_tiny, held_command, run_cli, run_process, snapshot)

KEY_RE = r"c\d{5}-w\d{2}-k\d+-f\d"


def read_tar(data: bytes) -> list:
    """``[(TarInfo, bytes)]`` of a shard, in order."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [(m, tar.extractfile(m).read()) for m in tar.getmembers()]


def samples_of(data: bytes) -> dict:
    """``{key: {ext: bytes}}`` of a shard, keys in tar order."""
    out = {}
    for m, payload in read_tar(data):
        key, _, ext = m.name.partition(".")
        out.setdefault(key, {})[ext] = payload
    return out


def hidden(folder: Path) -> list:
    return [p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if any(part.startswith(".") for part in p.relative_to(folder).parts)]


# --------------------------------------------------------------------------- determinism


@pytest.mark.slow
def test_cli_runs_with_any_worker_count_are_byte_identical(tmp_path, tiny):
    a, b = tmp_path / "A", tmp_path / "B"
    ra = run_process(["generate", "--preset", "tiny", "--out", a])
    assert ra.returncode == 0, ra.stderr
    rb = run_process(["generate", "--preset", "tiny", "--out", b, "--workers", "2"])
    assert rb.returncode == 0, rb.stderr
    assert "Traceback" not in ra.stderr + rb.stderr
    assert "48 images of 4 classes in 3 shards" in ra.stdout
    sa, sb = snapshot(a), snapshot(b)
    assert sorted(sa) == TINY_FILES  # nothing hidden left: no progress folder, no *.tmp-*
    assert sorted(sb) == TINY_FILES
    assert hidden(a) == [] and hidden(b) == []
    assert sa == sb
    # The library API in this process (numba threads, default workers) gives the same bytes.
    assert snapshot(tiny) == sa


def test_api_single_worker_is_identical(tmp_path, tiny):
    out = tmp_path / "one"
    manifest = generate(resolve("tiny"), str(out), workers=1)
    assert snapshot(out) == snapshot(tiny)
    assert manifest == json.loads((tiny / "manifest.json").read_bytes())


def test_seed_changes_the_bytes(tmp_path, tiny):
    out = tmp_path / "seed2"
    generate(resolve("tiny", ["seed=2"]), str(out))
    assert (out / TINY_SHARDS[0]).read_bytes() != (tiny / TINY_SHARDS[0]).read_bytes()


# --------------------------------------------------------------------------- shard format


def test_shard_names_and_tar_headers(tiny):
    assert sorted(p.name for p in tiny.glob("*.tar")) == TINY_SHARDS
    for name in TINY_SHARDS:
        members = read_tar((tiny / name).read_bytes())
        assert members
        for m, _ in members:
            assert m.isfile()
            assert m.mtime == 0
            assert m.uid == 0 and m.gid == 0
            assert m.uname == "fractaldb" and m.gname == "fractaldb"
            assert m.mode == 0o444
        # ustar magic, so every tar reader agrees on the headers
        assert (tiny / name).read_bytes()[257:263] == b"ustar\x00"


def test_shard_members_keys_and_labels(tiny):
    import re

    total = 0
    all_keys = []
    manifest = json.loads((tiny / "manifest.json").read_bytes())
    ids = {c["label"]: c["id"] for c in manifest["categories"]}
    for entry in manifest["shards"]:
        data = (tiny / entry["name"]).read_bytes()
        members = read_tar(data)
        names = [m.name for m, _ in members]
        assert len(names) == len(set(names))
        # members come grouped per sample: cls, json, image
        for i in range(0, len(names), 3):
            key = names[i].partition(".")[0]
            assert names[i:i + 3] == [f"{key}.cls", f"{key}.json", f"{key}.png"]
        samples = samples_of(data)
        assert len(samples) == entry["samples"]
        labels = set()
        for key, parts in samples.items():
            assert "." not in key
            assert re.fullmatch(KEY_RE, key), key
            assert set(parts) == {"cls", "json", "png"}
            cls = parts["cls"].decode("ascii")
            assert cls.isdigit() and str(int(cls)) == cls
            meta = json.loads(parts["json"])
            assert meta["label"] == int(cls)
            assert meta["key"] == key
            assert meta["family"] == "fractal"
            assert meta["category"] == ids[meta["label"]]
            assert key == f"c{meta['category']:05d}-w{meta['weight']:02d}-k{meta['draw']}-f{meta['flip']}"
            assert 0 <= meta["label"] < TINY_CLASSES
            img = Image.open(io.BytesIO(parts["png"]))
            assert img.format == "PNG" and img.size == (64, 64)
            labels.add(meta["label"])
        assert len(labels) >= 2, f"{entry['name']} holds one class only: the plan must mix blocks"
        total += len(samples)
        all_keys += list(samples)
    assert total == TINY_SAMPLES
    assert len(set(all_keys)) == TINY_SAMPLES


def test_every_image_is_distinct_and_not_blank(tiny):
    import numpy as np

    seen = set()
    for name in TINY_SHARDS:
        for key, parts in samples_of((tiny / name).read_bytes()).items():
            arr = np.asarray(Image.open(io.BytesIO(parts["png"])))
            assert arr.any(), f"{key} is blank"
            seen.add(arr.tobytes())
    assert len(seen) == TINY_SAMPLES


# --------------------------------------------------------------------------- manifest and indexes


def test_manifest(tiny):
    manifest = json.loads((tiny / "manifest.json").read_bytes())
    assert manifest["format"] == "fractaldb-webdataset-v2"
    assert manifest["config"] == resolve("tiny")
    assert manifest["versions"]["fractaldb"] == fractaldb.__version__
    for k in ("numpy", "numba"):
        assert manifest["versions"][k]
    plan = manifest["plan"]
    assert plan["samples"] == TINY_SAMPLES and plan["shards"] == 3 and plan["shard_size"] == 16
    assert plan["classes"] == TINY_CLASSES
    assert plan["segments"] == [{"family": "fractal", "classes": TINY_CLASSES, "blocks_per_class": 1,
                                 "images_per_block": 12, "label_offset": 0}]
    cats = manifest["categories"]
    assert [c["label"] for c in cats] == list(range(TINY_CLASSES))
    searched = Dataset.from_config(resolve("tiny"))
    for c, ifs in zip(cats, searched.part("fractal").classes.systems):
        rows = IFS.from_rows(c["rows"]).rows().tolist()
        assert rows == c["rows"]  # round trip, exact floats
        assert rows == ifs.rows().tolist()  # and what the search found
    assert [e["name"] for e in manifest["shards"]] == TINY_SHARDS
    for e in manifest["shards"]:
        data = (tiny / e["name"]).read_bytes()
        assert e["bytes"] == len(data)
        assert e["sha256"] == hashlib.sha256(data).hexdigest()
        assert e["samples"] == len(samples_of(data))
    assert sum(e["samples"] for e in manifest["shards"]) == TINY_SAMPLES
    # the manifest is enough to rebuild the dataset description
    assert Dataset.from_manifest(manifest).fingerprint() == searched.fingerprint()


def test_wids_index(tiny):
    index = json.loads((tiny / "wids-index.json").read_bytes())
    assert index["__kind__"] == "wids-shard-index-v1"
    assert [s["url"] for s in index["shardlist"]] == TINY_SHARDS
    for s in index["shardlist"]:
        data = (tiny / s["url"]).read_bytes()
        assert s["nsamples"] == len(samples_of(data))
        assert s.get("filesize", len(data)) == len(data)


def test_timm_info(tiny):
    info = json.loads((tiny / "_info.json").read_bytes())
    train = info["splits"]["train"]
    assert train["num_samples"] == TINY_SAMPLES
    assert train["filenames"] == TINY_SHARDS
    assert train["shard_lengths"] == [len(samples_of((tiny / n).read_bytes())) for n in TINY_SHARDS]
    assert info["num_classes"] == TINY_CLASSES


# --------------------------------------------------------------------------- verify and regenerate


def test_verify_ok(tiny):
    code, out, err = run_cli(["verify", tiny])
    assert code == 0, err
    assert err == ""
    assert verify(str(tiny)) == []


def test_verify_finds_a_flipped_byte_and_regenerate_repairs_it(tmp_path_factory, tmp_path, tiny):
    d = copy_tiny(tmp_path_factory, tmp_path / "d")
    target = d / TINY_SHARDS[1]
    good = target.read_bytes()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0x01
    target.write_bytes(bytes(bad))
    code, out, err = run_cli(["verify", d])
    assert code == 1
    assert "Traceback" not in err
    assert TINY_SHARDS[1] in err
    assert TINY_SHARDS[0] not in err and TINY_SHARDS[2] not in err
    assert all(line.startswith("error: ") for line in err.splitlines())
    code, out, err = run_cli(["regenerate", d, "--shard", "1"])
    assert code == 0, err
    assert TINY_SHARDS[1] in out
    assert target.read_bytes() == good
    assert snapshot(d) == snapshot(tiny)
    assert run_cli(["verify", d])[0] == 0


def test_verify_missing_and_truncated_shards(tmp_path_factory, tmp_path, tiny):
    d = copy_tiny(tmp_path_factory, tmp_path / "d")
    (d / TINY_SHARDS[1]).unlink()
    (d / TINY_SHARDS[2]).write_bytes((tiny / TINY_SHARDS[2]).read_bytes()[:1000])
    problems = verify(str(d))
    assert len(problems) == 2
    assert TINY_SHARDS[1] in problems[0] and "missing" in problems[0]
    assert TINY_SHARDS[2] in problems[1]
    code, _, err = run_cli(["verify", d])
    assert code == 1 and TINY_SHARDS[1] in err and TINY_SHARDS[2] in err
    # the fix names the shards' indexes
    assert f"run fractaldb regenerate {d} --shard 1; fractaldb regenerate {d} --shard 2" in err.splitlines()[-1]
    seen = []
    verify(str(d), progress=seen.append)
    assert sum(seen) == TINY_SAMPLES  # every shard reported, missing ones too
    for i in (1, 2):
        assert run_cli(["regenerate", d, "--shard", i])[0] == 0
    assert snapshot(d) == snapshot(tiny)
    assert run_cli(["verify", d])[0] == 0


def test_regenerate_in_a_fresh_process_matches(tmp_path_factory, tmp_path, tiny):
    d = copy_tiny(tmp_path_factory, tmp_path / "d")
    (d / TINY_SHARDS[2]).unlink()
    r = run_process(["regenerate", d, "--shard", "2"])
    assert r.returncode == 0, r.stderr
    assert (d / TINY_SHARDS[2]).read_bytes() == (tiny / TINY_SHARDS[2]).read_bytes()
    assert hidden(d) == []
    r = run_process(["verify", d])
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""


def test_regenerate_refuses_when_the_manifest_hash_differs(tmp_path_factory, tmp_path, tiny):
    d = copy_tiny(tmp_path_factory, tmp_path / "d")
    manifest = json.loads((d / "manifest.json").read_bytes())
    manifest["shards"][0]["sha256"] = "0" * 64
    (d / "manifest.json").write_text(json.dumps(manifest))
    before = (d / TINY_SHARDS[0]).read_bytes()
    code, _, err = run_cli(["regenerate", d, "--shard", "0"])
    assert_one_line_error(code, err, TINY_SHARDS[0])
    assert (d / TINY_SHARDS[0]).read_bytes() == before
    assert hidden(d) == []


@pytest.mark.parametrize("index", ["99", "3", "-1"])
def test_regenerate_out_of_range(tiny, index):
    code, _, err = run_cli(["regenerate", tiny, "--shard", index])
    assert_one_line_error(code, err, index)


@pytest.mark.parametrize("command", ["verify", "regenerate"])
def test_verify_regenerate_on_a_missing_folder(tmp_path, command):
    argv = [command, tmp_path / "nope"] + (["--shard", "0"] if command == "regenerate" else [])
    code, _, err = run_cli(argv)
    assert_one_line_error(code, err, "nope")
    assert not (tmp_path / "nope").exists()


@pytest.mark.parametrize("command", ["verify", "regenerate", "export"])
def test_commands_on_a_foreign_directory(tmp_path, command):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not a dataset\n")
    (foreign / "x-000000.tar").write_bytes(b"\0" * 1024)
    before = snapshot(foreign)
    argv = {"verify": ["verify", foreign], "regenerate": ["regenerate", foreign, "--shard", "0"],
            "export": ["export", foreign, "--out", tmp_path / "f"]}[command]
    code, _, err = run_cli(argv)
    assert_one_line_error(code, err, "manifest.json")
    assert snapshot(foreign) == before
    assert not (tmp_path / "f").exists()


def test_verify_on_a_broken_manifest(tmp_path_factory, tmp_path):
    d = copy_tiny(tmp_path_factory, tmp_path / "d")
    (d / "manifest.json").write_text("{not json")
    code, _, err = run_cli(["verify", d])
    assert_one_line_error(code, err, "manifest.json")
    (d / "manifest.json").write_text(json.dumps({"format": "something-else"}))
    code, _, err = run_cli(["verify", d])
    assert_one_line_error(code, err, "manifest.json")


# --------------------------------------------------------------------------- interrupted runs and --resume

SMALL_SHARDS = ["shard_size=4"]  # tiny with 12 shards


def test_resume_after_an_exception(tmp_path, monkeypatch):
    """A run that dies at shard 5 keeps the shards it finished; --resume makes only the rest."""
    import fractaldb.dataset as fd

    cfg = resolve("tiny", SMALL_SHARDS)
    clean = tmp_path / "clean"
    generate(cfg, str(clean), workers=1)
    out = tmp_path / "out"
    real = fd.build_shard
    calls = []

    def failing(plan, index, *args, **kwargs):
        calls.append(index)
        if index == 5:
            raise RuntimeError("simulated crash")
        return real(plan, index, *args, **kwargs)

    monkeypatch.setattr(fd, "build_shard", failing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        generate(cfg, str(out), workers=1)
    assert not (out / "manifest.json").exists()
    visible = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert visible == [f"tiny-{i:06d}.tar" for i in range(5)]
    for name in visible:
        assert (out / name).read_bytes() == (clean / name).read_bytes()
    # a plain generate refuses the non-empty folder
    with pytest.raises(OutputError):
        generate(cfg, str(out), workers=1)
    calls.clear()
    monkeypatch.setattr(fd, "build_shard", _counting(real, calls))
    generate(cfg, str(out), workers=1, resume=True)
    assert sorted(calls) == list(range(5, 12)), "resume must skip the finished shards"
    assert snapshot(out) == snapshot(clean)


def _counting(real, calls):
    def wrapper(plan, index, *args, **kwargs):
        calls.append(index)
        return real(plan, index, *args, **kwargs)

    return wrapper


def test_resume_redoes_a_damaged_finished_shard(tmp_path, monkeypatch):
    import fractaldb.dataset as fd

    cfg = resolve("tiny", SMALL_SHARDS)
    clean = tmp_path / "clean"
    generate(cfg, str(clean), workers=1)
    out = tmp_path / "out"
    real = fd.build_shard

    def failing(plan, index, *args, **kwargs):
        if index == 6:
            raise RuntimeError("simulated crash")
        return real(plan, index, *args, **kwargs)

    monkeypatch.setattr(fd, "build_shard", failing)
    with pytest.raises(RuntimeError):
        generate(cfg, str(out), workers=1)
    (out / "tiny-000002.tar").write_bytes(b"garbage")
    (out / "tiny-000003.tar").unlink()
    calls = []
    monkeypatch.setattr(fd, "build_shard", _counting(real, calls))
    generate(cfg, str(out), workers=1, resume=True)
    assert sorted(calls) == [2, 3] + list(range(6, 12))
    assert snapshot(out) == snapshot(clean)


# 32 shards of 2 images; the killed run is held from shard 1 on, so the kill lands mid-run.
KILL_SETTINGS = ["categories=4", "points=5000", "image_size=64", "patches=4", "shard_size=2"]


def test_sigkill_then_resume_matches_a_clean_run(tmp_path):
    out = tmp_path / "killed"
    sets = [x for s in KILL_SETTINGS for x in ("--set", s)]
    argv = ["generate", "--preset", "tiny", "--out", out, "--workers", "1", *sets]
    proc = subprocess.Popen(held_command(argv, start=1), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if out.is_dir() and any(p.suffix == ".tar" and not p.name.startswith(".") for p in out.iterdir()):
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()  # a held run never ends by itself (a no-op after the kill above)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it was killed"
    assert not (out / "manifest.json").exists()
    plan = resolve("tiny", KILL_SETTINGS)
    n_shards = 32  # 4 classes x 1 weight x 4 draws x 4 flips / 2
    visible = [p for p in out.iterdir() if not p.name.startswith(".")]
    assert visible, "no shard was finished"
    assert len(visible) < n_shards
    for p in visible:
        assert p.suffix == ".tar"
        with tarfile.open(p) as tar:  # complete: opens, and holds whole samples
            names = tar.getnames()
        assert len(names) == 3 * 2, p.name
    # finish it
    r = run_process(argv + ["--resume"])
    assert r.returncode == 0, r.stderr
    assert hidden(out) == [], "temporary or progress files left behind"
    clean = tmp_path / "clean"
    generate(plan, str(clean))
    assert snapshot(out) == snapshot(clean)
    for p in visible:  # the shards finished before the kill were kept as they were
        assert p.read_bytes() == (clean / p.name).read_bytes()


def test_resume_on_a_finished_run_rewrites_no_shard(tmp_path_factory, tmp_path, tiny, monkeypatch):
    import fractaldb.dataset as fd

    d = copy_tiny(tmp_path_factory, tmp_path / "d")
    stats = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in d.glob("*.tar")}
    calls = []
    monkeypatch.setattr(fd, "build_shard", _counting(fd.build_shard, calls))
    code, out, err = run_cli(["generate", "--preset", "tiny", "--out", d, "--resume"])
    assert code == 0, err
    assert calls == []
    # the summary says what was kept and made, and rates only the new work
    assert "(0 images/s) (kept 48 images in 3 shards of an earlier run; made 0)" in out
    assert snapshot(d) == snapshot(tiny)
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in d.glob("*.tar")} == stats


def test_generate_into_a_non_empty_folder_needs_resume(tmp_path_factory, tmp_path, tiny):
    d = copy_tiny(tmp_path_factory, tmp_path / "d")
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", d])
    assert_one_line_error(code, err, "--resume")
    assert snapshot(d) == snapshot(tiny)
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine\n")
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", other])
    assert_one_line_error(code, err)
    assert snapshot(other) == {"keep.txt": b"mine\n"}


def test_generate_into_an_existing_empty_folder_and_resume_of_nothing(tmp_path, tiny):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", empty])
    assert code == 0, err
    assert snapshot(empty) == snapshot(tiny)
    fresh = tmp_path / "fresh"
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", fresh, "--resume"])
    assert code == 0, err
    assert snapshot(fresh) == snapshot(tiny)


def test_resume_with_other_settings_is_refused(tmp_path_factory, tmp_path, tiny):
    d = copy_tiny(tmp_path_factory, tmp_path / "d")
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", d, "--resume", "--set", "seed=2"])
    assert_one_line_error(code, err, "other settings")
    assert snapshot(d) == snapshot(tiny)
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", d, "--resume", "--set", "image_size=32"])
    assert_one_line_error(code, err)
    assert snapshot(d) == snapshot(tiny)


def test_resume_of_a_partial_run_with_other_settings_is_refused(tmp_path, monkeypatch):
    import fractaldb.dataset as fd

    out = tmp_path / "out"
    real = fd.build_shard

    def failing(plan, index, *args, **kwargs):
        if index == 3:
            raise RuntimeError("simulated crash")
        return real(plan, index, *args, **kwargs)

    monkeypatch.setattr(fd, "build_shard", failing)
    with pytest.raises(RuntimeError):
        generate(resolve("tiny", SMALL_SHARDS), str(out), workers=1)
    monkeypatch.setattr(fd, "build_shard", real)
    before = snapshot(out)
    with pytest.raises(ConfigError, match="other settings"):
        generate(resolve("tiny", SMALL_SHARDS + ["seed=5"]), str(out), workers=1, resume=True)
    assert snapshot(out) == before


# --------------------------------------------------------------------------- bad input


@pytest.fixture
def bad_inputs(tmp_path):
    (tmp_path / "broken.yaml").write_text("name: tiny\ncategories: [1, 2\n")
    (tmp_path / "unknown.yaml").write_text("name: tiny\ncategories: 2\ncolour: gray\n")
    (tmp_path / "notmapping.yaml").write_text("- 1\n- 2\n")
    (tmp_path / "afile").write_text("a regular file\n")
    return tmp_path


_BAD = {
    "unknown-preset": (["--preset", "no-such-preset"], "no-such-preset"),
    "unknown-set-key": (["--preset", "tiny", "--set", "colour=gray"], "colour"),
    "set-without-equals": (["--preset", "tiny", "--set", "categories"], "categories"),
    "wrong-type": (["--preset", "tiny", "--set", "categories=abc"], "categories"),
    "bool-for-int": (["--preset", "tiny", "--set", "categories=true"], "categories"),
    "shard-size-0": (["--preset", "tiny", "--set", "shard_size=0"], "shard_size"),
    "negative-size": (["--preset", "tiny", "--set", "image_size=-64"], "image_size"),
    "bad-format": (["--preset", "tiny", "--set", "image_format=bmp"], "image_format"),
    "bad-name": (["--preset", "tiny", "--set", "name=a.b"], "name"),
    "workers-0": (["--preset", "tiny", "--workers", "0"], "workers"),
    "broken-yaml": (["--preset", "{d}/broken.yaml"], "broken.yaml"),
    "yaml-unknown-key": (["--preset", "{d}/unknown.yaml"], "colour"),
    "yaml-not-mapping": (["--preset", "{d}/notmapping.yaml"], "notmapping.yaml"),
    "missing-yaml": (["--preset", "{d}/missing.yaml"], "missing.yaml"),
}


@pytest.mark.parametrize("case", sorted(_BAD))
def test_generate_bad_input(bad_inputs, case):
    args, fragment = _BAD[case]
    out = bad_inputs / "out"
    argv = ["generate", *[a.replace("{d}", str(bad_inputs)) for a in args], "--out", out]
    code, stdout, err = run_cli(argv)
    assert_one_line_error(code, err, fragment)
    assert not out.exists()
    assert not list(bad_inputs.glob(".out*"))


def test_generate_unwritable_out(bad_inputs):
    out = bad_inputs / "afile" / "out"
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", out])
    assert_one_line_error(code, err, "afile")
    assert (bad_inputs / "afile").read_text() == "a regular file\n"


def test_generate_out_is_a_file(bad_inputs):
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", bad_inputs / "afile"])
    assert_one_line_error(code, err)
    assert (bad_inputs / "afile").read_text() == "a regular file\n"


@pytest.mark.parametrize("args", [["--preset", "no-such-preset"], ["--preset", "tiny", "--set", "categories=abc"],
                                  ["--preset", "tiny", "--workers", "0"]])
def test_generate_bad_input_in_a_real_process(tmp_path, args):
    """No traceback and no progress bar on a user's terminal."""
    out = tmp_path / "out"
    r = run_process(["generate", *args, "--out", out])
    assert_one_line_error(r.returncode, r.stderr)
    assert r.stdout == ""
    assert not out.exists()


def test_library_errors_are_value_errors(tmp_path):
    with pytest.raises(FractalDBError):
        generate(resolve("tiny"), str(tmp_path / "o"), workers=-1)
    with pytest.raises(ValueError):
        resolve("tiny", ["shard_size=0"])
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- export


def test_export_imagefolder_with_the_original_names(tmp_path, tiny):
    dest = tmp_path / "F"
    code, out, err = run_cli(["export", tiny, "--out", dest])
    assert code == 0, err
    assert "48 images" in out
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    expected = sorted(f"{c:05d}/{c:05d}_00_count_{k}_flip{t}.png"
                      for c in range(4) for k in range(3) for t in range(4))
    assert files == sorted(expected + ["classes.json"])
    assert json.loads((dest / "classes.json").read_text()) == {f"{c:05d}": c for c in range(4)}
    # the bytes are the shards' PNG members
    by_key = {}
    for name in TINY_SHARDS:
        by_key.update(samples_of((tiny / name).read_bytes()))
    for key, parts in by_key.items():
        meta = json.loads(parts["json"])
        f = dest / f"{meta['category']:05d}" / f"{meta['category']:05d}_{meta['weight']:02d}_count_{meta['draw']}_flip{meta['flip']}.png"
        assert f.read_bytes() == parts["png"]
    assert not list(tmp_path.glob(".F*")), "temporary export folder left behind"


def test_export_refuses_a_non_empty_destination(tmp_path, tiny):
    dest = tmp_path / "F"
    dest.mkdir()
    (dest / "mine.txt").write_text("keep\n")
    code, _, err = run_cli(["export", tiny, "--out", dest])
    assert_one_line_error(code, err, "--overwrite")
    assert [p.name for p in dest.iterdir()] == ["mine.txt"]
    code, _, err = run_cli(["export", tiny, "--out", dest, "--overwrite"])
    assert code == 0, err
    assert len(list(dest.rglob("*.png"))) == TINY_SAMPLES
    assert not (dest / "mine.txt").exists()


def test_export_under_a_regular_file(tmp_path, tiny):
    (tmp_path / "afile").write_text("x\n")
    code, _, err = run_cli(["export", tiny, "--out", tmp_path / "afile" / "F"])
    assert_one_line_error(code, err, "afile")
    code, _, err = run_cli(["export", tiny, "--out", tmp_path / "afile"])
    assert_one_line_error(code, err, "afile")
    assert (tmp_path / "afile").read_text() == "x\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_export_of_a_missing_dataset(tmp_path):
    code, _, err = run_cli(["export", tmp_path / "nope", "--out", tmp_path / "F"])
    assert_one_line_error(code, err)
    assert not (tmp_path / "F").exists()


# --------------------------------------------------------------------------- plan


def _fractal_plan(categories, weights, draws, flips, shard_size, seed):
    """A one-family plan shaped like a fractal dataset (blocks of draws x flips images)."""
    return Plan.build([("fractal", categories, weights, draws * flips)], shard_size, seed)


PLANS = [
    _fractal_plan(4, 1, 3, 4, 16, 1),     # tiny
    _fractal_plan(5, 3, 2, 4, 7, 9),      # ragged last shard
    _fractal_plan(3, 2, 1, 1, 1, 0),      # one sample a shard
    _fractal_plan(2, 4, 5, 2, 1000, 3),   # one shard
    Plan.build([("fractal", 3, 2, 4), ("perlin", 4, 3, 1)], 5, 2),  # two families, blocks of unequal size
]


def _plan_id(p):
    return "+".join(f"{s.family}:{s.classes}x{s.blocks_per_class}x{s.images_per_block}" for s in p.segments) \
        + f"/{p.shard_size}"


@pytest.mark.parametrize("plan", PLANS, ids=_plan_id)
def test_plan_covers_every_sample_exactly_once(plan):
    everything = Counter()
    for i in range(plan.n_shards):
        samples = plan.shard_samples(i)
        assert len(samples) == plan.shard_length(i)
        assert all(isinstance(s, Sample) for s in samples)
        everything.update(samples)
    expected = {Sample(seg.label_offset + k, seg.family, k, b, o) for seg in plan.segments
                for k, b, o in itertools.product(range(seg.classes), range(seg.blocks_per_class),
                                                 range(seg.images_per_block))}
    assert set(everything) == expected
    assert set(everything.values()) == {1}
    assert plan.n_samples == len(expected)
    assert sum(plan.shard_length(i) for i in range(plan.n_shards)) == plan.n_samples
    assert all(plan.shard_length(i) == plan.shard_size for i in range(plan.n_shards - 1))
    with pytest.raises(IndexError):
        plan.shard_samples(plan.n_shards)
    with pytest.raises(IndexError):
        plan.shard_samples(-1)


def test_plan_labels_follow_the_family_order():
    plan = PLANS[-1]
    assert [(s.family, s.label_offset) for s in plan.segments] == [("fractal", 0), ("perlin", 3)]
    labels = {s.family: set() for s in plan.segments}
    for i in range(plan.n_shards):
        for s in plan.shard_samples(i):
            labels[s.family].add(s.label)
    assert labels == {"fractal": {0, 1, 2}, "perlin": {3, 4, 5, 6}}


@pytest.mark.parametrize("plan", [PLANS[0], PLANS[1], PLANS[-1]], ids=_plan_id)
def test_plan_shard_is_independent_of_other_shards(plan):
    in_order = [plan.shard_samples(i) for i in range(plan.n_shards)]
    for i in reversed(range(plan.n_shards)):
        fresh = Plan(plan.segments, plan.shard_size, plan.seed)
        assert fresh.shard_samples(i) == in_order[i]


def test_plan_mixes_classes_and_depends_on_the_seed():
    plan = PLANS[1]
    per = plan.segments[0].images_per_block
    bpc = plan.segments[0].blocks_per_class
    for i in range(plan.n_shards):
        # a shard holds exactly the blocks its slice of the shuffled block sequence touches
        start, stop = i * plan.shard_size, i * plan.shard_size + plan.shard_length(i)
        touched = {divmod(int(b), bpc) for b in plan.block_order[start // per:(stop - 1) // per + 1]}
        assert {(s.klass, s.block) for s in plan.shard_samples(i)} == touched
    # consecutive samples of the block sequence are not in category order
    assert list(plan.block_order) != sorted(plan.block_order)
    big = _fractal_plan(6, 1, 2, 2, 6, 4)
    for i in range(big.n_shards):
        assert len({s.label for s in big.shard_samples(i)}) >= 2
    other = Plan(plan.segments, plan.shard_size, plan.seed + 1)
    assert [other.shard_samples(i) for i in range(other.n_shards)] != \
        [plan.shard_samples(i) for i in range(plan.n_shards)]
    # within a shard the samples are shuffled, not in block order
    tiny = PLANS[0]
    s = tiny.shard_samples(0)
    assert s != sorted(s, key=lambda x: (x.label, x.block, x.offset))


def test_regenerate_api_returns_the_manifest_entry(tmp_path_factory, tmp_path, tiny):
    d = copy_tiny(tmp_path_factory, tmp_path / "d")
    (d / TINY_SHARDS[0]).unlink()
    entry = regenerate(str(d), 0)
    manifest = json.loads((d / "manifest.json").read_bytes())
    assert entry == manifest["shards"][0]
    assert verify(str(d)) == []


def test_on_plan_reports_the_total_and_what_a_resume_keeps(tmp_path_factory, tmp_path, tiny):
    seen, made = [], []
    generate(resolve("tiny"), str(tmp_path / "fresh"), on_plan=lambda *a: seen.append(a), progress=made.append)
    assert seen == [(TINY_SAMPLES, 0, 0)] and sum(made) == TINY_SAMPLES
    d = copy_tiny(tmp_path_factory, tmp_path / "d")
    lost = json.loads((d / "manifest.json").read_text())["shards"][1]
    (d / lost["name"]).unlink()
    seen, made = [], []
    generate(resolve("tiny"), str(d), resume=True, on_plan=lambda *a: seen.append(a), progress=made.append)
    assert seen == [(TINY_SAMPLES, TINY_SAMPLES - lost["samples"], 2)] and made == [lost["samples"]]
    assert snapshot(d) == snapshot(tiny)
