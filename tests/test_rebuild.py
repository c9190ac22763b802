"""``fractaldb generate --from-manifest``: a whole dataset from its manifest alone.

The rebuild goes to a fresh folder (no category search, no original folder)
and must give every file byte for byte; an interrupted rebuild resumes; a
manifest whose shards cannot be reproduced leaves no manifest behind.
"""

from __future__ import annotations

import json
import shutil

import pytest

from fractaldb.errors import InputError
from fractaldb.rebuild import rebuild
from tinyset import assert_one_line_error, run_cli, snapshot, tiny_dataset


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_dataset(tmp_path_factory)


def test_rebuild_from_a_manifest_file_is_byte_identical(tiny, tmp_path):
    # the manifest alone, copied somewhere else under another name
    src = tmp_path / "elsewhere" / "tiny-manifest.json"
    src.parent.mkdir()
    shutil.copy(tiny / "manifest.json", src)
    code, out, err = run_cli(["generate", "--from-manifest", src, "--out", tmp_path / "copy"])
    assert code == 0, err
    assert "48 images of 4 classes in 3 shards" in out
    assert snapshot(tmp_path / "copy") == snapshot(tiny)  # shards, manifest, indexes, card: all of it


def test_rebuild_from_a_folder_or_file_url(tiny, tmp_path):
    new = rebuild(f"file://{tiny}", str(tmp_path / "a"), workers=2)
    assert new == json.loads((tiny / "manifest.json").read_text())
    assert snapshot(tmp_path / "a") == snapshot(tiny)


def test_an_interrupted_rebuild_resumes(tiny, tmp_path):
    out = tmp_path / "b"
    made = []

    def progress(n):
        made.append(n)
        if len(made) == 1:
            raise KeyboardInterrupt  # as if Ctrl-C after the first shard

    with pytest.raises(KeyboardInterrupt):
        rebuild(str(tiny), str(out), workers=1, progress=progress)
    assert not (out / "manifest.json").exists()
    assert len(list(out.glob("tiny-*.tar"))) == 1
    code, _, err = run_cli(["generate", "--from-manifest", tiny, "--out", out])
    assert_one_line_error(code, err, "not empty", "--resume")
    code, stdout, err = run_cli(["generate", "--from-manifest", tiny, "--out", out, "--resume"])
    assert code == 0, err
    assert "kept 16 images in 1 shards of an earlier run; made 32" in stdout
    assert snapshot(out) == snapshot(tiny)


def test_a_manifest_that_does_not_reproduce_leaves_nothing(tiny, tmp_path):
    manifest = json.loads((tiny / "manifest.json").read_text())
    manifest["shards"][1]["sha256"] = "0" * 64
    src = tmp_path / "bad.json"
    src.write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="rebuilt tiny-000001.tar differs from .* made with the versions installed "
                                         "here .* edited"):
        rebuild(str(src), str(tmp_path / "c"), workers=1)
    assert not (tmp_path / "c").exists()  # no shard, manifest, card or index a loader could read


@pytest.mark.parametrize("argv,fragments", [
    (["--from-manifest", "nowhere/manifest.json"], ["nowhere/manifest.json does not exist"]),
    (["--from-manifest", "nowhere"], ["nowhere does not exist"]),
    (["--preset", "tiny", "--from-manifest", "x.json"], ["exactly one of --preset or --from-manifest"]),
    ([], ["exactly one of --preset or --from-manifest"]),
    (["--from-manifest", "x.json", "--set", "seed=2"], ["--from-manifest rebuilds it as it is"]),
])
def test_from_manifest_mistakes_are_one_line(argv, fragments, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["generate", *argv, "--out", tmp_path / "d"])
    assert_one_line_error(code, err, *fragments)
    assert not (tmp_path / "d").exists()


def test_not_a_manifest(tmp_path):
    (tmp_path / "m.json").write_text('{"format": "something else"}')
    code, _, err = run_cli(["generate", "--from-manifest", tmp_path / "m.json", "--out", tmp_path / "e"])
    assert_one_line_error(code, err, "is not a fractaldb manifest")
