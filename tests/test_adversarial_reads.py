"""Hostile input, round 2 (issue 27): what fractaldb reads.

A dataset that *verifies ok* but was tampered with (its manifest's hashes made to match),
images that are decompression bombs or FIFOs, metadata that is not what fractaldb writes,
manifests whose names, versions and descriptions are built to break the card, the
indexes or a shell, web servers that lie about sizes or never finish.  Every case
asserts the exit code, the single ``error: ...`` line (no traceback, no warning) and what
is on disk.  The writes are in tests/test_adversarial_writes.py.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time

import numpy as np
import pytest

from hostile import (Server, bomb_png, edit_member, endless_route, file_route, png_bytes, rewrite_shard, stalled_route,
                     temporaries)
from tinyset import TINY_SHARDS, assert_one_line_error, copy_tiny, run_cli, snapshot


@pytest.fixture
def ds(tmp_path, tmp_path_factory):
    return copy_tiny(tmp_path_factory, tmp_path / "ds")


def _verifies(ds) -> None:
    code, _, err = run_cli(["verify", ds])
    assert code == 0, err


# -- 1. a dataset that verifies ok but was tampered with -------------------------------------

def _meta(change):
    def edit(data):
        meta = json.loads(data)
        change(meta)
        return json.dumps(meta).encode()
    return edit


SAMPLE_CASES = {
    "json-without-label": (edit_member(".json", _meta(lambda m: m.pop("label"))), "has no label"),
    "label-is-text": (edit_member(".json", _meta(lambda m: m.__setitem__("label", "2"))), "is not an integer"),
    "label-is-a-float": (edit_member(".json", _meta(lambda m: m.__setitem__("label", 1.5))), "is not an integer"),
    "label-is-true": (edit_member(".json", _meta(lambda m: m.__setitem__("label", True))), "is not an integer"),
    "label-beyond-the-classes": (edit_member(".json", _meta(lambda m: m.__setitem__("label", 40))),
                                 "outside the manifest's classes 0..3"),
    "json-is-not-json": (edit_member(".json", b"\x00not json{"), "is not valid JSON"),
    "json-is-a-list": (edit_member(".json", b"[1, 2]"), "is not a JSON object"),
    "json-nested-deep": (edit_member(".json", b"[" * 50000 + b"]" * 50000), "is not valid JSON"),
    "family-unknown": (edit_member(".json", _meta(lambda m: m.__setitem__("family", "../../etc"))),
                       "not one of the dataset's"),
    "cls-disagrees": (edit_member(".cls", lambda d: str((int(d) + 1) % 4).encode()), "different labels"),
    "cls-not-a-number": (edit_member(".cls", b"1e3"), "is not a decimal integer"),
    "image-is-a-bomb": (edit_member(".png", bomb_png()), "DecompressionBombError"),
    "member-with-a-space": (lambda ms: [(n.replace(".json", " x.json"), d) if n.endswith(".json") else (n, d)
                                        for n, d in ms], "not a fractaldb sample member"),
}


@pytest.mark.parametrize("case", sorted(SAMPLE_CASES))
@pytest.mark.parametrize("command", ["report", "export", "preview"])
def test_a_tampered_dataset_that_verifies_is_one_line_for_every_reader(ds, tmp_path, case, command):
    change, fragment = SAMPLE_CASES[case]
    rewrite_shard(ds, 0, change)
    _verifies(ds)
    out = tmp_path / ("sheet.png" if command == "preview" else "out")
    argv = [command, ds, "--out", out] + (["--limit", 100] if command == "preview" else [])
    code, _, err = run_cli(argv)
    line = assert_one_line_error(code, err, fragment)
    assert TINY_SHARDS[0] in line  # names the shard (and the sample)
    assert not out.exists() and not temporaries(tmp_path)


def test_the_loader_checks_labels_and_bounds_images_too(ds):
    pytest.importorskip("webdataset")
    from fractaldb.data import shard_dataset
    from fractaldb.errors import InputError

    rewrite_shard(ds, 0, edit_member(".cls", b"7"))  # a label the manifest's 4 classes do not have
    with pytest.raises(InputError, match=r"cannot be decoded \(its .cls is not a label 0..3\)"):
        list(shard_dataset(ds, resampled=False, shuffle=0))
    rewrite_shard(ds, 0, edit_member(".cls", b"0"))
    rewrite_shard(ds, 1, edit_member(".png", bomb_png(20000)))  # over the pixel bound, under PIL's error
    with pytest.raises(InputError, match="cannot be decoded .DecompressionBomb"):
        list(shard_dataset(ds, resampled=False, shuffle=0))


def test_report_checks_every_shard_against_the_manifest(ds, tmp_path):
    data = bytearray((ds / TINY_SHARDS[2]).read_bytes())
    data[2000] ^= 0xFF  # the last shard: report reads it only after the first two
    (ds / TINY_SHARDS[2]).write_bytes(bytes(data))
    code, _, err = run_cli(["report", ds, "--out", tmp_path / "r"])
    assert_one_line_error(code, err, TINY_SHARDS[2], "sha256")
    assert not (tmp_path / "r").exists()


# -- 2. images that hang or explode: the transfer study's targets ----------------------------

def _imagefolder(root, classes=("a", "b"), per_class=6):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            (root / c / f"{i}.png").write_bytes(png_bytes(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)))
    return root


def _load_in_thread(target, seconds=30):
    """load_target in a thread: a test that would hang fails instead."""
    from fractaldb.experiments.targets import load_target

    box = {}

    def run():
        try:
            box["value"] = load_target(target, 16)
        except BaseException as exc:  # noqa: BLE001
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "reading the target hung"
    return box


@pytest.mark.parametrize("plant, fragment", [
    ("fifo", "not a regular file"),
    ("dev-zero", "not a regular file"),
    ("bomb", "DecompressionBombError"),
    ("folder", "not a regular file"),
    ("truncated", "not a readable image"),
])
def test_a_transfer_target_never_hangs_or_explodes(tmp_path, plant, fragment):
    pytest.importorskip("torch")
    from fractaldb.errors import InputError

    root = _imagefolder(tmp_path / "t")
    victim = root / "b" / "zz.png"
    if plant == "fifo":
        os.mkfifo(victim)
    elif plant == "dev-zero":
        os.symlink("/dev/zero", victim)
    elif plant == "bomb":
        victim.write_bytes(bomb_png())
    elif plant == "folder":
        victim.mkdir()
    else:
        victim.write_bytes(png_bytes(np.zeros((64, 64, 3), np.uint8))[:60])
    box = _load_in_thread(f"imagefolder:{root}")
    assert isinstance(box.get("error"), InputError), box
    assert "zz.png" in str(box["error"]) and fragment in str(box["error"])


@pytest.mark.parametrize("layout, fragment", [
    ({"a": 8}, "has 1 class"),
    ({"a": 8, "b": 1}, "'b' has"),
])
def test_a_target_a_study_cannot_learn_is_refused(tmp_path, layout, fragment):
    pytest.importorskip("torch")
    from fractaldb.errors import InputError

    root = tmp_path / "t"
    for c, n in layout.items():
        _imagefolder(root, (c,), n)
    box = _load_in_thread(f"imagefolder:{root}")
    assert isinstance(box.get("error"), InputError) and fragment in str(box["error"]), box


@pytest.mark.slow
def test_a_one_class_target_is_one_line_and_makes_no_out(tmp_path):
    pytest.importorskip("torch")
    from tinyset import run_process

    root = tmp_path / "t"
    _imagefolder(root, ("only",), 10)
    proc = run_process(["experiment", "transfer", "--protocol", "v1", "--quick", "--target", f"imagefolder:{root}", "--out",
                        tmp_path / "study", "--arms", "scratch", "--shots", "2", "--seeds", "1"], timeout=300)
    assert_one_line_error(proc.returncode, proc.stderr, "has 1 class")
    assert not (tmp_path / "study").exists()


# -- 3. what the card and the indexes quote ---------------------------------------------------

HOSTILE_DESCRIPTION = "line one\n```\n<img src=x onerror=alert(1)>\n````` and ` <b>bold</b> & [x](javascript:y)"


def _outside_code(markdown: str) -> str:
    """The text of ``markdown`` outside fenced code blocks (CommonMark: a block closes at a fence of
    the same character at least as long as the one that opened it)."""
    out, fence = [], None
    for line in markdown.splitlines():
        m = re.match(r"^ {0,3}(`{3,}|~{3,})", line)
        if fence is None and m:
            fence = m.group(1)
        elif fence is not None and m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                and not line.strip()[len(m.group(1)):]:
            fence = None
        elif fence is None:
            out.append(line)
    assert fence is None, "a code block is never closed"
    return "\n".join(out)


def test_the_card_fences_and_escapes_what_it_quotes(tmp_path):
    out = tmp_path / "d"
    code, _, err = run_cli(["generate", "--preset", "tiny", "--set", "fractal.categories=2", "--set",
                            f"description={json.dumps(HOSTILE_DESCRIPTION)}", "--out", out])
    assert code == 0, err
    card = (out / "README.md").read_text()
    body = card.split("\n---\n", 1)[1]
    outside = _outside_code(body)
    assert "<img" not in outside and "<b>" not in outside and "onerror" not in outside
    assert "`````" not in outside  # the description stayed inside its block
    assert "onerror" in body  # ... where it is shown as it is
    from fractaldb.card import card_header, md

    assert md("<b>x</b> [l](u) *e*") == "&lt;b&gt;x&lt;/b&gt; \\[l\\]\\(u\\) \\*e\\*"
    import yaml

    head = yaml.safe_load(card.split("\n---\n", 1)[0][4:])
    assert head == json.loads(json.dumps(card_header(json.loads((out / "manifest.json").read_text()))))


@pytest.mark.parametrize("field, value, fragment", [
    ("name", "tiny-*", "is not its config's"),
    ("name", "other", "is not its config's"),
    ("name", ["tiny"], "'name' is not text"),
    ("versions", {"numpy": "2.0\n```<script>"}, "not a package name and a version string"),
    ("versions", {"num py": "2.0"}, "not a package name and a version string"),
    ("versions", {"numpy": 2}, "not a package name and a version string"),
    ("versions", {f"p{i}": "1" for i in range(100)}, "at most 64 packages"),
    ("records", "not a list", "'records' is not a list"),
])
@pytest.mark.parametrize("command", ["verify", "index-hf", "index-energon", "index-dali"])
def test_manifest_names_and_versions_are_checked_before_anything_quotes_them(ds, field, value, fragment, command):
    manifest = json.loads((ds / "manifest.json").read_text())
    manifest[field] = value
    (ds / "manifest.json").write_text(json.dumps(manifest))
    before = snapshot(ds)
    argv = ["verify", ds] if command == "verify" else ["index", ds, "--for", command.split("-")[1]]
    code, _, err = run_cli(argv)
    assert_one_line_error(code, err, fragment)
    assert snapshot(ds) == before


@pytest.mark.parametrize("name, ok", [
    ("données_2-x", True), ("a" * 200, True), ("a" * 201, False), ("é" * 101, False), ("tiny*", False),
    ("ti ny", False), ("ti{ny}", False), ("<b>", False), ("a`b", False), ("", False), ("a\nb", False),
])
def test_a_dataset_name_is_a_name(name, ok):
    from fractaldb.errors import ConfigError
    from fractaldb.config import resolve

    if ok:
        assert resolve("tiny", [("name", name)])["name"] == name
    else:
        with pytest.raises(ConfigError, match="letters, digits, - and _"):
            resolve("tiny", [("name", name)])


@pytest.mark.slow
def test_load_dataset_reads_any_name_the_tool_accepts(tmp_path):
    pytest.importorskip("datasets")
    from datasets import load_dataset

    name = "Données_2-x"
    out = tmp_path / "d"
    code, _, err = run_cli(["generate", "--preset", "tiny", "--set", f"name={name}", "--set",
                            "fractal.categories=2", "--out", out])
    assert code == 0, err
    rows = load_dataset(str(out), split="train", cache_dir=str(tmp_path / "cache"))
    assert len(rows) == 24 and sorted(set(rows["cls"])) == [0, 1]
    code, _, err = run_cli(["index", out, "--for", "energon", "--for", "dali"])
    assert code == 0, err
    import yaml

    split = yaml.safe_load((out / ".nv-meta" / "split.yaml").read_text())
    assert split["split_parts"]["train"] == [f"{name}-{{000000..000001}}.tar"]


def test_dali_and_energon_never_quote_a_member_name_they_cannot_keep(ds):
    rewrite_shard(ds, 1, lambda ms: [(n.replace(".cls", ".c ls"), d) for n, d in ms])
    _verifies(ds)
    for reader in ("dali", "energon"):
        code, _, err = run_cli(["index", ds, "--for", reader])
        assert_one_line_error(code, err, "not a fractaldb sample member")
    assert not list(ds.glob("*.idx")) and not (ds / ".nv-meta").exists()


# -- 4. rebuilds: messages and what is left ---------------------------------------------------

def _manifest_copy(tiny, folder, change):
    folder.mkdir()
    manifest = json.loads((tiny / "manifest.json").read_text())
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder / "manifest.json"


def test_a_rejected_rebuild_names_only_the_versions_that_differ(tiny, tmp_path):
    def reordered_and_edited(m):
        m["versions"] = dict(reversed(list(m["versions"].items())))  # the same versions, another order
        m["shards"][0]["sha256"] = "1" * 64
    src = _manifest_copy(tiny, tmp_path / "a", reordered_and_edited)
    code, _, err = run_cli(["generate", "--from-manifest", src, "--out", tmp_path / "o", "--workers", 1])
    line = assert_one_line_error(code, err, "made with the versions installed here", "edited")
    assert "install those versions" not in line
    assert not (tmp_path / "o").exists()

    def older_numpy(m):
        m["versions"]["numpy"] = "1.26.4"
        m["shards"][1]["sha256"] = "2" * 64
    src = _manifest_copy(tiny, tmp_path / "b", older_numpy)
    code, _, err = run_cli(["generate", "--from-manifest", src, "--out", tmp_path / "o", "--workers", 1])
    line = assert_one_line_error(code, err, "it was made with numpy 1.26.4, this is numpy ", "install those versions")
    assert "numba" not in line and "fractaldb" not in line.split("differs from")[1]
    assert not (tmp_path / "o").exists()


def test_a_rejected_rebuild_into_its_own_folder_keeps_its_manifest(tiny, tmp_path):
    ds = tmp_path / "d"
    src = _manifest_copy(tiny, ds, lambda m: m["shards"][2].__setitem__("sha256", "3" * 64))
    before = src.read_bytes()
    code, _, err = run_cli(["generate", "--from-manifest", src, "--out", ds, "--resume", "--workers", 1])
    assert_one_line_error(code, err, "differs from")
    assert src.read_bytes() == before
    assert not [n for n in os.listdir(ds) if n.endswith((".md", ".json")) and n != "manifest.json"]


def test_a_manifest_that_overflows_is_one_line_without_a_warning(tiny, tmp_path):
    def huge_probabilities(m):
        for row in m["categories"][0]["rows"]:
            row[6] = 1.7e308  # finite, but their sum overflows
    src = _manifest_copy(tiny, tmp_path / "a", huge_probabilities)
    code, _, err = run_cli(["generate", "--from-manifest", src, "--out", tmp_path / "o"])
    assert_one_line_error(code, err, "probabilities must sum to 1")  # one line: no RuntimeWarning before it
    assert not (tmp_path / "o").exists()


def test_a_folder_rebuilt_shard_by_shard_from_an_old_manifest_verifies(tmp_path):
    from pathlib import Path

    old = Path(__file__).parent / "data" / "v0.1.0.dev0" / "tiny" / "manifest.json"
    ds = tmp_path / "d"
    ds.mkdir()
    (ds / "manifest.json").write_bytes(old.read_bytes())
    code, _, err = run_cli(["verify", ds])
    assert code == 1
    assert "'fractaldb index " in err and "--for wids' writes it" in err and "stray" not in err
    assert "write the derived files again: fractaldb index" in err.splitlines()[-1]
    for i in range(3):
        code, _, err = run_cli(["regenerate", ds, "--shard", i])
        assert code == 0, err
    code, out, err = run_cli(["verify", ds])
    assert code == 0, err
    assert {"wids-index.json", "_info.json", "README.md"} <= set(os.listdir(ds))


# -- 5. reads bounded in bytes and time -------------------------------------------------------

def test_index_refuses_an_oversized_shard_without_reading_it(ds):
    with open(ds / TINY_SHARDS[1], "r+b") as f:
        f.truncate(1 << 40)  # a sparse terabyte: reading it whole would never end
    start = time.monotonic()
    code, _, err = run_cli(["index", ds, "--for", "dali"])
    assert_one_line_error(code, err, TINY_SHARDS[1], "verify")
    assert time.monotonic() - start < 30
    assert not list(ds.glob("*.idx"))


@pytest.fixture
def server():
    servers = []

    def make(routes):
        servers.append(Server(routes))
        return servers[-1]
    yield make
    for s in servers:
        s.close()


def test_a_manifest_url_that_never_ends_stops_at_the_bound(server, monkeypatch):
    monkeypatch.setenv("FRACTALDB_MEMORY_GB", "0.02")
    srv = server({"/ds": file_route(b"a listing", 9), "/ds/manifest.json": endless_route(b'{"format": "x')})
    start = time.monotonic()
    code, _, err = run_cli(["verify", f"{srv.url}/ds"])
    assert_one_line_error(code, err, "manifest.json is over the", "bytes this read allows")
    assert time.monotonic() - start < 60


def test_a_server_that_stops_sending_is_one_line_within_the_deadline(server, monkeypatch):
    import fractaldb.remote as remote

    monkeypatch.setitem(remote.HTTP_TIMEOUTS, "read", 1)
    monkeypatch.setitem(remote.HTTP_TIMEOUTS, "connect", 1)
    monkeypatch.setattr(remote, "SLACK", 1.0)
    route = stalled_route(b'{"format": "fractaldb-')
    srv = server({"/ds": file_route(b"a listing", 9), "/ds/manifest.json": route})
    start = time.monotonic()
    try:
        code, _, err = run_cli(["verify", f"{srv.url}/ds"])
    finally:
        route.stop.set()
    assert_one_line_error(code, err, "timed out")
    assert time.monotonic() - start < 30


def test_a_shard_whose_server_lies_about_its_size_is_not_read_past_it(tiny, server):
    manifest = (tiny / "manifest.json").read_bytes()
    entry = json.loads(manifest)["shards"][0]
    shard = (tiny / entry["name"]).read_bytes()
    routes = {f"/ds/{n}": file_route((tiny / n).read_bytes(), (tiny / n).stat().st_size)
              for n in ["manifest.json", "wids-index.json", "_info.json"] + TINY_SHARDS}
    routes[f"/ds/{entry['name']}"] = file_route(shard, None, extra=b"\0" * (1 << 22))  # no length, 4 MiB more
    routes["/ds"] = file_route(b"a listing", 9)
    srv = server(routes)
    code, _, err = run_cli(["verify", f"{srv.url}/ds"])
    assert code == 1 and "Traceback" not in err
    assert f"{entry['name']}: " in err and f"over the {len(shard)} bytes this read allows" in err


# -- 6. category CSVs -------------------------------------------------------------------------

@pytest.mark.parametrize("bom, encoding", [(b"\xef\xbb\xbf", "UTF-8"), (b"\xff\xfe", "UTF-16")])
def test_a_csv_with_a_byte_order_mark_says_so(tmp_path, bom, encoding):
    from fractaldb.ifs.system import IFS, to_csv_bytes

    csv = tmp_path / "00000.csv"
    csv.write_bytes(bom + to_csv_bytes(IFS.from_rows([[0.5, 0, 0, 0.5, 0, 0, 0.5], [0.5, 0, 0, 0.5, 0.5, 0, 0.5]])))
    code, _, err = run_cli(["render", "--params", csv, "--out", tmp_path / "r", "--size", 32, "--points", 200,
                            "--patches", 1, "--weights", "none"])
    assert_one_line_error(code, err, f"{encoding} byte-order mark (BOM)", "00000.csv")
    assert not (tmp_path / "r").exists()


# -- 7. contact sheets: one category, one row -------------------------------------------------

@pytest.mark.parametrize("per_category", [2, 13, 40])
def test_preview_never_wraps_a_category_across_rows(tiny, tmp_path, per_category):
    from PIL import Image

    code, _, err = run_cli(["preview", tiny, "--per-category", per_category, "--limit", 3, "--out",
                            tmp_path / "s.png"])
    assert code == 0, err
    sheet = np.array(Image.open(tmp_path / "s.png"))
    assert sheet.shape[0] == 3 * 66 + 2  # three categories: three rows of 64-pixel cells, 2-pixel gaps
    assert sheet.shape[1] == max(per_category, 1) * 66 + 2
    rows = [sheet[2 + 66 * r:2 + 66 * r + 64] for r in range(3)]
    for r, row in enumerate(rows):  # a tiny class has 12 images: cells past them are background
        filled = [bool((row[:, 2 + 66 * c:2 + 66 * c + 64] != 40).any()) for c in range(per_category)]
        assert filled == [c < min(per_category, 12) for c in range(per_category)], (r, filled)



def test_the_default_deadlines_end_a_frozen_call_within_about_a_minute():
    """Without a configuration of the user's, a call that never ends is one line after
    (connect + read) x attempts + slack, plus the transfer at MIN_RATE: not minutes."""
    import fractaldb.remote as remote

    class S3Like:  # s3fs keeps botocore's settings in config_kwargs
        config_kwargs = remote.fs_kwargs("s3", {})["config_kwargs"]

    assert remote.deadline(S3Like()) == 65.0
    assert remote.deadline(S3Like(), 10 * remote.MIN_RATE) == 75.0
    assert remote.deadline(object()) == 25.0  # http(s): one try
