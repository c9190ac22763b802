"""The transfer study's results: the rows of results.json (one per arm, shots and protocol, with
the paired difference to scratch), what the data reports predict, the markdown tables, and the
files written after each unit of work."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..stats import mean_std, paired_ci
from ..train import write_text
from .arms import SCRATCH

#: The keys of each row of results.json.
RESULT_KEYS = ("arm", "shots", "protocol", "mean", "std", "per_seed", "delta_vs_scratch", "ci95_low", "ci95_high")


def assemble(raw: dict) -> list:
    """results.json rows: one per (arm, shots, protocol), with the paired difference to scratch."""
    rows = []
    for arm, by in raw.items():
        for (s, proto), r in by.items():
            m, sd = mean_std(r["per_seed"])
            row = {"arm": arm, "shots": s, "protocol": proto, "mean": m, "std": sd, "per_seed": r["per_seed"],
                   "delta_vs_scratch": None, "ci95_low": None, "ci95_high": None, "hyper": r["hyper"]}
            base = raw.get(SCRATCH, {}).get((s, proto))
            if arm != SCRATCH and base is not None:
                n = min(len(base["per_seed"]), len(r["per_seed"]))
                ci = paired_ci(r["per_seed"][:n], base["per_seed"][:n])
                row.update(delta_vs_scratch=ci["mean"], ci95_low=ci["ci95_low"], ci95_high=ci["ci95_high"])
            rows.append(row)
    return rows


def predictors(rows: list, reports: dict) -> list:
    """Across the arms: Spearman's rank correlation of each dataset-report number with the gain over
    scratch, per (shots, protocol).  Few arms: read it as a hint, not a test."""
    out = []
    for shots, proto in sorted({(r["shots"], r["protocol"]) for r in rows}, key=str):
        gains = {r["arm"]: r["delta_vs_scratch"] for r in rows
                 if r["shots"] == shots and r["protocol"] == proto and r["delta_vs_scratch"] is not None}
        for key in ("coverage_mean", "separability_top1"):
            arms = [a for a in gains if reports.get(a, {}).get(key) is not None]
            if len(arms) < 3:
                continue
            from scipy.stats import spearmanr

            rho, p = spearmanr([reports[a][key] for a in arms], [gains[a] for a in arms])
            out.append({"shots": shots, "protocol": proto, "predictor": key, "arms": arms, "n": len(arms),
                        "spearman_rho": float(rho), "p_value": float(p)})
    return out


def write_results(out: Path, rows, scaling_rows, config, t0, cpu0, plots=None, predictors=None) -> dict:
    """results.json and results.md (and, with ``plots(out, results) -> paths``, the figures); the results."""
    results = {"rows": rows, "scaling": scaling_rows, "config": config, "predictors": predictors or [],
               "seconds": round(time.perf_counter() - t0, 1), "cpu_seconds": round(time.process_time() - cpu0, 1)}
    write_text(out / "results.json", json.dumps(results, indent=1, default=str) + "\n")
    write_text(out / "results.md", transfer_table(results) + "\n")
    if plots:
        results["plots"] = plots(out, results)
    return results


def transfer_rows(results: dict, protocol: str) -> dict:
    """{arm: {shots: row}} of one protocol."""
    by = {}
    for r in results["rows"]:
        if r["protocol"] == protocol:
            by.setdefault(r["arm"], {})[r["shots"]] = r
    return by


def _fmt_ci(r) -> str:
    if r["delta_vs_scratch"] is None:
        return "–"
    if r["ci95_low"] is None:
        return f"{r['delta_vs_scratch']:+.2f} (1 seed)"
    # a zero-width interval (every seed's difference the same, e.g. n = 2) says nothing about the spread
    width = r["ci95_high"] - r["ci95_low"]
    mark = "" if width <= 0 else " ↑" if r["ci95_low"] > 0 else (" ↓" if r["ci95_high"] < 0 else "")
    return f"{r['delta_vs_scratch']:+.2f} [{r['ci95_low']:+.2f}, {r['ci95_high']:+.2f}]{mark}"


def transfer_table(results: dict) -> str:
    """Markdown: per protocol, test top-1 (%) mean ± std and the paired Δ vs scratch with its 95 % CI."""
    cfg = results["config"]
    lines = [f"Target {cfg['target']}: {len(cfg['classes'])} classes, shots drawn from {cfg['pool']} training "
             f"images, validation {cfg['val']} (carved from the training set), test {cfg['test']} images; "
             f"{cfg['settings']['arch']} at {cfg['settings']['image_size']} px; "
             f"{results['seconds']:.0f} s wall, {results['cpu_seconds']:.0f} s CPU (this process)", ""]
    lines += _protocol_tables(results)
    lines += _scaling_table(results)
    lines += _report_table(cfg)
    lines += _predictor_table(results)
    lines.append("Δ: paired difference to scratch on the same splits (percentage points), 95 % paired-t interval; "
                 "↑/↓: the interval excludes zero.")
    return "\n".join(lines)


def _protocol_tables(results: dict) -> list:
    shots = results["config"]["settings"]["shots"]
    lines = []
    for proto, title in (("finetune", "Fine-tuned"), ("linear", "Linear probe (frozen features; "
                                                                 "scratch = random features)")):
        by = transfer_rows(results, proto)
        if not by:
            continue
        lines += [f"**{title}** — test top-1 % mean ± std (seeds); Δ vs scratch [95 % CI]", "",
                  "| arm | " + " | ".join(f"{s} shots" for s in shots) + " |",
                  "|---|" + "---|" * len(shots)]
        for arm, rows in by.items():
            cells = []
            for s in shots:
                r = rows.get(s)
                cells.append("" if r is None else f"{r['mean']:.2f} ± {r['std']:.2f} (n={len(r['per_seed'])})"
                             + ("" if arm == SCRATCH else f"<br>Δ {_fmt_ci(r)}"))
            lines.append(f"| {arm} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _scaling_table(results: dict) -> list:
    if not results.get("scaling"):
        return []
    lines = ["**Scaling** (FractalDB; Δ vs scratch [95 % CI])", "",
             "| arm | categories | epochs | shots | protocol | top-1 % | Δ vs scratch |", "|---|---|---|---|---|---|---|"]
    for r in results["scaling"]:
        lines.append(f"| {r['arm']} | {r['categories']} | {r['pretrain_epochs']} | {r['shots']} | {r['protocol']} "
                     f"| {r['mean']:.2f} ± {r['std']:.2f} | {_fmt_ci(r)} |")
    return lines + [""]


def _report_table(cfg: dict) -> list:
    reps = cfg.get("arm_reports") or {}
    if not reps:
        return []
    lines = ["**Pretraining data** (`fractaldb report` of each arm's data)", "",
             "| arm | images × epochs | final train top-1 % | coverage | nearest-centroid top-1 % (chance) "
             "| near-empty | degenerate variants |", "|---|---|---|---|---|---|---|"]
    for arm, v in reps.items():
        p = cfg["pretrained"].get(arm, {})
        sep = ("n/a (one image per class)" if v["separability_top1"] is None
               else f"{v['separability_top1']:.1f} ({v['separability_chance']:.1f})")
        lines.append(f"| {arm} | {p.get('images', '?')} × {p.get('epochs', '?')} | "
                     f"{p.get('final_top1', float('nan')):.1f} | {v['coverage_mean']:.3f} | {sep} | "
                     f"{v['near_empty']} | {v['degenerate_variants']} |")
    return lines + [""]


def _predictor_table(results: dict) -> list:
    if not results.get("predictors"):
        return []
    lines = ["**Do the data's numbers predict the gain?** Spearman ρ across arms (gain = Δ vs scratch)", "",
             "| shots | protocol | predictor | arms | ρ | p |", "|---|---|---|---|---|---|"]
    for p in results["predictors"]:
        lines.append(f"| {p['shots']} | {p['protocol']} | {p['predictor']} | {p['n']} | "
                     f"{p['spearman_rho']:+.2f} | {p['p_value']:.2f} |")
    return lines + [""]
