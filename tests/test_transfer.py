"""The transfer study's parts: the IDX reader, the statistics, the splits, the results schema, and
``fractaldb report`` on ``tiny``.  The study itself is a documented command (docs/training.md), not a test."""

from __future__ import annotations

import ast
import gzip
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fractaldb import families, stats
from fractaldb.errors import ConfigError, InputError
from fractaldb.families import Family, get_family, list_families, register_family
from fractaldb.families.base import StudyArm
from fractaldb.idx import read_idx, write_idx
from tinyset import assert_one_line_error, run_cli, tiny_dataset

# ---------------------------------------------------------------------------------------------
# IDX
# ---------------------------------------------------------------------------------------------


def _idx_bytes(code: int, shape, payload: bytes) -> bytes:
    """An IDX file written by hand from the format's definition (the reference for write_idx)."""
    return bytes([0, 0, code, len(shape)]) + b"".join(n.to_bytes(4, "big") for n in shape) + payload


@pytest.mark.parametrize("gz", [False, True])
def test_idx_reads_images_and_labels(tmp_path, gz):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = _idx_bytes(0x08, (2, 3, 4), images.tobytes())
    p = tmp_path / ("x.idx.gz" if gz else "x.idx")
    p.write_bytes(gzip.compress(raw) if gz else raw)
    got = read_idx(p)
    assert got.dtype == np.uint8 and got.shape == (2, 3, 4) and np.array_equal(got, images)
    labels = tmp_path / "y"
    labels.write_bytes(_idx_bytes(0x08, (3,), bytes([7, 0, 9])))
    assert read_idx(labels).tolist() == [7, 0, 9]


def test_idx_big_endian_types_and_round_trip(tmp_path):
    p = tmp_path / "i.idx"
    p.write_bytes(_idx_bytes(0x0C, (2,), (1).to_bytes(4, "big") + (-2).to_bytes(4, "big", signed=True)))
    assert read_idx(p).tolist() == [1, -2]
    a = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    write_idx(tmp_path / "f.gz", a)
    assert (tmp_path / "f.gz").read_bytes()[:2] == b"\x1f\x8b" and np.array_equal(read_idx(tmp_path / "f.gz"), a)


@pytest.mark.parametrize("content, message", [
    (b"\x08\x03\x00\x00", "bad magic 08030000"),
    (b"", "bad magic empty"),
    (bytes([0, 0, 0x07, 1]) + b"\0\0\0\1x", "bad magic"),
    (bytes([0, 0, 8, 2, 0, 0]), "header for 2 dimensions is cut short"),
    (bytes([0, 0, 8, 1, 0, 0, 0, 4, 1, 2]), "holds 10 bytes but its header [4] says 12"),
])
def test_idx_bad_input_is_a_clear_error(tmp_path, content, message):
    p = tmp_path / "bad"
    p.write_bytes(content)
    with pytest.raises(InputError, match=None) as exc:
        read_idx(p)
    assert message in str(exc.value) and str(p) in str(exc.value)


def test_idx_damaged_gzip(tmp_path):
    p = tmp_path / "bad.gz"
    p.write_bytes(gzip.compress(_idx_bytes(8, (4,), b"abcd"))[:-6])
    with pytest.raises(InputError, match="damaged gzip"):
        read_idx(p)


# ---------------------------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------------------------

def test_paired_ci_by_hand_and_scipy():
    a, b = [71.0, 74.5, 70.0, 73.0, 75.5], [70.0, 72.0, 71.0, 70.0, 72.5]
    d = [1.0, 2.5, -1.0, 3.0, 3.0]
    m = sum(d) / 5
    sd = math.sqrt(sum((x - m) ** 2 for x in d) / 4)
    half = 2.7764451051977987 * sd / math.sqrt(5)  # t(0.975, 4)
    r = stats.paired_ci(a, b)
    assert r["n"] == 5 and r["mean"] == pytest.approx(m) and r["std"] == pytest.approx(sd)
    assert (r["ci95_low"], r["ci95_high"]) == pytest.approx((m - half, m + half))
    scipy_stats = pytest.importorskip("scipy.stats")
    ci = scipy_stats.ttest_rel(a, b).confidence_interval(0.95)
    assert (r["ci95_low"], r["ci95_high"]) == pytest.approx((ci.low, ci.high))


def test_t_table_matches_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    assert [round(float(scipy_stats.t.ppf(0.975, df)), 3) for df in range(1, 31)] == stats._T975


def test_paired_ci_edges():
    assert stats.paired_ci([3.0], [1.0]) == {"mean": 2.0, "std": 0.0, "n": 1, "ci95_low": None, "ci95_high": None}
    with pytest.raises(ValueError):
        stats.paired_ci([1.0, 2.0], [1.0])
    assert stats.mean_std([2.0, 4.0]) == pytest.approx((3.0, math.sqrt(2.0)))


# ---------------------------------------------------------------------------------------------
# the study: targets, splits, schema
# ---------------------------------------------------------------------------------------------

torch = pytest.importorskip("torch")
E = pytest.importorskip("fractaldb.experiments")


def _fake_fashion(folder, per_class=12, test_per_class=3, gz=True):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", per_class), ("t10k", test_per_class)):
        y = np.repeat(np.arange(10, dtype=np.uint8), n)
        x = rng.integers(0, 256, (len(y), 28, 28), dtype=np.uint8)
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{split}-images-idx3-ubyte{suffix}", x)
        write_idx(folder / f"{split}-labels-idx1-ubyte{suffix}", y)
    return folder


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_target_from_idx_files(tmp_path, gz):
    d = E.load_target("fashion-mnist", 32, _fake_fashion(tmp_path / "fm", gz=gz))
    assert d["train_x"].shape == (120, 3, 32, 32) and d["train_x"].dtype == torch.uint8
    assert d["test_x"].shape == (30, 3, 32, 32) and d["train_y"].tolist()[:13] == [0] * 12 + [1]
    assert len(d["classes"]) == 10


def test_missing_fashion_mnist_names_the_package(tmp_path):
    code, _, err = run_cli(["experiment", "transfer", "--protocol", "v1", "--quick", "--target-dir", tmp_path / "none",
                            "--out", tmp_path / "o"])
    line = assert_one_line_error(code, err)
    assert "apt-get install dataset-fashion-mnist" in line and "train-images-idx3-ubyte" in line
    assert not (tmp_path / "o").exists()


def test_unknown_target_is_one_line(tmp_path):
    code, _, err = run_cli(["experiment", "transfer", "--protocol", "v1", "--quick", "--target", "cifar", "--out", tmp_path / "o"])
    assert "unknown --target 'cifar'" in assert_one_line_error(code, err)


def test_splits_are_disjoint_nested_and_seeded():
    from fractaldb.experiments.targets import shot_subset, validation_split

    y = torch.arange(10).repeat_interleave(200)
    val, pool = validation_split(y, 20)
    assert torch.bincount(y[val]).tolist() == [20] * 10 and not set(val.tolist()) & set(pool.tolist())
    assert len(val) + len(pool) == len(y)
    s10, s100 = shot_subset(y, pool, 10, 3), shot_subset(y, pool, 100, 3)
    assert torch.bincount(y[s10]).tolist() == [10] * 10 and set(s10.tolist()) <= set(s100.tolist())
    assert set(s100.tolist()) <= set(pool.tolist())
    assert torch.equal(s10, shot_subset(y, pool, 10, 3)) and not torch.equal(s10, shot_subset(y, pool, 10, 4))
    assert torch.equal(shot_subset(y, pool, "all", 0), pool)
    with pytest.raises(InputError, match="fewer than 500 shots"):
        shot_subset(y, pool, 500, 0)


def test_shot_counts_a_class_cannot_hold_are_dropped_with_a_note():
    """Issue 28: ``--quick --target digits`` asks 100 shots of classes holding ~63 images."""
    import warnings

    from fractaldb.experiments.targets import fitting_shots, validation_split

    y = torch.arange(3).repeat_interleave(torch.tensor([70, 80, 90]))
    _, pool = validation_split(y, 5)  # 65, 75, 85 left in the pool
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert fitting_shots(y, pool, [10, 100, "all"], "digits") == [10, "all"]
    assert [str(w.message) for w in caught] == [
        "digits: its smallest class holds 65 training images, fewer than 100 shots; running 10, all only"]
    assert fitting_shots(y, pool, [10, 65]) == [10, 65]
    assert fitting_shots(y, pool, [500]) == [500]  # nothing fits: shot_subset says what is short


def test_a_zero_width_interval_is_not_marked_significant():
    from fractaldb.experiments.tables import _fmt_ci

    row = {"delta_vs_scratch": 2.0, "ci95_low": 2.0, "ci95_high": 2.0}  # n = 2, both differences +2
    assert _fmt_ci(row) == "+2.00 [+2.00, +2.00]"
    assert _fmt_ci({**row, "ci95_low": 0.5, "ci95_high": 3.5}) == "+2.00 [+0.50, +3.50] ↑"
    assert _fmt_ci({"delta_vs_scratch": -2.0, "ci95_low": -3.0, "ci95_high": -1.0}).endswith("↓")


@pytest.fixture
def small_study(monkeypatch):
    settings = {**E.TRANSFER_SETTINGS["quick"], "image_size": 16, "crop_ratio": 0.8, "shots": [3], "seeds": 2,
                "seeds_large": 1, "val_per_class": 5, "test_limit": 100, "presentations": 48,
                "steps": dict(min=2, max=2, epochs=1), "lr": [0.05, 0.1], "probe_c": [1.0],
                "arms": ["scratch", "fractaldb"], "large_arms": [], "scaling": None}
    monkeypatch.setitem(E.TRANSFER_SETTINGS, "quick", settings)
    arms = get_family("fractal").study_arms  # the fractal family's study.ARMS, restored after the test
    monkeypatch.setitem(arms, "fractaldb", replace(arms["fractaldb"], preset="tiny", overrides=(),
                                                   description="the tiny preset"))
    assert E.ARMS["fractaldb"] == ("tiny", [], "the tiny preset")
    return settings


@pytest.mark.slow
def test_transfer_results_schema(small_study, tmp_path):
    code, out, err = run_cli(["experiment", "transfer", "--protocol", "v1", "--quick", "--target", "digits", "--out", tmp_path])
    assert code == 0, err
    results = json.loads((tmp_path / "results.json").read_text())
    rows = results["rows"]
    assert {(r["arm"], r["shots"], r["protocol"]) for r in rows} == {
        (a, 3, p) for a in ("scratch", "fractaldb") for p in ("finetune", "linear")}
    for r in rows:
        assert set(E.RESULT_KEYS) <= set(r) and len(r["per_seed"]) == 2
        assert all(0 <= v <= 100 for v in r["per_seed"])
        assert r["mean"] == pytest.approx(sum(r["per_seed"]) / 2)
    by = {(r["arm"], r["protocol"]): r for r in rows}
    for proto in ("finetune", "linear"):
        s, f = by[("scratch", proto)], by[("fractaldb", proto)]
        assert s["delta_vs_scratch"] is None and s["ci95_low"] is None
        ci = stats.paired_ci(f["per_seed"], s["per_seed"])
        assert (f["delta_vs_scratch"], f["ci95_low"], f["ci95_high"]) == pytest.approx(
            (ci["mean"], ci["ci95_low"], ci["ci95_high"]))
    assert by[("fractaldb", "finetune")]["hyper"]["lr"] in (0.05, 0.1)
    assert set(by[("fractaldb", "finetune")]["hyper"]["val_top1_by_lr"]) == {"0.05", "0.1"}
    cfg = results["config"]
    assert cfg["test"] == 100 and cfg["val"] == 50 and cfg["pretrained"]["fractaldb"]["classes"] == 4
    assert cfg["pretrained"]["fractaldb"]["presentations"] == 48
    assert cfg["arms"] == {"scratch": E.ARMS["scratch"][2], "fractaldb": "the tiny preset"}  # the family's arm, as patched
    rep = cfg["arm_reports"]["fractaldb"]  # fractaldb report of the arm's data, kept beside the results
    assert 0 < rep["coverage_mean"] < 1 and rep["separability_chance"] == 25.0
    assert (tmp_path / "reports" / "fractaldb" / "report.md").exists()
    assert "| scratch |" in (tmp_path / "results.md").read_text()
    assert E.transfer_table(results) in out
    assert (tmp_path / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    # from the cache only: the same numbers; an arm never run is left out, not computed
    code, _, err = run_cli(["experiment", "transfer", "--protocol", "v1", "--quick", "--target", "digits", "--out", tmp_path,
                            "--arms", "fractaldb,perlin", "--cached-only"])
    assert code == 0, err
    again = json.loads((tmp_path / "results.json").read_text())
    assert [r["per_seed"] for r in again["rows"]] == [r["per_seed"] for r in rows]
    assert not list((tmp_path / "cache").glob("pretrained-perlin-*"))
    # --merge: another folder's finished runs (here the whole study) tabulate there without training
    merged = tmp_path.parent / (tmp_path.name + "-merged")
    code, _, err = run_cli(["experiment", "transfer", "--protocol", "v1", "--quick", "--target", "digits", "--out", merged,
                            "--merge", tmp_path, "--cached-only"])
    assert code == 0, err
    assert [r["per_seed"] for r in json.loads((merged / "results.json").read_text())["rows"]] == \
        [r["per_seed"] for r in rows]
    assert list((merged / "cache").glob("pretrained-fractaldb-*.pt"))
    # the same run with other numbers (another machine's PyTorch, say) is refused, not overwritten
    runs = tmp_path / "cache" / "runs.json"
    other = tmp_path.parent / (tmp_path.name + "-other")
    (other / "cache").mkdir(parents=True)
    doc = json.loads(runs.read_text())
    key = next(k for k, v in doc["runs"].items() if isinstance(v, dict) and isinstance(v.get("per_seed"), list))
    first = doc["runs"][key]["per_seed"]
    while isinstance(first[0], list):
        first = first[0]
    first[0] += 1.0
    (other / "cache" / "runs.json").write_text(json.dumps(doc))
    before = (merged / "cache" / "runs.json").read_text()
    code, _, err = run_cli(["experiment", "transfer", "--protocol", "v1", "--quick", "--target", "digits", "--out", merged,
                            "--merge", other, "--cached-only"])
    assert "other numbers" in assert_one_line_error(code, err, "another environment")
    assert (merged / "cache" / "runs.json").read_text() == before
    # a cache of other per-run settings is refused in one line, and so is a folder that holds none
    runs.write_text(json.dumps({**json.loads(runs.read_text()), "fingerprint": "0" * 16}))
    code, _, err = run_cli(["experiment", "transfer", "--protocol", "v1", "--quick", "--target", "digits", "--out", merged,
                            "--merge", tmp_path, "--cached-only"])
    assert "other per-run settings" in assert_one_line_error(code, err)
    code, _, err = run_cli(["experiment", "transfer", "--protocol", "v1", "--quick", "--target", "digits", "--out", merged,
                            "--merge", tmp_path / "nothing", "--cached-only"])
    assert "no readable" in assert_one_line_error(code, err)
    junk = tmp_path.parent / (tmp_path.name + "-junk")
    (junk / "cache").mkdir(parents=True)
    (junk / "cache" / "runs.json").write_text("[1, 2]")
    code, _, err = run_cli(["experiment", "transfer", "--protocol", "v1", "--quick", "--target", "digits", "--out", merged,
                            "--merge", junk, "--cached-only"])
    assert "is not a transfer-study cache" in assert_one_line_error(code, err)
    # an entry of the wrong shape in the study's own cache is dropped (that run is left out), not a traceback
    own = json.loads((merged / "cache" / "runs.json").read_text())
    key = next(k for k in own["runs"] if "|linear|" in k)
    own["runs"][key] = {"per_seed": "x"}
    (merged / "cache" / "runs.json").write_text(json.dumps(own))
    code, _, err = run_cli(["experiment", "transfer", "--protocol", "v1", "--quick", "--target", "digits", "--out", merged,
                            "--cached-only"])
    assert code == 0 and "Traceback" not in err, err
    assert len(json.loads((merged / "results.json").read_text())["rows"]) == len(rows) - 1


def test_transfer_unknown_arm(tmp_path):
    code, _, err = run_cli(["experiment", "transfer", "--protocol", "v1", "--quick", "--arms", "imagenet", "--out", tmp_path / "o"])
    assert "unknown arm 'imagenet'" in assert_one_line_error(code, err)
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------------------------
# the arms: each family's study.py, collected from the registry
# ---------------------------------------------------------------------------------------------

def test_arms_come_from_the_families_in_registration_order():
    from fractaldb.experiments.arms import study_arms

    table = study_arms()
    rest = [arm for f in list_families() for arm in get_family(f).study_arms]
    primary = [a for f in list_families() for a, spec in get_family(f).study_arms.items() if spec.primary]
    expected = ["scratch"] + primary + [a for a in rest if a not in primary]
    assert list(table) == list(E.ARMS) == expected
    # scratch, the primary arm, then family order (results rows, tables, the plots' colours)
    assert expected == ["scratch", "fractaldb", "color-fractal", "fractal-point", "fractal-svd", "ofdb", "fractal3d",
                        "1p-frac", "perlin", "fractal+perlin", "rcdb", "visualatom"]
    for f in list_families():
        for arm, spec in get_family(f).study_arms.items():
            assert isinstance(spec, StudyArm) and isinstance(spec.overrides, tuple) and table[arm] is spec
            assert E.ARMS[arm] == (spec.preset, list(spec.overrides), spec.description)
    assert get_family("multifractal").study_arms == {}
    assert E.ARMS["scratch"] == (None, [], "no pretraining: the network's random initialisation")
    assert E.TRANSFER_SETTINGS["quick"]["arms"] == ["scratch", "fractaldb", "perlin"]
    assert E.TRANSFER_SETTINGS["quick"]["large_arms"] == []
    assert E.TRANSFER_SETTINGS["full"]["arms"] == expected
    assert E.TRANSFER_SETTINGS["full"]["large_arms"] == ["scratch", "fractaldb"]
    with pytest.raises(TypeError):  # read-only: an arm is changed in its family's study.py
        E.ARMS["fractaldb"] = ("tiny", [], "")


def test_the_scaling_arms_are_the_primary_arms_scaled():
    from fractaldb import config
    from fractaldb.experiments.arms import scaling_arms, study_arms

    table = study_arms()
    primary = config.resolve(table["fractaldb"].preset, table["fractaldb"].overrides)
    got = scaling_arms({"categories": [8, 32], "epochs_factor": [1 / 3, 1]}, {}, table)
    assert list(got) == ["fractaldb-c8", "fractaldb-c32", "fractaldb-e0.33"]
    assert [v[1:] for v in got.values()] == [(1.0, 8), (1.0, 32), (1 / 3, 32)]
    assert got["fractaldb-c32"][0] == primary == got["fractaldb-e0.33"][0]  # the 32-class point is the arm itself
    assert got["fractaldb-c8"][0]["fractal"]["categories"] == 8
    assert table["fractaldb"].scaled(8).description == "FractalDB, 8 categories x 400 images"
    with pytest.raises(ConfigError, match="25 x patches x flips, got 7"):
        table["fractaldb"].scaled(7)


def test_exactly_one_primary_arm(monkeypatch, tmp_path):
    from fractaldb.experiments.arms import large_arms, primary_arm, quick_arms, scaling_arms, study_arms

    assert primary_arm(study_arms())[0] == "fractaldb"
    fractal, perlin = get_family("fractal").study_arms, get_family("perlin").study_arms
    monkeypatch.setitem(perlin, "perlin", replace(perlin["perlin"], primary=True))
    with pytest.raises(ConfigError, match="exactly one primary arm .* found 2: fractaldb, perlin"):
        primary_arm(study_arms())
    code, _, err = run_cli(["experiment", "transfer", "--protocol", "v1", "--quick", "--target", "digits", "--out", tmp_path / "o"])
    assert "found 2: fractaldb, perlin" in assert_one_line_error(code, err)
    assert not (tmp_path / "o").exists()
    # the study follows the primary arm: its quick and large arms, its scaling study
    monkeypatch.setitem(fractal, "fractaldb", replace(fractal["fractaldb"], primary=False))
    table = study_arms()
    assert quick_arms(table) == ["scratch", "perlin"] and large_arms(table) == ["scratch", "perlin"]
    with pytest.raises(ConfigError, match="primary arm 'perlin' to have scaled"):
        scaling_arms({"categories": [8], "epochs_factor": [1]}, {}, table)
    monkeypatch.setitem(perlin, "perlin", replace(perlin["perlin"], primary=False))
    with pytest.raises(ConfigError, match="found 0; mark exactly one"):
        primary_arm(study_arms())


class _StudyTestFamily(type(get_family("perlin"))):
    """A family from outside the package (a Perlin variant): what matters is its study arm."""

    name = "studytest"
    summary = "tests/test_transfer.py's family with one study arm"
    purposes = {}
    study_arms = {"test-arm": StudyArm("tiny", ("fractal.categories=2",), "two tiny categories", quick=True)}


@pytest.fixture
def registered():
    """Register families for one test; they are removed after it."""
    added = []

    def add(family):
        added.append(register_family(family).name)

    yield add
    for name in added:
        families.unregister_family(name)


def test_an_out_of_tree_familys_arm_joins_the_study(registered, tmp_path):
    from fractaldb.experiments.arms import quick_arms, study_arms

    assert "test-arm" not in E.ARMS
    registered(_StudyTestFamily())
    assert list(E.ARMS)[-1] == "test-arm"
    assert E.ARMS["test-arm"] == ("tiny", ["fractal.categories=2"], "two tiny categories")
    assert quick_arms(study_arms()) == ["scratch", "fractaldb", "perlin", "test-arm"]
    # --arms takes it: its preset resolves and the study goes on to load the target (here an unknown one)
    code, _, err = run_cli(["experiment", "transfer", "--protocol", "v1", "--quick", "--arms", "test-arm", "--target", "cifar",
                            "--out", tmp_path / "o"])
    assert "unknown --target 'cifar'" in assert_one_line_error(code, err)

    class Clash(_StudyTestFamily):
        name = "clash"
        study_arms = {"perlin": StudyArm("perlin-tiny", (), "another perlin")}

    registered(Clash())
    with pytest.raises(ConfigError, match="clash family's study arm 'perlin' is already an arm of the perlin family"):
        study_arms()


def test_the_study_names_no_family():
    """Arms are data the families give: no module of fractaldb.experiments has a family's name, one of
    its config keys or an arm's name as a string ("fractaldb" is the package's name too, so not checked)."""
    names = (set(list_families()) | set(E.ARMS)) - {"scratch", "fractaldb"}
    for path in sorted(Path(E.__file__).parent.glob("*.py")):
        tree = ast.parse(path.read_text())
        strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        assert not strings & names, (path.name, strings & names)
        assert not [s for s in strings for f in list_families() if s.startswith(f + ".")], path.name


# ---------------------------------------------------------------------------------------------
# fractaldb report
# ---------------------------------------------------------------------------------------------

def test_image_stats_and_nearest_centroid_by_hand():
    from fractaldb.report import features, image_stats, nearest_centroid

    lum = np.zeros((64, 64))
    lum[8:24, 8:24] = 1.0
    st = image_stats(lum)
    assert st["coverage"] == pytest.approx(256 / 4096) and st["mean"] == pytest.approx(256 / 4096)
    assert features(lum).shape == (32,)
    assert np.allclose(features(lum), features(lum[:, ::-1]))  # flip-invariant
    feats = np.array([[0.0, 0], [0.1, 0], [5, 5], [5.1, 5], [0.05, 0.1], [5, 5.2]])
    r = nearest_centroid(feats, np.array([0, 0, 1, 1, 0, 1]))
    assert r["top1"] == 100.0 and r["chance"] == 50.0
    one = nearest_centroid(np.ones((2, 2)), np.array([0, 1]))
    assert one["top1"] is None and one["classes_left_out"] == [0, 1]


def test_report_on_tiny(tmp_path_factory, tmp_path):
    tiny = tiny_dataset(tmp_path_factory)
    code, out, err = run_cli(["report", tiny, "--out", tmp_path / "r"])
    assert code == 0, err
    r = json.loads((tmp_path / "r" / "report.json").read_text())
    assert r["manifest"] == {"classes": 4, "images": 48, "shards": 3}
    assert r["read"] == {"images": 48, "classes": 4, "sampled": False}
    assert r["images_per_class"] == {"min": 12, "max": 12, "mean": 12.0}
    fam = r["per_family"]["fractal"]
    assert fam["images"] == 48 and 0 < fam["coverage_mean"] < 1 and fam["near_empty"] == r["near_empty"]["count"]
    assert r["separability"]["chance"] == 25.0 and 0 <= r["separability"]["top1"] <= 100
    assert r["degenerate_variants"]["count"] == 0
    md = (tmp_path / "r" / "report.md").read_text()
    assert md.startswith("# Dataset report: tiny") and "nearest-centroid" in md
    for png in r["figures"]:
        assert (tmp_path / "r" / png).read_bytes()[:4] == b"\x89PNG"
    # a sample of the first images
    code, _, err = run_cli(["report", tiny, "--out", tmp_path / "s", "--max-images", "10"])
    assert code == 0, err
    assert json.loads((tmp_path / "s" / "report.json").read_text())["read"]["images"] == 10


def test_report_of_a_non_dataset(tmp_path):
    code, _, err = run_cli(["report", tmp_path, "--out", tmp_path / "r"])
    assert "no manifest.json" in assert_one_line_error(code, err)
    assert not (tmp_path / "r").exists()
