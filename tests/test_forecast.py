"""What ``generate`` says before it works: the plan, size and time from the encoder that
will run, before the class search, ``--dry-run`` writing nothing, and ``--classes`` cutting
every family of a mixed preset (issue 28)."""

from __future__ import annotations

import pytest
import yaml

from fractaldb.config import classes_per_family, resolve
from fractaldb.dataset import generate
from fractaldb.families import get_family, list_families
from fractaldb import forecast as forecast_module
from fractaldb.forecast import forecast

from tinyset import run_cli


def test_dry_run_prints_the_plan_size_and_time_and_writes_nothing(tmp_path):
    out = tmp_path / "never"
    code, text, err = run_cli(["generate", "--preset", "tiny", "--out", out, "--dry-run", "--workers", "1"])
    assert code == 0, err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == []
    lines = text.splitlines()
    assert lines[0] == "plan: 48 images of 4 classes in 3 shards of 16 (tiny-NNNNNN.tar), encoder png3, seed 1"
    assert lines[1] == "  fractal: 4 classes, 48 images, 64x64, png"
    assert lines[2].startswith("estimate: 48 images, about ") and " with 1 worker " in lines[2]
    assert lines[3] == f"dry run: nothing written to {out}"


@pytest.mark.parametrize("encoder", ["png2", "png3"])
def test_the_size_comes_from_the_encoder_that_runs(tmp_path, encoder):
    cfg = resolve("tiny", [f"encoder={encoder}"])
    told = forecast(cfg, 1)
    made = generate(cfg, str(tmp_path / encoder), workers=1, dataset=told.dataset)
    size = sum((tmp_path / encoder / e["name"]).stat().st_size for e in made["shards"])
    assert abs(told.estimate.bytes - size) <= 0.25 * size, (told.estimate.bytes, size)


def test_the_sizes_of_the_two_encoders_differ_as_their_files_do():
    png2, png3 = (forecast(resolve("tiny", [f"encoder={e}"]), 1).estimate.bytes for e in ("png2", "png3"))
    assert png2 < png3


def test_a_large_search_is_measured_on_a_few_classes_and_scaled(monkeypatch):
    monkeypatch.setattr(forecast_module, "PROBE_CLASSES", 4)  # the rule, on a dataset of seconds
    told = forecast(resolve("tiny", ["fractal.categories=12"]), 1)
    assert told.dataset is None  # the probe (4 classes) is not the dataset
    assert told.classes == {"fractal": 12} and told.images == {"fractal": 144} and told.shards == 9
    est = told.estimate
    assert est.images == 144 and est.search_seconds is not None and est.search_probed == 4
    assert "class search" in est.line() and "and 4 classes" in est.line()


def test_classes_cuts_every_family_of_a_mixed_preset_and_says_when_there_are_fewer(tmp_path):
    both = resolve("tiny", ["families=[fractal,perlin]", "perlin.classes=3"])
    cut, note = classes_per_family(both, 2)
    assert (cut["fractal"]["categories"], cut["perlin"]["classes"], note) == (2, 2, None)
    cut, note = classes_per_family(both, 3)
    assert (cut["fractal"]["categories"], cut["perlin"]["classes"]) == (3, 3) and note is None
    cut, note = classes_per_family(both, 5000)
    assert (cut["fractal"]["categories"], cut["perlin"]["classes"]) == (4, 3)
    assert note == "--classes 5000 is more than there are (fractal has 4, perlin has 3); those families are kept whole"
    code, text, err = run_cli(["generate", "--preset", "tiny", "--set", "families=[fractal,perlin]", "--set",
                               "perlin.classes=3", "--classes", "2", "--out", tmp_path / "o", "--dry-run"])
    assert code == 0, err
    assert "  fractal: 2 classes" in text and "  perlin: 2 classes" in text
    code, text, err = run_cli(["generate", "--preset", "tiny", "--classes", "9", "--out", tmp_path / "o",
                               "--dry-run"])
    assert code == 0 and err.splitlines()[0] == ("note: --classes 9 is more than there are (fractal has 4); "
                                                 "that family is kept whole"), err


@pytest.mark.parametrize("name", list_families())
def test_every_family_s_forecast_counts_its_images_and_sizes_its_members(name, tmp_path, monkeypatch):
    """Cut to a few classes and scaled back, the forecast has the images the job makes (a family
    with a fixed image count over its classes keeps it) and their size within 25 %, the
    label kind's members (masks, label lists) and tar's padding included."""
    monkeypatch.setattr(forecast_module, "PROBE_CLASSES", 4)
    family = get_family(name)
    section = dict(family.small, **{family.count_key: 6})
    preset = tmp_path / "p.yaml"
    preset.write_text(yaml.safe_dump({"name": "t", "seed": 3, "shard_size": 5, "families": [name], name: section}))
    cfg = resolve(str(preset))
    told = forecast(cfg, 1)
    assert told.dataset is None  # measured on a cut, scaled to the whole
    made = generate(cfg, str(tmp_path / "ds"), workers=1)
    assert told.estimate.images == sum(told.images.values()) == made["plan"]["samples"]
    assert told.shards == len(made["shards"])
    size = sum(e["bytes"] for e in made["shards"])
    assert abs(told.estimate.bytes - size) <= 0.25 * size, (told.estimate.bytes, size)


def test_the_probe_spreads_over_classes_and_blocks():
    from fractaldb.estimate import PROBE, PROBE_IMAGES, WHOLE_BLOCK, probe_blocks

    picks = probe_blocks(PROBE, 100, 1)  # one image from each class, at blocks spread over the class
    assert [k for k, _, _ in picks] == list(range(PROBE)) and len({b for _, b, _ in picks}) == PROBE
    assert all(n == 1 for _, _, n in picks)
    one_row = probe_blocks(1, 20_000, 1)  # a single row (a fixed image count): images spread along it
    assert {k for k, _, _ in one_row} == {0} and len(one_row) == PROBE and max(b for _, b, _ in one_row) > 10_000
    whole = probe_blocks(1000, 25, 40)  # small blocks are taken whole, about PROBE_IMAGES images in all
    assert all(n == 40 for _, _, n in whole) and len(whole) * 40 <= PROBE_IMAGES
    big = probe_blocks(3, 2, WHOLE_BLOCK + 500)  # large blocks: a share of the places
    assert len(big) == 6 and all(0 < n < WHOLE_BLOCK for _, _, n in big)
