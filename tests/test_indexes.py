"""``fractaldb index DIR --for energon|dali|wids|hf``: other readers' index files.

The format tests always run: every offset in our DALI ``.idx`` and Energon
``.tar.idx`` / ``index.sqlite`` is checked against the tar members as Python's
``tarfile`` reads them.  Where the readers are installed (megatron-energon and
nvidia-dali both install and run on a CPU-only machine), the files are also
compared with what their own tools write (``wds2idx``, ``energon prepare``) and
the real readers load the dataset through them with the right labels.
"""

from __future__ import annotations

import json
import sqlite3
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from fractaldb.indexes import dali_index, energon_tar_index, write_indexes
from tinyset import assert_one_line_error, copy_tiny, run_cli, snapshot

SHARDS = ["tiny-000000.tar", "tiny-000001.tar", "tiny-000002.tar"]


@pytest.fixture
def tiny(tmp_path_factory, tmp_path):
    return copy_tiny(tmp_path_factory, tmp_path / "tiny")


def _members(path):
    with tarfile.open(path) as tar:
        return [(m.name, m.offset, m.offset_data, m.size, tar.extractfile(m).read()) for m in tar if m.isreg()], \
            tar.offset


def _labels(folder):
    out = {}
    for shard in SHARDS:
        for name, *_, data in _members(folder / shard)[0]:
            if name.endswith(".cls"):
                out[name[:-4]] = int(data)
    return out


def test_dali_index_format(tiny):
    code, out, err = run_cli(["index", tiny, "--for", "dali"])
    assert code == 0, err
    assert "3 index files for dali" in out
    for shard in SHARDS:
        idx = (tiny / shard.replace(".tar", ".idx")).read_text().splitlines()
        members, _ = _members(tiny / shard)
        assert idx[0] == "v1.2 16"
        raw = (tiny / shard).read_bytes()
        seen = []
        for line in idx[1:]:
            words = line.split(" ")
            assert len(words) % 4 == 0
            keys = set()
            for i in range(0, len(words), 4):
                ext, off, size, name = words[i], int(words[i + 1]), int(words[i + 2]), words[i + 3]
                key, _, e = name.partition(".")
                assert e == ext
                keys.add(key)
                seen.append(name)
                assert raw[off:off + size] == next(m[4] for m in members if m[0] == name)
            assert len(keys) == 1  # one sample per line
        assert seen == [m[0] for m in members]  # every member, in order


def test_energon_index_format(tiny):
    code, _, err = run_cli(["index", tiny, "--for", "energon"])
    assert code == 0, err
    meta = tiny / ".nv-meta"
    info = json.loads((meta / ".info.json").read_text())
    assert info["shard_counts"] == {s: 16 for s in SHARDS}
    assert yaml.safe_load((meta / ".info.yaml").read_text()) == info
    assert yaml.safe_load((meta / "split.yaml").read_text()) == {"split_parts": {"train": ["tiny-{000000..000002}.tar"]},
                                                               "exclude": []}
    assert yaml.safe_load((meta / "dataset.yaml").read_text()) == {
        "sample_type": {"__module__": "megatron.energon", "__class__": "ImageClassificationSample"},
        "field_map": {"image": "png", "label": "cls"}}
    db = sqlite3.connect(meta / "index.sqlite")
    for tar_id, shard in enumerate(SHARDS):
        members, end = _members(tiny / shard)
        firsts = [m for i, m in enumerate(members) if i == 0 or m[0].split(".")[0] != members[i - 1][0].split(".")[0]]
        starts = [m[1] for m in firsts] + [end]
        raw = (tiny / shard).read_bytes()
        idx = (tiny / f"{shard}.idx").read_bytes()
        assert struct.unpack(f"<{len(idx) // 8}Q", idx) == tuple(starts)
        rows = db.execute("SELECT sample_key, sample_index, byte_offset, byte_size FROM samples WHERE tar_file_id=? "
                          "ORDER BY sample_index", (tar_id,)).fetchall()
        assert rows == [(m[0].split(".")[0], i, starts[i], starts[i + 1] - starts[i]) for i, m in enumerate(firsts)]
        parts = db.execute("SELECT sample_index, part_name, content_byte_offset, content_byte_size FROM sample_parts "
                           "WHERE tar_file_id=? ORDER BY content_byte_offset", (tar_id,)).fetchall()
        assert len(parts) == len(members)
        for (i, part, off, size), m in zip(parts, members):
            assert m[0] == f"{rows[i][0]}.{part}" and raw[off:off + size] == m[4]
    assert energon_tar_index((tiny / SHARDS[0]).read_bytes()) == (tiny / f"{SHARDS[0]}.idx").read_bytes()


def test_indexes_are_deterministic_and_leave_the_dataset_verifiable(tiny, tmp_path_factory, tmp_path):
    other = copy_tiny(tmp_path_factory, tmp_path / "other")
    write_indexes(str(tiny), ["energon", "dali", "wids", "hf"])
    write_indexes(str(other), ["dali", "energon"])
    write_indexes(str(other), ["hf", "wids"])
    assert snapshot(tiny) == snapshot(other)
    code, _, err = run_cli(["verify", tiny])
    assert code == 0, err


def test_index_refuses_damaged_shards_and_unknown_readers(tiny, tmp_path):
    code, _, err = run_cli(["index", tiny, "--for", "spark"])
    assert_one_line_error(code, err, "'spark' is not one of")
    data = bytearray((tiny / SHARDS[1]).read_bytes())
    data[700] ^= 1
    (tiny / SHARDS[1]).write_bytes(bytes(data))
    code, _, err = run_cli(["index", tiny, "--for", "dali"])
    assert_one_line_error(code, err, "tiny-000001.tar does not match the manifest", "fractaldb verify")
    code, _, err = run_cli(["index", tmp_path / "nowhere", "--for", "dali"])
    assert_one_line_error(code, err, "does not exist")


def test_generate_index_flag(tmp_path):
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", tmp_path / "g", "--index", "dali",
                            "--index", "energon"])
    assert code == 0, err
    assert (tmp_path / "g" / ".nv-meta" / "index.sqlite").is_file()
    assert (tmp_path / "g" / "tiny-000002.idx").is_file()


def test_dali_index_equals_wds2idx(tiny, tmp_path):
    wds2idx = pytest.importorskip("wds2idx", reason="DALI's wds2idx is not installed (pip install nvidia-dali-cuda120)")
    for shard in SHARDS:
        ref = tmp_path / "ref.idx"
        with wds2idx.IndexCreator(str(tiny / shard), str(ref), verbose=False) as creator:
            creator.create_index()
        assert ref.read_bytes() == dali_index((tiny / shard).read_bytes())


def test_energon_files_equal_energon_prepare(tiny, tmp_path_factory, tmp_path):
    pytest.importorskip("megatron.energon", reason="megatron-energon is not installed")
    tool = Path(sys.executable).parent / "energon"
    if not tool.exists():
        pytest.skip("the energon command is not installed")
    ref = copy_tiny(tmp_path_factory, tmp_path / "ref")
    proc = subprocess.run([str(tool), "prepare", str(ref), "--non-interactive", "--split-parts",
                           r"train:tiny-.*\.tar", "--sample-type", "ImageClassificationSample", "--field-map",
                           '{"image": "png", "label": "cls"}', "--num-workers", "1", "--no-progress"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    write_indexes(str(tiny), ["energon"])
    for name in ["split.yaml", "dataset.yaml"] + [f"../{s}.idx" for s in SHARDS]:
        assert (tiny / ".nv-meta" / name).read_bytes() == (ref / ".nv-meta" / name).read_bytes(), name
    ours, theirs = (json.loads((d / ".nv-meta" / ".info.json").read_text()) for d in (tiny, ref))
    assert ours["shard_counts"] == theirs["shard_counts"]

    def dump(folder):
        db = sqlite3.connect(folder / ".nv-meta" / "index.sqlite")
        return (sorted(db.execute("SELECT * FROM samples")), sorted(db.execute("SELECT * FROM sample_parts")),
                sorted(db.execute("SELECT type, name FROM sqlite_master")))

    assert dump(tiny) == dump(ref)


def _energon_lint(folder, *args):
    tool = Path(sys.executable).parent / "energon"
    if not tool.exists():
        pytest.skip("the energon command is not installed")
    return subprocess.run([str(tool), "lint", str(folder), *args], capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # two generates and three lint processes (~15 s)
def test_energon_lint_passes_with_its_defaults_on_a_split_dataset(tmp_path):
    """With a validation split the index has every part Energon's lint checks by default
    (train, val, test); without one it is ``energon prepare``'s train-only index, linted
    with ``--split-parts train`` (docs/streaming.md)."""
    pytest.importorskip("megatron.energon", reason="megatron-energon is not installed")
    split = tmp_path / "split"
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", split, "--set", "val_fraction=0.25",
                            "--index", "energon"])
    assert code == 0, err
    proc = _energon_lint(split)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    plain = tmp_path / "plain"
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", plain, "--index", "energon"])
    assert code == 0, err
    proc = _energon_lint(plain, "--split-parts", "train")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    proc = _energon_lint(plain)  # the defaults ask for a val part this dataset does not have: lint must say so
    assert proc.returncode != 0


def test_energon_loads_the_dataset(tiny):
    energon = pytest.importorskip("megatron.energon", reason="megatron-energon is not installed")
    write_indexes(str(tiny), ["energon"])
    ds = energon.get_train_dataset(str(tiny), batch_size=None, shuffle_buffer_size=None,
                                   max_samples_per_sequence=None, repeat=False,
                                   worker_config=energon.WorkerConfig(rank=0, world_size=1, num_workers=0))
    truth = _labels(tiny)
    got = {}
    for sample in energon.get_loader(ds):
        got[sample.__key__] = int(sample.label)
        assert tuple(sample.image.shape) == (3, 64, 64)
    assert got == truth


def test_dali_reads_the_dataset_on_the_cpu(tiny):
    pytest.importorskip("nvidia.dali", reason="nvidia-dali is not installed")
    import numpy as np
    from nvidia.dali import fn, pipeline_def

    write_indexes(str(tiny), ["dali"])
    paths = [str(tiny / s) for s in SHARDS]

    @pipeline_def(batch_size=16, num_threads=1, device_id=None)  # CPU only
    def pipe():
        img, cls = fn.readers.webdataset(paths=paths, index_paths=[p[:-4] + ".idx" for p in paths],
                                         ext=["png", "cls"], missing_component_behavior="error",
                                         random_shuffle=False, name="r")
        return fn.decoders.image(img, device="cpu"), cls

    p = pipe()
    p.build()
    assert p.epoch_size("r") == 48
    labels = []
    for _ in range(3):
        imgs, cls = p.run()
        labels += [int(bytes(np.array(c)).decode()) for c in cls]
        assert np.array(imgs[0]).shape == (64, 64, 3)
    truth = _labels(tiny)
    # the reader goes through the shards in order, members in tar order
    keys = [name[:-4] for s in SHARDS for name, *_ in _members(tiny / s)[0] if name.endswith(".cls")]
    assert labels == [truth[k] for k in keys]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
