"""``render --resume`` and the size/time estimate printed before long jobs.

An interrupted render keeps its finished blocks in ``.OUT.partial/`` (``OUT``
itself is never half-written); ``--resume`` renders only the rest and the
result is byte for byte the uninterrupted render.  The estimate comes from a
few of the job's own images: its size must be close to what is written.
"""

from __future__ import annotations

import json

import pytest

import fractaldb.estimate as estimate
from fractaldb.config import resolve
from fractaldb.dataset import Dataset, generate
from fractaldb.ifs.system import load_categories
from fractaldb.families.fractal.imagefolder import partial_dir, write_imagefolder
from fractaldb.ifs.render import RenderConfig
from tinyset import assert_one_line_error, run_cli, snapshot

OPTS = ["--size", "48", "--points", "1500", "--patches", "2", "--flips", "2", "--workers", "1"]


@pytest.fixture(scope="module")
def cats(tmp_path_factory):
    out = tmp_path_factory.mktemp("cats") / "cats"
    code, _, err = run_cli(["search", "--categories", "3", "--points", "3000", "--size", "64", "--out", out,
                            "--workers", "1"])
    assert code == 0, err
    return out


def _cfg():
    return RenderConfig(size=48, points=1500, patches=2, flips=2)


def test_an_interrupted_render_resumes_to_the_same_files(cats, tmp_path):
    whole = tmp_path / "whole"
    code, _, err = run_cli(["render", "--params", cats, "--out", whole, *OPTS])
    assert code == 0, err

    out = tmp_path / "r"
    ids, systems = load_categories(cats)
    blocks = []

    def stop(n):
        blocks.append(n)
        if len(blocks) == 30:  # past the first category
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_imagefolder(ids, systems, _cfg(), out, workers=1, progress=stop)
    assert not out.exists()  # nothing half-written at OUT
    part = partial_dir(out)
    assert len((part / ".render-done.jsonl").read_text().splitlines()) == 30

    code, _, err = run_cli(["render", "--params", cats, "--out", out, *OPTS])
    assert_one_line_error(code, err, "interrupted render", "--resume", "--overwrite")
    code, stdout, err = run_cli(["render", "--params", cats, "--out", out, *OPTS, "--resume"])
    assert code == 0, err
    assert snapshot(out) == snapshot(whole)
    assert not part.exists()
    assert json.loads((out / "render.json").read_text())["images"] == 3 * 25 * 4


def test_resume_refuses_other_settings_and_overwrite_starts_over(cats, tmp_path):
    out = tmp_path / "r"
    ids, systems = load_categories(cats)

    def stop(n):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_imagefolder(ids, systems, _cfg(), out, workers=1, progress=stop)
    code, _, err = run_cli(["render", "--params", cats, "--out", out, *OPTS, "--seed", "2", "--resume"])
    assert_one_line_error(code, err, "other categories or settings", "--overwrite")
    code, _, err = run_cli(["render", "--params", cats, "--out", out, *OPTS, "--seed", "2", "--overwrite"])
    assert code == 0, err
    assert not partial_dir(out).exists()
    assert json.loads((out / "render.json").read_text())["render"]["seed"] == 2


def test_estimates_are_printed_for_long_jobs(cats, tmp_path, monkeypatch):
    monkeypatch.setattr(estimate, "LONG_S", 0.0)
    code, _, err = run_cli(["render", "--params", cats, "--out", tmp_path / "r", *OPTS])
    assert code == 0
    line = next(x for x in err.splitlines() if x.startswith("estimate:"))
    assert "300 images" in line and "fractaldb generate" in line and "worker" in line
    code, _, err = run_cli(["generate", "--preset", "tiny", "--out", tmp_path / "g"])
    assert code == 0
    assert any(x.startswith("estimate: 48 images, about") for x in err.splitlines()), err


def test_short_jobs_print_no_estimate(cats, tmp_path):
    code, _, err = run_cli(["render", "--params", cats, "--out", tmp_path / "r", *OPTS])
    assert code == 0 and "estimate:" not in err


@pytest.mark.parametrize("preset", ["tiny", "perlin-tiny"])
def test_the_size_estimate_is_close(preset, tmp_path):
    ds = Dataset.from_config(resolve(preset))
    est = estimate.estimate_dataset(ds, workers=2)
    manifest = generate(resolve(preset), str(tmp_path / preset), workers=2)
    actual = sum(e["bytes"] for e in manifest["shards"])
    assert est.images == manifest["plan"]["samples"]
    assert 0.7 * actual < est.bytes < 1.3 * actual, (est.bytes, actual)
    part = next(iter(ds.parts.values()))
    probed = sum(n for _, _, n in estimate.probe_blocks(part.rows, part.blocks_per_class, part.images_per_block))
    assert est.seconds > 0 and est.probed == probed
