"""An optional validation split (issue 28): ``--set val_fraction=F`` holds the last shards out;
every index (wids, timm, Hugging Face card, Energon) and the card name it."""

from __future__ import annotations

import json
import warnings

import pytest
import yaml

from fractaldb.config import resolve, shard_splits, val_shard_count
from fractaldb.errors import ConfigError

from tinyset import TINY_SHARDS, assert_one_line_error, hf_offline, run_cli


@pytest.fixture(scope="module")
def split_ds(tmp_path_factory):
    out = tmp_path_factory.mktemp("val") / "d"
    code, _, err = run_cli(["generate", "--preset", "tiny", "--set", "val_fraction=0.34", "--out", out,
                            "--index", "energon", "--workers", "1"])
    assert code == 0, err
    return out


def test_the_split_is_the_last_shards_and_recorded_only_when_asked(split_ds, tiny):
    assert "val_fraction" not in json.loads((tiny / "manifest.json").read_text())["config"]
    manifest = json.loads((split_ds / "manifest.json").read_text())
    assert manifest["config"]["val_fraction"] == 0.34
    assert [[e["name"] for e in v] for v in shard_splits(manifest).values()] == [TINY_SHARDS[:2], TINY_SHARDS[2:]]
    # the shards are the same bytes: a split only names shards
    assert [(split_ds / n).read_bytes() == (tiny / n).read_bytes() for n in TINY_SHARDS] == [True] * 3
    assert [val_shard_count({"val_fraction": f}, n) for f, n in ((0.1, 3), (0.5, 2), (0.2, 100), (0.5, 7))] == \
        [1, 1, 20, 4]
    assert val_shard_count({}, 5) == 0
    with pytest.raises(ConfigError, match="at least 2 shards"):
        val_shard_count({"val_fraction": 0.2}, 1)


def test_a_split_of_one_shard_is_refused_before_anything_is_written(tmp_path):
    code, _, err = run_cli(["generate", "--preset", "tiny", "--set", "val_fraction=0.2", "--set", "shard_size=100",
                            "--out", tmp_path / "o"])
    assert_one_line_error(code, err, "at least 2 shards")
    assert not (tmp_path / "o").exists()
    with pytest.raises(ConfigError, match=r"\[0, 0.5\]"):
        resolve("tiny", ["val_fraction=0.8"])


def test_every_index_and_the_card_carry_it(split_ds):
    info = json.loads((split_ds / "_info.json").read_text())
    assert {s: d["filenames"] for s, d in info["splits"].items()} == {"train": TINY_SHARDS[:2], "val": TINY_SHARDS[2:]}
    assert info["splits"]["val"]["num_samples"] == 16
    train = json.loads((split_ds / "wids-index.json").read_text())["shardlist"]
    val = json.loads((split_ds / "wids-index-val.json").read_text())["shardlist"]
    assert [s["url"] for s in train] == TINY_SHARDS[:2] and [s["url"] for s in val] == TINY_SHARDS[2:]
    parts = yaml.safe_load((split_ds / ".nv-meta" / "split.yaml").read_text())["split_parts"]
    assert parts == {"train": ["tiny-{000000..000001}.tar"], "val": ["tiny-000002.tar"], "test": []}
    card = (split_ds / "README.md").read_text()
    header = yaml.safe_load(card.split("---\n")[1])
    assert header["configs"][0]["data_files"] == [{"split": "train", "path": TINY_SHARDS[:2]},
                                                  {"split": "validation", "path": TINY_SHARDS[2:]}]
    assert [(s["name"], s["num_examples"]) for s in header["dataset_info"]["splits"]] == [("train", 32),
                                                                                          ("validation", 16)]
    assert "are the `validation` split" in card
    code, _, err = run_cli(["verify", split_ds])
    assert code == 0, err


def test_verify_names_a_stale_validation_index(split_ds, tmp_path):
    import shutil

    d = tmp_path / "d"
    shutil.copytree(split_ds, d)
    (d / "wids-index-val.json").unlink()
    code, _, err = run_cli(["verify", d])
    assert code == 1 and "wids-index-val.json" in err


@pytest.mark.slow
def test_readers_see_the_two_splits(split_ds, tmp_path, monkeypatch):
    import wids

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert len(wids.ShardListDataset(str(split_ds / "wids-index-val.json"), cache_dir=str(tmp_path / "c"))) == 16
    timm_reader = pytest.importorskip("timm.data.readers.reader_wds")
    assert sum(1 for _ in timm_reader.ReaderWds(str(split_ds), split="val", is_training=False, batch_size=1)) == 16
    datasets = hf_offline(tmp_path, monkeypatch)
    ds = datasets.load_dataset(str(split_ds), cache_dir=str(tmp_path / "hf-cache"))
    assert {k: v.num_rows for k, v in ds.items()} == {"train": 32, "validation": 16}
