"""The transfer study's figures (matplotlib, optional): learning_curves.png and scaling.png."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .arms import ARM_CLASSES
from .tables import transfer_rows


def plots(out: Path, results: dict, emphasis=()) -> list:
    """learning_curves.png (per protocol, mean with 95 % band; the arms in ``emphasis`` drawn
    thicker) and scaling.png; their paths (none without matplotlib)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    paths = [_learning_curves(plt, out, results, emphasis)]
    if results.get("scaling"):
        paths.append(_scaling(plt, out, results))
    return paths


def _learning_curves(plt, out: Path, results: dict, emphasis) -> str:
    from ..stats import t_quantile

    shots = results["config"]["settings"]["shots"]
    n_pool = results["config"]["pool"] // max(len(results["config"]["classes"]), 1)
    xs = {s: (n_pool if s == "all" else s) for s in shots}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, proto in zip(axes, ("finetune", "linear")):
        for arm, rows in transfer_rows(results, proto).items():
            pts = sorted(((xs[s], r) for s, r in rows.items()), key=lambda p: p[0])
            x = [p[0] for p in pts]
            m = np.array([p[1]["mean"] for p in pts])
            half = np.array([t_quantile(len(p[1]["per_seed"]) - 1) * p[1]["std"] / math.sqrt(len(p[1]["per_seed"]))
                             if len(p[1]["per_seed"]) > 1 else 0.0 for p in pts])
            line, = ax.plot(x, m, marker="o", label=arm, lw=2.2 if arm in emphasis else 1.2)
            ax.fill_between(x, m - half, m + half, color=line.get_color(), alpha=0.15)
        ax.set_xscale("log")
        ax.set_xlabel("labelled images per class (log)")
        ax.set_ylabel("test top-1 %")
        ax.set_title({"finetune": "fine-tuned", "linear": "linear probe (scratch = random features)"}[proto])
        ax.grid(alpha=0.3)
    if axes[1].get_legend_handles_labels()[0]:  # no runs yet (a partial study): no legend to draw
        axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{results['config']['target']}: mean over seeds, band = 95 % CI of the mean")
    fig.tight_layout()
    p = out / "learning_curves.png"
    _save(fig, p)
    plt.close(fig)
    return str(p)


def _scaling(plt, out: Path, results: dict) -> str:
    """Δ vs scratch against the pretraining categories (3,200 images in all) and against the
    pretraining epochs (the primary arm itself, ``ARM_CLASSES`` categories)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, label in ((axes[0], "categories", "pretraining categories (3,200 images in all)"),
                           (axes[1], "pretrain_epochs", f"pretraining epochs ({ARM_CLASSES} categories)")):
        rows = [r for r in results["scaling"] if (key == "categories" and r["epochs_factor"] == 1)
                or (key != "categories" and r["categories"] == ARM_CLASSES)]
        for (proto, s) in sorted({(r["protocol"], r["shots"]) for r in rows}, key=str):
            pts = sorted(((r[key], r) for r in rows if r["protocol"] == proto and r["shots"] == s),
                         key=lambda p: p[0])
            x = [p[0] for p in pts]
            d = np.array([p[1]["delta_vs_scratch"] for p in pts], dtype=float)
            lo = np.array([p[1]["ci95_low"] if p[1]["ci95_low"] is not None else np.nan for p in pts], dtype=float)
            hi = np.array([p[1]["ci95_high"] if p[1]["ci95_high"] is not None else np.nan for p in pts], dtype=float)
            line, = ax.plot(x, d, marker="o", label=f"{proto}, {s} shots")
            ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xlabel(label)
        ax.set_ylabel("Δ top-1 vs scratch (points)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    p = out / "scaling.png"
    _save(fig, p)
    plt.close(fig)
    return str(p)


def _save(fig, path: Path) -> None:
    """The figure through the safe-write layer (never through a link planted at its name)."""
    import io

    from ..storage import write_file

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    write_file(path, buf.getvalue())
