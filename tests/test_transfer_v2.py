"""Protocol v2 of the transfer study (docs/training.md, "Protocol v2"): its statistics against
references written from the formulas, its step counts against the docs, and a tiny study on the
digits target that checks the study's logic: the test set never reaches a choice, every arm
learns from the same subsets per seed, the runs are exact step counts, ``--merge`` assembles a
study split over processes, and docs/training.md's v2 tables are what docs/results/*.json hold."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fractaldb import stats
from fractaldb.families import get_family
from tinyset import run_cli

E = pytest.importorskip("fractaldb.experiments")
V2 = pytest.importorskip("fractaldb.experiments.v2")
T = pytest.importorskip("fractaldb.experiments.v2_tables")

ROOT = Path(__file__).resolve().parents[1]
TRAINING_MD = ROOT / "docs" / "training.md"


# -- statistics ----------------------------------------------------------------------------------

def _crossed_reference(d):
    """The crossed two-way interval written out with numpy from the protocol's formula."""
    d = np.asarray(d, dtype=float)
    P, F = d.shape
    g = d.mean()
    ms_f = P * ((d.mean(0) - g) ** 2).sum() / (F - 1)
    ms_p = F * ((d.mean(1) - g) ** 2).sum() / (P - 1) if P > 1 else 0.0
    se = math.sqrt((ms_p + ms_f) / (P * F))
    df = (ms_p + ms_f) ** 2 / (ms_f ** 2 / (F - 1) + (ms_p ** 2 / (P - 1) if P > 1 else 0.0))
    from scipy.stats import t
    return g, g - t.ppf(0.975, df) * se, g + t.ppf(0.975, df) * se, 2 * t.sf(abs(g / se), df)


def test_crossed_ci_against_the_formula_and_the_paired_t():
    rng = np.random.default_rng(0)
    d = rng.normal(2.0, 1.0, (3, 10)) + rng.normal(0, 2.0, (3, 1))  # a pretraining-seed effect
    ci = stats.crossed_ci(d.tolist())
    assert (ci["mean"], ci["ci95_low"], ci["ci95_high"], ci["p_value"]) == pytest.approx(_crossed_reference(d))
    row = d[:1].tolist()  # one pretraining seed: exactly the paired t interval
    one, paired = stats.crossed_ci(row), stats.paired_ci(row[0], [0.0] * 10)
    assert (one["ci95_low"], one["ci95_high"], one["df"]) == pytest.approx((paired["ci95_low"], paired["ci95_high"], 9))
    # the pretraining-seed level widens the interval: the rows' spread counts, not only the subsets'
    flat = stats.paired_ci(d.flatten().tolist(), [0.0] * 30)
    assert ci["ci95_high"] - ci["ci95_low"] > flat["ci95_high"] - flat["ci95_low"]
    assert stats.crossed_ci([[1.0], [2.0]])["ci95_low"] is None
    with pytest.raises(ValueError):
        stats.crossed_ci([[1.0, 2.0], [1.0]])


def test_holm_by_hand():
    assert stats.holm([0.01, 0.04, None, 0.03]) == pytest.approx([0.03, 0.06, None, 0.06])
    assert stats.holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])


def test_rows_pair_subsets_and_mark_only_holm_significant():
    s = [[50.0 + f for f in range(10)]]
    a = [[60.0 + f + p for f in range(10)] for p in range(3)]
    b = [[50.5 + f + (2.0 if f % 2 else -2.0) for f in range(10)] for _ in range(3)]
    hyper = {"steps": 100, "lr": 0.1}
    cells = {("resnet", "scratch", 10, "finetune"): {"per_seed": s, "pretrain_seeds": [], "hyper": hyper},
             ("resnet", "fractaldb", 10, "finetune"): {"per_seed": a, "pretrain_seeds": [0, 1, 2], "hyper": hyper},
             ("resnet", "perlin", 10, "finetune"): {"per_seed": b, "pretrain_seeds": [0, 1, 2], "hyper": hyper}}
    rows, contrasts = T.v2_rows(cells, "fractaldb", "fashion-mnist")
    by = {r["arm"]: r for r in rows}
    assert set(T.V2_ROW_KEYS) == set(by["fractaldb"])
    assert by["fractaldb"]["claim"] == "primary" and by["perlin"]["claim"] == "exploratory"
    ref = _crossed_reference(np.array(a) - np.array(s))
    assert (by["fractaldb"]["delta_vs_scratch"], by["fractaldb"]["ci95_low"]) == pytest.approx(ref[:2])
    assert contrasts[0]["a"] == "fractaldb" and contrasts[0]["delta"] == pytest.approx(np.mean(a) - np.mean(b))
    md = T.v2_markdown({"rows": rows, "contrasts": contrasts, "predictors": [], "pending": ["resnet/x/10/linear"],
                        "config": {"target": "t", "test": 1, "val": 1, "pool": 1, "settings": {"shots": [10]}}})
    assert "**65.50" in md and "↑" in md and "Not finished" in md
    assert "↑" not in md.split("| perlin |")[1].split("\n")[0]  # +0.5 over noisy subsets: no mark
    assert "**Pretraining**" not in md  # no network pretrained: no table


def test_a_pretraining_that_stayed_at_chance_is_marked():
    # The ViT's FractalDB pretraining of 2026-12-04 ended at 2.8-3.1 % top-1 of 32 classes (chance 3.1).
    info = lambda top1: {"classes": 32, "final_top1": top1, "epochs": 6}  # noqa: E731
    cfg = {"target": "t", "test": 1, "val": 1, "pool": 1, "settings": {"shots": [10]},
           "pretrained": {"fractaldb.p0": info(50.2), "fractaldb.p1": info(3.0), "vit.fractaldb.p0": info(2.8),
                          "vit.fractaldb.p1": info(3.1), "vit.fractaldb.p2": info(4.6)}}
    md = T.v2_markdown({"rows": [], "contrasts": [], "predictors": [], "pending": [], "config": cfg})
    table = {ln.split("|")[1].strip(): ln for ln in md.splitlines() if ln.startswith("| ") and "fractaldb" in ln}
    assert "50.2, 3.0" in table["fractaldb"] and "not learned" not in table["fractaldb"]  # one seed learned
    assert "2.8, 3.1, 4.6" in table["vit.fractaldb"] and "*not learned*" in table["vit.fractaldb"]
    cfg["pretrained"]["vit.fractaldb.p2"] = info(4.7)  # 1.5 x 3.125 = 4.6875: that seed learned
    cfg["pretrained"]["fractaldb.p1"] = info(None)  # a NaN top-1, written as null, reads as nan
    cfg["pretrained"]["odd"] = {"classes": "32"}  # not a network's record: left out
    md = T.v2_markdown({"rows": [], "contrasts": [], "predictors": [], "pending": [], "config": cfg})
    assert not [ln for ln in md.splitlines() if ln.startswith("| ") and "not learned" in ln]
    assert "| fractaldb | 32 | 50.2, nan |" in md and "odd" not in md


# -- the docs say what the code does -------------------------------------------------------------

def test_grids_and_step_counts_are_what_the_docs_say():
    text = TRAINING_MD.read_text()
    v2 = text[text.index("### Protocol v2"):text.index("### Protocol v1")]
    nums = lambda s: [float(x) for x in re.findall(r"[\d.]+", s.replace(",", ""))]  # noqa: E731
    m = re.search(r"from \{([^}]*)\} steps × \{([^}]*)\} at 10 and\s+100 shots and \{([^}]*)\} × \{([^}]*)\}", v2)
    assert m, "protocol v2's grid sentence changed; update this test with it"
    small, large = V2.GRID_SMALL, V2.GRID_LARGE
    assert (nums(m.group(1)), nums(m.group(2))) == (small["steps"], small["lr"])
    assert (nums(m.group(3)), nums(m.group(4))) == (large["steps"], large["lr"])
    c = re.search(r"C from \{([^}]*)\}", v2)
    assert nums(c.group(1)) == V2.PROBE_C
    full = V2.V2_SETTINGS["fashion-mnist"]
    assert (full["pretrain_seeds"], full["seeds"], full["seeds_large"], full["test_limit"]) == (3, 10, 3, 0)
    assert "Fine-tuning seeds 0–9 at 10 and 100 shots, 0–2 at 1,000/all" in v2
    assert V2.V2_SETTINGS["digits"]["val_per_class"] == 30 and "100\n   images per class for Fashion-MNIST, 30" in v2


@pytest.mark.parametrize("n, steps", [(30, 7), (30, 1), (30, 45), (33, 5)])
def test_a_run_is_exactly_its_step_count(n, steps):
    import torch

    from fractaldb.train import setup_runtime
    rt = setup_runtime("cpu", "off")
    cfg = {"batch_size": 8, "seed": 3, "workers": 0}
    x, y = torch.zeros(n, 3, 4, 4, dtype=torch.uint8), torch.arange(n) % 3
    src = V2.exact_steps_source(x, y, cfg, rt, steps, 3)
    got = list(src.batches(0))
    assert src.steps == steps and len(got) == steps and all(len(b[1]) > 1 for b in got)
    seen = torch.cat([b[1] for b in got[:n // 8]])  # the first pass is one permutation: no repeats
    assert len(seen) == 8 * min(n // 8, steps)


def test_the_test_split_is_stratified_and_v2_reads_all_of_it():
    import torch

    from fractaldb.experiments.targets import capped_test
    y = torch.arange(1000) % 10
    y[:300] = 0  # unbalanced classes
    idx = capped_test(y, 200)
    want = torch.bincount(y, minlength=10).double() * 200 / 1000
    assert (torch.bincount(y[idx], minlength=10).double() - want).abs().max() <= 1
    assert len(capped_test(y, 0)) == 1000 and all(s["test_limit"] == 0 for s in V2.V2_SETTINGS.values())


def test_docs_tables_are_rebuilt_from_the_committed_json():
    """docs/training.md's v2 result blocks are exactly v2_markdown of docs/results/TARGET.json."""
    text = TRAINING_MD.read_text()
    blocks = re.findall(r"<!-- v2-results (\S+) -->\n(.*?)<!-- /v2-results -->", text, re.S)
    files = sorted((ROOT / "docs" / "results").glob("*.json"))
    assert {b[0] for b in blocks} == {f.stem for f in files}
    for name, body in blocks:
        results = json.loads((ROOT / "docs" / "results" / f"{name}.json").read_text())
        assert body == T.v2_markdown(results), f"run python tests/test_transfer_v2.py --write ({name})"
        for r in results["rows"]:
            flat = [v for row in r["per_seed"] for v in row]
            assert r["mean"] == pytest.approx(sum(flat) / len(flat))
            assert len(r["per_seed"]) == max(1, len(r["pretrain_seeds"]))


def test_the_plan_is_the_predeclared_order():
    """Protocol v2 item 12: the primary cells first, then baselines and probes, then the contrast arm."""
    class Bare:
        settings = V2.v2_settings("fashion-mnist", False)

    plan = V2.StudyV2.plan(Bare())
    assert plan[:4] == [("resnet", a, s, "finetune") for s in (10, 100) for a in ("scratch", "fractaldb")]
    assert {c[1] for c in plan[4:12]} == {"scratch", "fractaldb", *V2.PIXEL_ARMS}
    assert plan[12][1] == "perlin" and plan[-1] == ("vit", "fractaldb", 100, "finetune")
    assert {c[1] for c in plan if c[2] in (1000, "all")} == {"scratch", "fractaldb"}
    assert len(plan) == len(set(plan))


def test_digits_plans_the_vit_only_at_shots_it_has(tmp_path):
    """Digits has 10 shots and all (no class holds 100 in its pool): its ViT cells are 10 shots only."""
    study = V2.StudyV2(V2.v2_settings("digits", False, cached_only=True), tmp_path / "out", "digits")
    vit = [c for c in study.plan() if c[0] == "vit"]
    assert vit == [("vit", "scratch", 10, "finetune"), ("vit", "fractaldb", 10, "finetune")]


# -- a tiny study -------------------------------------------------------------------------------

@pytest.fixture
def tiny_v2(monkeypatch):
    settings = {**V2.V2_SETTINGS["quick"], "image_size": 16, "crop_ratio": 0.8, "shots": [3], "seeds": 2,
                "pretrain_seeds": 2, "val_per_class": 5, "presentations": 48, "probe_c": [0.1, 10.0],
                "grid_small": {"steps": [2, 3], "lr": [0.05, 0.1]}, "vit_shots": [3]}
    monkeypatch.setitem(V2.V2_SETTINGS, "quick", settings)
    arms = get_family("fractal").study_arms
    monkeypatch.setitem(arms, "fractaldb", replace(arms["fractaldb"], preset="tiny", overrides=(),
                                                   description="the tiny preset"))
    return settings


def test_the_vit_runs_only_at_shots_the_target_holds(tiny_v2, tmp_path):
    """A shot count no class can hold is dropped with a note; the ViT's cells at it go too."""
    tiny_v2["shots"], tiny_v2["vit_shots"] = [3, 1000], [3, 1000]
    code, _, err = run_cli(["experiment", "transfer", "--quick", "--target", "digits", "--out", tmp_path,
                            "--cached-only"])
    assert code == 0, err
    pending = json.loads((tmp_path / "results.json").read_text())["pending"]
    assert "vit/scratch/3/finetune" in pending and not [c for c in pending if "/1000/" in c]


@pytest.mark.slow
def test_a_pretraining_at_chance_is_said_when_it_ends(tiny_v2, tmp_path, monkeypatch, caplog):
    """A network that ends its pretraining below LEARNED_OVER_CHANCE x chance gets a note then, not
    only a mark in the tables; one that learned gets none."""
    real, forced = V2.fit, []

    def fit(cfg, rt, model, src):
        res = real(cfg, rt, model, src)
        res["last"]["top1"] = forced[-1](src.num_classes)
        return res

    monkeypatch.setattr(V2, "fit", fit)
    study = V2.StudyV2(V2.v2_settings("digits", True), tmp_path / "out", "digits")
    with caplog.at_level("WARNING", logger="fractaldb"):
        forced.append(lambda n: 100.0 / n)  # exactly chance
        study.pretrained_net("resnet", "fractaldb", 0)
        forced.append(lambda n: 1.6 * 100.0 / n)  # above the line
        study.pretrained_net("resnet", "fractaldb", 1)
    said = [r.getMessage() for r in caplog.records if "did not learn" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("fractaldb.p0: pretraining ended at")
    assert T.learned(4.7, 32) and not T.learned(4.6, 32) and not T.learned(float("nan"), 32)


def _spy(monkeypatch):
    """Record every fine-tuning run's training images (per arm and seed) and its step count."""
    seen = []
    real = V2.exact_steps_source

    def spy(x, y, cfg, rt, steps, n):
        src = real(x, y, cfg, rt, steps, n)
        seen.append({"seed": cfg["seed"], "x": x.clone(), "steps": steps, "batches": len(list(src.batches(0)))})
        return src

    monkeypatch.setattr(V2, "exact_steps_source", spy)
    return seen


@pytest.mark.slow
def test_tiny_v2_study(tiny_v2, tmp_path, monkeypatch):
    import torch

    seen = _spy(monkeypatch)
    out = V2.transfer_v2(tmp_path / "a", target="digits", quick=True)
    cells = {(r["arch"], r["arm"], r["shots"], r["protocol"]) for r in out["rows"]}
    assert cells == {("resnet", a, 3, p) for a in ("scratch", "fractaldb") for p in ("finetune", "linear")} | {
        ("resnet", a, 3, "pixels") for a in V2.PIXEL_ARMS} | {("vit", a, 3, "finetune") for a in ("scratch", "fractaldb")}
    assert not out["pending"]
    # every run is exactly its step count, one of the grid's
    assert seen and all(r["batches"] == r["steps"] and r["steps"] in (2, 3) for r in seen)
    # arms share subsets per seed: every run of seed f trained on the same images
    by_seed = {}
    for r in seen:
        by_seed.setdefault(r["seed"], []).append(r["x"])
    assert sorted(by_seed) == [0, 1] and all(all(torch.equal(x[0], y) for y in x) for x in by_seed.values())
    assert not torch.equal(by_seed[0][0], by_seed[1][0])
    by = {(r["arch"], r["arm"], r["protocol"]): r for r in out["rows"]}
    fdb = by[("resnet", "fractaldb", "finetune")]
    assert len(fdb["per_seed"]) == 2 and len(fdb["per_seed"][0]) == 2 and fdb["pretrain_seeds"] == [0, 1]
    assert fdb["hyper"]["candidates"] == {"steps": [2, 3], "lr": [0.05, 0.1]} and len(fdb["hyper"]["val_top1"]) == 4
    best = max(fdb["hyper"]["val_top1"].items(), key=lambda kv: kv[1])[0]  # first of equals, as the code
    assert f"{fdb['hyper']['steps']}@{fdb['hyper']['lr']}" == best
    assert out["config"]["test"] == len(E.load_target("digits", 20)["test_y"])  # the whole test set
    assert json.loads((tmp_path / "a" / "results.json").read_text())["rows"] == out["rows"]

    # the test set never reaches a choice: other test images, the same choices and validation scores
    real = V2.StudyV2._load

    def scrambled(self, target_dir):
        real(self, target_dir)
        g = torch.Generator().manual_seed(1)
        self.tx = torch.randint(0, 256, self.tx.shape, generator=g, dtype=torch.uint8)
        self.ty = self.ty[torch.randperm(len(self.ty), generator=g)]

    monkeypatch.setattr(V2.StudyV2, "_load", scrambled)
    other = V2.transfer_v2(tmp_path / "b", target="digits", quick=True)
    assert [r["hyper"] for r in other["rows"]] == [r["hyper"] for r in out["rows"]]
    assert [r["per_seed"] for r in other["rows"]] != [r["per_seed"] for r in out["rows"]]
    monkeypatch.setattr(V2.StudyV2, "_load", real)

    # --merge: the study split over two processes (by arm) assembles into the same rows
    for name, arms in (("s1", "scratch"), ("s2", "fractaldb,pixels-logreg,pixels-centroid")):
        code, _, err = run_cli(["experiment", "transfer", "--quick", "--target", "digits", "--out", tmp_path / name,
                                "--arms", arms])
        assert code == 0, err
    code, stdout, err = run_cli(["experiment", "transfer", "--quick", "--target", "digits", "--out",
                                 tmp_path / "m", "--merge", tmp_path / "s1", "--merge", tmp_path / "s2",
                                 "--cached-only"])
    assert code == 0, err
    merged = json.loads((tmp_path / "m" / "results.json").read_text())
    whole = json.loads((tmp_path / "a" / "results.json").read_text())
    assert {json.dumps(r, sort_keys=True) for r in merged["rows"]} == {
        json.dumps(r, sort_keys=True) for r in whole["rows"]}
    # the arms' data reports come along from the cache, though no network was loaded
    assert merged["config"]["arm_reports"] == whole["config"]["arm_reports"] and "fractaldb" in whole["config"]["arm_reports"]
    assert merged["predictors"] == whole["predictors"]
    assert T.v2_markdown(merged) in stdout


if __name__ == "__main__":  # python tests/test_transfer_v2.py --write: refresh training.md's v2 blocks
    import sys

    if "--write" in sys.argv:
        text = TRAINING_MD.read_text()
        for f in sorted((ROOT / "docs" / "results").glob("*.json")):
            body = T.v2_markdown(json.loads(f.read_text()))
            pat = re.compile(rf"(<!-- v2-results {re.escape(f.stem)} -->\n).*?(<!-- /v2-results -->)", re.S)
            text = pat.sub(lambda m: m.group(1) + body + m.group(2), text)
        TRAINING_MD.write_text(text)
