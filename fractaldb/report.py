"""``fractaldb report DATASET``: a look at a generated dataset before anyone trains on it.

Reads a ``fractaldb generate`` output (its manifest and shards; no PyTorch) and
writes ``report.md``, ``report.json`` and PNG figures:

- class and image counts per family, and what the renderers recorded (degenerate
  fractal weight variants replaced, recorded or kept);
- **coverage** per image: the fraction of pixels whose luminance differs from the
  image's background level (the median of its border pixels) by more than
  :data:`COVERAGE_DELTA`; its distribution per family, and the **near-empty** images
  (coverage below :data:`NEAR_EMPTY`);
- **fixed features** per image: the normalised log radial power spectrum of the
  luminance (:data:`SPECTRUM_BINS` rings of the 2-D FFT of a 64 x 64 copy, mean
  removed) followed by a :data:`HIST_BINS`-bin luminance histogram.  Both are
  invariant to flips and 90-degree turns, so FractalDB's flip instances fall on one
  point;
- **separability**: nearest-centroid top-1 on those features, class centroids from
  the even-numbered images of each class (in shard order) scored on the odd ones
  (classes with one image are left out and counted);
- **near-duplicate classes**: pairs of class centroids (standardised features)
  closer than :data:`DUPLICATE_FRACTION` of the median nearest-centroid distance.

Large datasets are sampled: shards are read in order until ``max_images``.  Every shard is
checked against the manifest (size, then sha256) and every sample through the one validated
reader path (:func:`fractaldb.manifest.shard_samples`, :func:`fractaldb.inputs.open_image`:
labels among the manifest's classes, images bounded before they are decoded).  The report
folder is assembled under a staging name and put in place whole (:func:`fractaldb.storage.staged_dir`):
an existing non-empty ``--out`` is replaced only with ``overwrite``, never one holding the dataset.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np

from .dataset import Dataset, load_manifest
from .errors import InputError
from .families import legacy_default_family
from .inputs import open_image
from .manifest import shard_samples
from .storage import Store, staged_dir, write_file

__all__ = ["COVERAGE_DELTA", "NEAR_EMPTY", "SPECTRUM_BINS", "HIST_BINS", "DUPLICATE_FRACTION",
           "image_stats", "features", "nearest_centroid", "dataset_report", "report_markdown"]

COVERAGE_DELTA = 0.1      # luminance difference (0..1) from the background that counts as covered
NEAR_EMPTY = 0.01         # coverage below this: a near-empty image
SPECTRUM_BINS = 16
HIST_BINS = 16
DUPLICATE_FRACTION = 0.1  # of the median nearest-centroid distance
_SIDE = 64


#: What a report folder holds (and all it holds).
REPORT_FILES = ("report.json", "report.md", "coverage.png", "separability.png", "samples.png")


def _luminance(data: bytes, where: str) -> np.ndarray:
    """An encoded image -> float luminance (0..1) at 64 x 64 (Rec. 601 weights, PIL's L)."""
    from PIL import Image

    g = open_image(data, where, "L", fix="regenerate its shard from a manifest you trust")
    if g.size != (_SIDE, _SIDE):
        g = g.resize((_SIDE, _SIDE), Image.BILINEAR)
    return np.asarray(g, dtype=np.float64) / 255.0


def image_stats(lum: np.ndarray) -> dict:
    """Coverage (see the module doc), mean and std of one luminance image."""
    border = np.concatenate([lum[0], lum[-1], lum[1:-1, 0], lum[1:-1, -1]])
    background = float(np.median(border))
    coverage = float((np.abs(lum - background) > COVERAGE_DELTA).mean())
    return {"coverage": coverage, "mean": float(lum.mean()), "std": float(lum.std())}


def _rings(side: int) -> np.ndarray:
    y, x = np.indices((side, side))
    r = np.hypot(y - side // 2, x - side // 2)
    return np.minimum((r / (side / 2) * SPECTRUM_BINS).astype(int), SPECTRUM_BINS - 1)


_RING = _rings(_SIDE)


def features(lum: np.ndarray) -> np.ndarray:
    """The fixed features of one luminance image: log radial power spectrum + luminance histogram."""
    power = np.abs(np.fft.fftshift(np.fft.fft2(lum - lum.mean()))) ** 2
    spec = np.bincount(_RING.ravel(), weights=power.ravel(), minlength=SPECTRUM_BINS)
    spec = np.log(spec / max(spec.sum(), 1e-12) + 1e-8)
    hist = np.histogram(lum, bins=HIST_BINS, range=(0.0, 1.0))[0] / lum.size
    return np.concatenate([spec, hist])


def nearest_centroid(feats: np.ndarray, labels: np.ndarray) -> dict:
    """Nearest-centroid top-1 (%) on standardised features: centroids from the even-numbered images of
    each class, scored on the odd ones; also the per-class accuracy and the classes left out."""
    feats = np.asarray(feats, dtype=np.float64)
    labels = np.asarray(labels)
    mu, sd = feats.mean(0), feats.std(0) + 1e-9
    z = (feats - mu) / sd
    classes = np.unique(labels)
    train, test, skipped = [], [], []
    for c in classes:
        idx = np.flatnonzero(labels == c)
        if len(idx) < 2:
            skipped.append(int(c))
            continue
        train.append(idx[0::2])
        test.append(idx[1::2])
    if not train:
        return {"top1": None, "chance": None, "per_class": {}, "classes_left_out": skipped,
                "note": "every class has one image: no held-out image to score"}
    kept = [int(c) for c in classes if int(c) not in skipped]
    cents = np.stack([z[t].mean(0) for t in train])
    test_idx = np.concatenate(test)
    d = ((z[test_idx, None, :] - cents[None]) ** 2).sum(-1)
    pred = np.asarray(kept)[d.argmin(1)]
    truth = labels[test_idx]
    per_class = {str(c): 100.0 * float((pred[truth == c] == c).mean()) for c in kept}
    return {"top1": 100.0 * float((pred == truth).mean()), "chance": 100.0 / len(kept), "per_class": per_class,
            "classes_left_out": skipped, "scored_images": int(len(test_idx))}


def _duplicates(feats: np.ndarray, labels: np.ndarray) -> dict:
    z = (feats - feats.mean(0)) / (feats.std(0) + 1e-9)
    classes = np.unique(labels)
    if len(classes) < 2:
        return {"pairs": [], "median_nearest_distance": None, "threshold": None}
    cents = np.stack([z[labels == c].mean(0) for c in classes])
    d = np.sqrt(((cents[:, None] - cents[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    nearest = d.min(1)
    med = float(np.median(nearest))
    thr = DUPLICATE_FRACTION * med
    pairs = [(int(classes[i]), int(classes[j]), float(d[i, j])) for i in range(len(classes))
             for j in range(i + 1, len(classes)) if d[i, j] < thr]
    return {"pairs": pairs, "median_nearest_distance": med, "threshold": thr,
            "nearest_distance_quantiles": [float(q) for q in np.quantile(nearest, [0.0, 0.1, 0.5, 0.9, 1.0])]}


def _samples(store: Store, manifest: dict, max_images: int, progress=None):
    """(key, label, family, encoded bytes, where) of the first ``max_images`` samples, shard by
    shard, each shard checked against the manifest and each sample validated
    (:func:`fractaldb.manifest.shard_samples`)."""
    ds = Dataset.from_manifest(manifest)
    default = None if all("family" in c for c in manifest["categories"]) else legacy_default_family()
    n = 0
    for entry in manifest["shards"]:
        for s in shard_samples(store, entry, ds, default):
            yield s.key, s.label, s.family, s.image, f"{store.path(entry['name'])}: sample {s.key}"
            n += 1
            if n >= max_images:
                return
        if progress is not None:
            progress(entry["samples"])


def dataset_report(dataset: str, out, max_images: int = 20000, progress=None, overwrite: bool = False) -> dict:
    """Analyse the generated dataset ``dataset`` and write report.md, report.json and PNGs to ``out``
    (a new or empty folder, or any with ``overwrite``; never one that holds ``dataset``).

    Returns the numbers written to ``report.json``.
    """
    if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images <= 0:
        raise InputError(f"--max-images must be a positive integer, got {max_images}")
    from .storage import check_output_dir

    check_output_dir(Path(out), overwrite, inputs=[dataset])
    store = Store(dataset)
    manifest = load_manifest(store)
    with np.errstate(all="ignore"):  # constant images and one-image classes: no warnings, defined results
        result, arrays = _analyse(dataset, store, manifest, max_images, progress)
    with staged_dir(Path(out), overwrite, inputs=[dataset]) as tmp:
        result["figures"] = _figures(tmp, result, *arrays, store, manifest)
        write_file(tmp / "report.json", (json.dumps(result, indent=1) + "\n").encode())
        write_file(tmp / "report.md", (report_markdown(result) + "\n").encode())
    return result


def _analyse(dataset, store, manifest, max_images, progress) -> tuple:
    """The numbers of report.json, and (coverage, families, features, labels) for the figures."""
    plan = manifest["plan"]
    keys, labels, fams, feats, stats = [], [], [], [], []
    for key, label, family, data, where in _samples(store, manifest, max_images, progress):
        lum = _luminance(data, where)
        keys.append(key)
        labels.append(label)
        fams.append(family)
        stats.append(image_stats(lum))
        feats.append(features(lum))
    if not keys:
        raise InputError(f"{dataset} holds no samples")
    labels_a, feats_a = np.array(labels), np.stack(feats)
    cov = np.array([s["coverage"] for s in stats])
    families = {}
    for f in dict.fromkeys(fams):
        m = np.array([x == f for x in fams])
        c = cov[m]
        families[f] = {"images": int(m.sum()), "classes": int(len(np.unique(labels_a[m]))),
                       "coverage_mean": float(c.mean()),
                       "coverage_quantiles": {q: float(v) for q, v in
                                              zip(("min", "p10", "p50", "p90", "max"),
                                                  np.quantile(c, [0, 0.1, 0.5, 0.9, 1]))},
                       "near_empty": int((c < NEAR_EMPTY).sum()),
                       "separability": nearest_centroid(feats_a[m], labels_a[m])}
    per_class = {}
    for c in np.unique(labels_a):
        m = labels_a == c
        per_class[str(int(c))] = {"images": int(m.sum()), "coverage_mean": float(cov[m].mean())}
    counts = [v["images"] for v in per_class.values()]
    records = manifest.get("records", [])
    actions = {}
    for r in records:
        action = r.get("action", "noted")
        action = action if isinstance(action, str) and action.replace("-", "").isalnum() and len(action) < 33 \
            else "other"
        actions[action] = actions.get(action, 0) + 1
    near_empty = [k for k, s in zip(keys, stats) if s["coverage"] < NEAR_EMPTY]
    result = {
        "dataset": str(dataset), "name": manifest.get("name"), "families": list(manifest["config"].get("families", [])),
        "manifest": {"classes": int(plan["classes"]), "images": int(plan["samples"]), "shards": int(plan["shards"])},
        "read": {"images": len(keys), "classes": len(per_class), "sampled": len(keys) < int(plan["samples"])},
        "images_per_class": {"min": int(min(counts)), "max": int(max(counts)), "mean": float(np.mean(counts))},
        "coverage": {"definition": f"fraction of pixels with |luminance - median border luminance| > "
                                   f"{COVERAGE_DELTA} (64x64 luminance copy)",
                     "mean": float(cov.mean()), "per_family": {f: v["coverage_mean"] for f, v in families.items()}},
        "degenerate_variants": {"count": len(records), "by_action": actions, "first": records[:5]},
        "near_empty": {"threshold": NEAR_EMPTY, "count": len(near_empty), "keys": near_empty[:20]},
        "near_duplicate_classes": _duplicates(feats_a, labels_a),
        "separability": {"features": f"log radial power spectrum ({SPECTRUM_BINS} rings) + luminance histogram "
                                     f"({HIST_BINS} bins), standardised; nearest centroid, even images -> "
                                     "centroids, odd images scored",
                         **nearest_centroid(feats_a, labels_a)},
        "per_family": families,
        "per_class": per_class,
    }
    return result, (cov, fams, feats_a, labels_a)


def _figures(out: Path, result, cov, fams, feats, labels, store, manifest) -> list:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    paths = []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for f in dict.fromkeys(fams):
        m = np.array([x == f for x in fams])
        axes[0].hist(cov[m], bins=40, range=(0, 1), alpha=0.6, label=f"{f} ({int(m.sum())})")
    axes[0].axvline(NEAR_EMPTY, color="r", lw=0.8, ls="--", label="near-empty")
    axes[0].set_xlabel("coverage (fraction of pixels off the background)")
    axes[0].set_ylabel("images")
    axes[0].legend(fontsize=8)
    axes[0].set_title("coverage per family")
    pc = result["per_class"]
    axes[1].bar(range(len(pc)), [v["coverage_mean"] for v in pc.values()], width=1.0)
    axes[1].set_xlabel("class (label order)")
    axes[1].set_ylabel("mean coverage")
    axes[1].set_title("coverage per class")
    fig.tight_layout()
    _save_figure(fig, out / "coverage.png")
    plt.close(fig)
    paths.append("coverage.png")

    z = (feats - feats.mean(0)) / (feats.std(0) + 1e-9)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    if len(z) >= 2:
        u, s, vt = np.linalg.svd(z - z.mean(0), full_matrices=False)
        xy = z @ vt[:2].T
        classes = np.unique(labels)
        shown = classes[:20]
        cmap = plt.get_cmap("tab20")
        other = ~np.isin(labels, shown)
        axes[0].scatter(xy[other, 0], xy[other, 1], s=3, c="0.8")
        for i, c in enumerate(shown):
            m = labels == c
            axes[0].scatter(xy[m, 0], xy[m, 1], s=5, color=cmap(i % 20))
        axes[0].set_title(f"fixed features, 2 principal components ({min(20, len(classes))} classes coloured)")
    sep = result["separability"]
    if sep["per_class"]:
        axes[1].hist(list(sep["per_class"].values()), bins=20, range=(0, 100))
        axes[1].axvline(sep["top1"], color="k", lw=1, label=f"overall {sep['top1']:.1f} %")
        axes[1].axvline(sep["chance"], color="r", lw=1, ls="--", label=f"chance {sep['chance']:.1f} %")
        axes[1].legend(fontsize=8)
    axes[1].set_xlabel("nearest-centroid top-1 per class (%)")
    axes[1].set_ylabel("classes")
    axes[1].set_title("separability")
    fig.tight_layout()
    _save_figure(fig, out / "separability.png")
    plt.close(fig)
    paths.append("separability.png")

    # one image of each of the first 16 classes
    from PIL import Image
    firsts = {}
    for key, label, _, data, where in _samples(store, manifest, 5000):
        if label not in firsts and len(firsts) < 16:
            firsts[label] = (data, where)
        if len(firsts) == 16:
            break
    tiles = [open_image(data, where, "RGB").resize((64, 64)) for data, where in (firsts[k] for k in sorted(firsts))]
    sheet = Image.new("RGB", (64 * min(8, len(tiles)), 64 * math.ceil(len(tiles) / 8)), "white")
    for i, t in enumerate(tiles):
        sheet.paste(t, (64 * (i % 8), 64 * (i // 8)))
    write_file(out / "samples.png", lambda f: sheet.save(f, format="PNG"))
    paths.append("samples.png")
    return paths


def _save_figure(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    write_file(path, buf.getvalue())


def _pct(v) -> str:
    return "n/a" if v is None else f"{v:.1f} %"


def report_markdown(r: dict) -> str:
    """The one-page Markdown report of :func:`dataset_report`'s numbers."""
    m, rd = r["manifest"], r["read"]
    sep, dup, ne, deg = r["separability"], r["near_duplicate_classes"], r["near_empty"], r["degenerate_variants"]
    lines = [f"# Dataset report: {r['name']}", "",
             f"`{r['dataset']}`: {m['classes']} classes, {m['images']} images in {m['shards']} shards "
             f"(families: {', '.join(r['families'])}).",
             f"Read: {rd['images']} images of {rd['classes']} classes" + (" (a sample: the first shards)" if rd["sampled"]
                                                                          else "") +
             f"; {r['images_per_class']['min']}-{r['images_per_class']['max']} images per class.", "",
             "| family | classes | images | coverage mean | p10 / p50 / p90 | near-empty | nearest-centroid top-1 | chance |",
             "|---|---|---|---|---|---|---|---|"]
    for f, v in r["per_family"].items():
        q = v["coverage_quantiles"]
        s = v["separability"]
        lines.append(f"| {f} | {v['classes']} | {v['images']} | {v['coverage_mean']:.3f} | {q['p10']:.3f} / "
                     f"{q['p50']:.3f} / {q['p90']:.3f} | {v['near_empty']} | {_pct(s['top1'])} | {_pct(s['chance'])} |")
    lines += ["",
              f"- **Separability** (all classes): nearest-centroid top-1 {_pct(sep['top1'])} vs chance "
              f"{_pct(sep['chance'])}" + (f"; {len(sep['classes_left_out'])} one-image classes left out"
                                          if sep["classes_left_out"] else "") + f". Features: {sep['features']}.",
              f"- **Coverage**: {r['coverage']['definition']}; mean {r['coverage']['mean']:.3f}.",
              f"- **Near-empty images** (coverage < {ne['threshold']}): {ne['count']}"
              + (f" (e.g. {', '.join(ne['keys'][:5])})" if ne["keys"] else "") + ".",
              f"- **Degenerate variants** recorded by the renderers: {deg['count']}"
              + (f" ({', '.join(f'{k}: {v}' for k, v in deg['by_action'].items())})" if deg["by_action"] else "") + ".",
              f"- **Near-duplicate classes** (centroid distance < {DUPLICATE_FRACTION} x the median nearest-centroid "
              f"distance): {len(dup['pairs'])}" + (f" (e.g. {', '.join(f'{a}~{b}' for a, b, _ in dup['pairs'][:5])})"
                                                     if dup["pairs"] else "") + ".",
              ""]
    for fig, title in (("samples.png", "one image of each of the first classes"),
                       ("coverage.png", "coverage"), ("separability.png", "separability")):
        if fig in r.get("figures", []):
            lines += [f"![{title}]({fig})", ""]
    return "\n".join(lines)
