"""Protocol v2's results: rows from the finished cells (the crossed two-level interval against
scratch, the FractalDB-vs-Perlin contrast, Holm within the primary and the exploratory families),
Spearman correlations with leave-one-family-out, the markdown tables (rebuilt from the JSON by
a test: docs/training.md shows exactly what docs/results/TARGET.json holds), and results.json."""

from __future__ import annotations

import json
import math

from ..stats import crossed_ci, holm, mean_std
from ..train import write_text
from .arms import SCRATCH

#: The keys of every v2 row (docs/results/TARGET.json), in order.
V2_ROW_KEYS = ("arm", "arch", "shots", "protocol", "mean", "std", "per_seed", "pretrain_seeds", "hyper",
               "delta_vs_scratch", "ci95_low", "ci95_high", "se", "df", "p_value", "p_holm", "claim")


def _reference(arch: str, protocol: str) -> tuple:
    """The scratch cell a row is compared with: the same architecture's scratch in the same protocol;
    the pixel baselines against the fine-tuned ResNet from scratch."""
    return (arch, SCRATCH, "finetune" if protocol == "pixels" else protocol)


def _diff(a: list, b: list, paired_p: bool) -> list:
    """``a[p][f] - b[p or 0][f]``: the same subset ``f``; pretraining seed ``p`` paired only when both vary."""
    return [[x - (b[p] if paired_p else b[0])[f] for f, x in enumerate(row)] for p, row in enumerate(a)]


def v2_rows(cells: dict, primary: str, target: str) -> tuple:
    """(rows, contrasts) of the finished cells ``{(arch, arm, shots, protocol): cell}``, with
    Holm-adjusted p-values: the primary family is ``primary`` vs scratch fine-tuned (ResNet) at 10
    and 100 shots on Fashion-MNIST, everything else one exploratory family."""
    rows, contrasts = [], []
    for (arch, arm, s, proto), cell in cells.items():
        flat = [v for r in cell["per_seed"] for v in r]
        m, sd = mean_std(flat)
        row = {"arm": arm, "arch": arch, "shots": s, "protocol": proto, "mean": m, "std": sd,
               "per_seed": cell["per_seed"], "pretrain_seeds": cell["pretrain_seeds"], "hyper": cell["hyper"],
               "delta_vs_scratch": None, "ci95_low": None, "ci95_high": None, "se": None, "df": None,
               "p_value": None, "p_holm": None, "claim": None}
        ref = cells.get((*_reference(arch, proto)[:2], s, _reference(arch, proto)[2]))
        if arm != SCRATCH and ref is not None and len(ref["per_seed"][0]) == len(cell["per_seed"][0]):
            ci = crossed_ci(_diff(cell["per_seed"], ref["per_seed"], False))
            row.update(delta_vs_scratch=ci["mean"], ci95_low=ci["ci95_low"], ci95_high=ci["ci95_high"], se=ci["se"],
                       df=ci["df"], p_value=ci["p_value"])
            row["claim"] = ("primary" if (target == "fashion-mnist" and arch == "resnet" and arm == primary
                                          and proto == "finetune" and s in (10, 100)) else "exploratory")
        rows.append(row)
    from .arms import study_arms

    for a, b in [(primary, arm) for arm, spec in study_arms().items() if spec.contrast]:
        for (arch, arm, s, proto), cell in cells.items():
            other = cells.get((arch, b, s, proto))
            if arm != a or other is None or len(other["per_seed"]) != len(cell["per_seed"]):
                continue
            ci = crossed_ci(_diff(cell["per_seed"], other["per_seed"], True))
            contrasts.append({"a": a, "b": b, "arch": arch, "shots": s, "protocol": proto, "delta": ci["mean"],
                              "ci95_low": ci["ci95_low"], "ci95_high": ci["ci95_high"], "se": ci["se"],
                              "df": ci["df"], "p_value": ci["p_value"], "p_holm": None, "claim": "exploratory"})
    for family in ("primary", "exploratory"):
        members = [r for r in rows + contrasts if r["claim"] == family]
        for r, p in zip(members, holm([r["p_value"] for r in members])):
            r["p_holm"] = p
    return rows, contrasts


def v2_predictors(rows: list, reports: dict, families: dict) -> list:
    """Spearman's ρ of each data-report number with the gain over scratch across the ResNet arms,
    per (shots, protocol), and its range with each family's arms left out in turn."""
    from scipy.stats import spearmanr

    out = []
    for s, proto in sorted({(r["shots"], r["protocol"]) for r in rows if r["protocol"] != "pixels"}, key=str):
        gains = {r["arm"]: r["delta_vs_scratch"] for r in rows if r["arch"] == "resnet" and r["shots"] == s
                 and r["protocol"] == proto and r["delta_vs_scratch"] is not None}
        for key in ("coverage_mean", "separability_top1"):
            arms = [a for a in gains if reports.get(a, {}).get(key) is not None]
            if len(arms) < 4:
                continue
            rho = float(spearmanr([reports[a][key] for a in arms], [gains[a] for a in arms])[0])
            lofo = {}
            for fam in sorted({families.get(a, a) for a in arms}):
                keep = [a for a in arms if families.get(a, a) != fam]
                if len(keep) >= 3:
                    lofo[fam] = float(spearmanr([reports[a][key] for a in keep], [gains[a] for a in keep])[0])
            out.append({"shots": s, "protocol": proto, "predictor": key, "arms": arms, "n": len(arms),
                        "spearman_rho": rho, "leave_one_family_out": lofo})
    return out


def _mark(r) -> str:
    if r.get("p_holm") is None or r["p_holm"] >= 0.05:
        return ""
    return " ↑" if (r.get("delta_vs_scratch", r.get("delta")) or 0) > 0 else " ↓"


def _ci(d, lo, hi) -> str:
    return "–" if d is None else (f"{d:+.2f}" if lo is None else f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]")


def _cell(r) -> str:
    n = f"{len(r['pretrain_seeds']) or 1}×{len(r['per_seed'][0])}"
    text = f"{r['mean']:.2f} ± {r['std']:.2f} ({n})"
    if r["delta_vs_scratch"] is not None:
        text += f"<br>Δ {_ci(r['delta_vs_scratch'], r['ci95_low'], r['ci95_high'])}{_mark(r)}"
        text = f"**{text}**" if r["claim"] == "primary" else text
    h, cand = r["hyper"], r["hyper"].get("candidates", {})
    edge = lambda k: "†" if cand.get(k) and h[k] == max(cand[k]) else ""  # noqa: E731 - the grid's largest value
    return text + (f"<br>{h['steps']}{edge('steps')} steps, lr {h['lr']:g}{edge('lr')}" if "steps" in h
                   else (f"<br>C {h['C']:g}{edge('C')}" if h.get("C") is not None else ""))


_TITLES = {("resnet", "finetune"): "ResNet, fine-tuned", ("resnet", "linear"): "ResNet, linear probe "
           "(scratch: random features, batch-norm statistics recalibrated on the target subset)",
           ("resnet", "pixels"): "Raw-pixel baselines (Δ vs the ResNet fine-tuned from scratch)",
           ("vit", "finetune"): "ViT (test_vit, 28 px, patch 4), fine-tuned"}


def v2_markdown(results: dict) -> str:
    """The tables of a v2 results file (what docs/training.md shows for it)."""
    cfg = results["config"]
    lines = [f"Target {cfg['target']} (protocol v2): test {cfg['test']} images, validation {cfg['val']}, "
             f"shots from a pool of {cfg['pool']}; cells: mean ± std over (pretraining seeds × fine-tuning "
             "seeds) runs of test top-1 %, Δ vs scratch [95 % interval, crossed two-level model], the "
             "hyperparameters validation chose († the grid's largest value); **bold**: a primary claim; ↑/↓: "
             "Holm-adjusted p < 0.05.", ""]
    shots = [s for s in cfg["settings"]["shots"]]
    for (arch, proto), title in _TITLES.items():
        by = {}
        for r in results["rows"]:
            if r["arch"] == arch and r["protocol"] == proto:
                by.setdefault(r["arm"], {})[r["shots"]] = r
        if not by:
            continue
        cols = [s for s in shots if any(s in v for v in by.values())]
        lines += [f"**{title}**", "", "| arm | " + " | ".join(f"{s} shots" for s in cols) + " |",
                  "|---|" + "---|" * len(cols)]
        lines += [f"| {arm} | " + " | ".join(_cell(v[s]) if s in v else "" for s in cols) + " |"
                  for arm, v in by.items()]
        lines.append("")
    if results["contrasts"]:
        lines += ["**Direct contrasts** (same pretraining-seed index and subset)", "",
                  "| contrast | arch | shots | protocol | Δ [95 %] | Holm p |", "|---|---|---|---|---|---|"]
        lines += [f"| {c['a']} − {c['b']} | {c['arch']} | {c['shots']} | {c['protocol']} | "
                  f"{_ci(c['delta'], c['ci95_low'], c['ci95_high'])}{_mark(c)} | {_p(c['p_holm'])} |"
                  for c in results["contrasts"]]
        lines.append("")
    if results["predictors"]:
        lines += ["**Spearman ρ of the data report with the gain** (leave-one-family-out range)", "",
                  "| shots | protocol | predictor | arms | ρ | without one family |", "|---|---|---|---|---|---|"]
        for p in results["predictors"]:
            lo = p["leave_one_family_out"]
            rng = f"{min(lo.values()):+.2f} … {max(lo.values()):+.2f}" if lo else "–"
            lines.append(f"| {p['shots']} | {p['protocol']} | {p['predictor']} | {p['n']} | "
                         f"{p['spearman_rho']:+.2f} | {rng} |")
        lines.append("")
    lines += _pretraining_lines(cfg.get("pretrained") or {})
    if results["pending"]:
        lines += ["Not finished (no number reported): " + ", ".join(results["pending"]) + ".", ""]
    return "\n".join(lines).rstrip() + "\n"


#: A pretrained network whose every seed ends below this multiple of chance (its final training
#: top-1) is marked as not having learned its pretraining task.
LEARNED_OVER_CHANCE = 1.5


def learned(top1: float, classes: int) -> bool:
    """Whether a pretraining that ends at ``top1`` % training top-1 on ``classes`` classes learned
    its task: at least :data:`LEARNED_OVER_CHANCE` times chance (a NaN top-1 did not)."""
    return top1 >= LEARNED_OVER_CHANCE * 100.0 / classes


def _pretraining_lines(pretrained: dict) -> list:
    """Each pretrained network's final training top-1 per seed against chance (1 / classes): a
    pretraining that did not learn makes its arm's cells a comparison of initialisations, not of data."""
    nets = {}
    for name, info in pretrained.items():
        net, _, seed = name.rpartition(".p")
        classes = info.get("classes") if isinstance(info, dict) else None
        if net and seed.isdigit() and isinstance(classes, int) and not isinstance(classes, bool) and classes > 0:
            nets.setdefault(net, {})[int(seed)] = info
    if not nets:
        return []
    lines = [f"**Pretraining** (final training top-1 % per pretraining seed; chance = 100 / classes; "
             f"*not learned*: every seed below {LEARNED_OVER_CHANCE}x chance)", "",
             "| network | classes | final top-1 by seed | chance | |", "|---|---|---|---|---|"]
    for net, seeds in sorted(nets.items()):
        classes = seeds[min(seeds)]["classes"]
        chance = 100.0 / classes
        tops = [float(t) if isinstance(t, (int, float)) and not isinstance(t, bool) else math.nan
                for t in (seeds[p].get("final_top1") for p in sorted(seeds))]  # a NaN is stored as null
        mark = "" if any(learned(t, classes) for t in tops) else "*not learned*"
        lines.append(f"| {net} | {classes} | {', '.join(f'{t:.1f}' for t in tops)} | {chance:.1f} | {mark} |")
    return lines + [""]


def _p(p) -> str:
    return "–" if p is None else (f"{p:.3f}" if p >= 0.001 else "<0.001")


def _clean(v):
    """JSON-safe: NaN/inf as None (a constant column gives ρ NaN)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v


def write_v2(out, results: dict) -> dict:
    """``OUT/results.json`` (the file to commit as docs/results/TARGET.json) and ``results.md``."""
    results = _clean(results)
    write_text(out / "results.json", json.dumps(results, indent=1, sort_keys=False) + "\n")
    write_text(out / "results.md", v2_markdown(results))
    return results
