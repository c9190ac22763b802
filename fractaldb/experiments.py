"""Experiments that check the data pretrains a network: ``fractaldb experiment transfer``.

The transfer study (docs/training.md, "The transfer study"): pretrain one small
timm network per *arm* (a formula-driven dataset: FractalDB, Perlin noise, 1p-frac
...) with the same budget, then learn a real target (Fashion-MNIST, scikit-learn's
digits or an ImageFolder) from 10, 100, 1000 or all labelled images per class,
fine-tuned and as a linear probe, and compare every arm with the same network from
scratch on the same splits, with paired 95 % confidence intervals.

Hyperparameters are chosen on a validation split carved from the target's
training set; the test set is read once per final run.  The study is a client of
the training library (:mod:`fractaldb.train`) and of the generator
(:func:`fractaldb.dataset.generate`); training never imports this module.

Needs PyTorch, timm, scikit-learn and matplotlib (``pip install 'fractaldb[torch]'``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from pathlib import Path

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError("fractaldb.experiments needs PyTorch: pip install 'fractaldb[torch]'") from exc

import numpy as np

from ._version import __version__
from .errors import ConfigError, InputError, OutputError
from .idx import find_idx, read_idx
from .seeds import generator
from .stats import mean_std, paired_ci
from .train import (create_model, evaluate, fit, load_size, prepare_batch, reset_head, resolve_config, setup_runtime,
                    tensor_source, write_text)
from .train.sources import SquareUint8

__all__ = ["TRANSFER_SETTINGS", "ARMS", "PROTOCOLS", "TARGETS", "FASHION_MNIST_DIR", "RESULT_KEYS",
           "load_target", "transfer_experiment", "transfer_table", "transfer_rows"]

#: Where Debian's dataset-fashion-mnist puts the four IDX files.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
                       "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot"]
TARGETS = ("fashion-mnist", "digits", "imagefolder:PATH")
#: The two ways a network is evaluated: every weight trained, or a linear classifier on frozen features.
PROTOCOLS = ("finetune", "linear")
#: The keys of each row of results.json.
RESULT_KEYS = ("arm", "shots", "protocol", "mean", "std", "per_seed", "delta_vs_scratch", "ci95_low", "ci95_high")

# Ids inside the "experiment" seed purpose: one stream per use, never renumbered.
_SPLIT_DIGITS, _SPLIT_VAL, _SPLIT_SHOTS, _SPLIT_TEST, _SPLIT_FOLDER = 0, 1, 2, 3, 4

# --------------------------------------------------------------------------------------------
# The arms: a preset and its overrides each, rendered at 64 px and loaded at the study's size.
# Every arm has (about) 32 classes; the pretraining budget is the same number of image
# presentations (images x epochs) for all, so an arm of 32 images trains 100 times more epochs.
# --------------------------------------------------------------------------------------------

_FRACTAL = ["shard_size=1000", "fractal.categories=32", "fractal.image_size=64", "fractal.points=20000",
            "fractal.weights=0.4", "fractal.patches=1", "fractal.flips=4"]

#: arm -> (preset, overrides, what it is).
ARMS = {
    "scratch": (None, [], "no pretraining: the network's random initialisation"),
    "fractaldb": ("tiny", _FRACTAL + ["fractal.sampler=modern"],
                  "FractalDB, official-style patch renders, modern sampler (32 categories x 25 weights x 4 flips)"),
    "fractal-point": ("tiny", _FRACTAL + ["fractal.sampler=modern", "fractal.mode=point"],
                      "FractalDB in point mode (same categories as fractaldb)"),
    "fractal-svd": ("tiny", _FRACTAL + ["fractal.sampler=svd"], "sigma-factor (svd) sampled fractals, patch mode"),
    "perlin": ("perlin-tiny", ["shard_size=1000", "perlin.classes=32", "perlin.instances=100",
                               "perlin.image_size=64"], "Perlin noise, 32 classes x 100 instances"),
    "fractal+perlin": ("fractal+perlin", ["shard_size=1000", "fractal.categories=16", "fractal.image_size=64",
                                          "fractal.points=20000", "fractal.patches=1", "perlin.classes=16",
                                          "perlin.instances=100", "perlin.image_size=64"],
                       "16 FractalDB categories + 16 Perlin classes, 100 images each"),
    "1p-frac": ("1p-frac-tiny", ["shard_size=1000", "onepfrac.classes=32", "onepfrac.image_size=64",
                                 "onepfrac.points=20000"], "1p-frac: 32 perturbations of one fractal, 1 image each"),
    "ofdb": ("ofdb-1k", ["shard_size=1000", "fractal.categories=32", "fractal.image_size=64",
                         "fractal.points=20000"], "OFDB: one image per FractalDB category (32 images)"),
    "fractal3d": ("fractal3d-tiny", ["shard_size=1000", "fractal3d.categories=32", "fractal3d.instances=10",
                                     "fractal3d.n_views=10", "fractal3d.image_size=64"],
                  "MV-FractalDB: 3-D fractals, 32 categories x 10 instances x 10 views"),
    "color-fractal": ("color-fractal-tiny", ["shard_size=1000", "colorfractal.classes=32",
                                             "colorfractal.instances=100", "colorfractal.image_size=64",
                                             "colorfractal.points=20000"],
                      "colour sigma-factor fractals on noise backgrounds, 32 classes x 100"),
}


def _fractaldb_scaled(categories: int) -> tuple:
    """FractalDB with ``categories`` classes and 3,200 images in all (25 weights x patches x flips each)."""
    per = 3200 // categories
    patches, flips = (per // 100, 4) if per >= 100 else (1, per // 25)
    if patches * flips * 25 * categories != 3200:
        raise ConfigError(f"the scaling study needs 3200 / categories to be 25 x patches x flips, got {categories}")
    over = [o for o in _FRACTAL if not o.startswith(("fractal.categories", "fractal.patches", "fractal.flips"))]
    return ("tiny", over + ["fractal.sampler=modern", f"fractal.categories={categories}",
                            f"fractal.patches={patches}", f"fractal.flips={flips}"],
            f"FractalDB, {categories} categories x {3200 // categories} images")


_COMMON = dict(arch="test_resnet", image_size=28, crop_ratio=0.875, val_per_class=100,
               pretrain=dict(batch_size=64, lr=0.1, momentum=0.9, weight_decay=1e-4, schedule="cosine",
                             warmup_epochs=1, hflip=True, mean=[0.5] * 3, std=[0.5] * 3),
               finetune=dict(batch_size=32, momentum=0.9, weight_decay=5e-4, schedule="cosine", warmup_epochs=0,
                             mean=[0.5] * 3, std=[0.5] * 3),
               probe_c=[0.01, 0.1, 1.0, 10.0], threads=1, test_limit=2000,
               steps=dict(min=100, max=100, epochs=10), steps_large=dict(min=300, max=300, epochs=10),
               presentations=3200 * 6, lr=[0.03, 0.1])

#: The study's settings; docs/training.md says how they were sized.  ``presentations``: the
#: pretraining budget (images x epochs, the same for every arm); ``steps``: fine-tuning
#: optimizer steps per run (``min``, ``max``, and ``epochs`` in between); ``lr``: the fine-tuning
#: learning rates tried on the validation split.
TRANSFER_SETTINGS = {
    "quick": {**_COMMON, "shots": [10, 100], "seeds": 5, "seeds_large": 2,
              "arms": ["scratch", "fractaldb", "perlin"], "large_arms": [], "scaling": None},
    # the same single runs as quick (a full study reuses a quick run's cache), more of them
    "full": {**_COMMON, "shots": [10, 100, 1000, "all"], "seeds": 5, "seeds_large": 2,
             "arms": list(ARMS), "large_arms": ["scratch", "fractaldb"],
             "scaling": {"categories": [8, 32, 128], "epochs_factor": [1 / 3, 1], "shots": [10]}},
}


# --------------------------------------------------------------------------------------------
# Targets: uint8 (N, 3, R, R) images and labels, a fixed train/test split, nothing downloaded.
# --------------------------------------------------------------------------------------------

def _square(x: "torch.Tensor", side: int) -> "torch.Tensor":
    """``uint8 (N, C, H, W)`` -> ``(N, 3, side, side)`` (bilinear, antialiased; gray expanded, not copied)."""
    from torchvision.transforms.v2 import functional as F

    if x.shape[-2:] != (side, side):
        x = torch.cat([F.resize(x[i:i + 4096], [side, side], antialias=True) for i in range(0, len(x), 4096)])
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def _fashion_mnist(folder, side: int) -> dict:
    folder = Path(folder or FASHION_MNIST_DIR)
    paths = {k: find_idx(folder, stem) for k, stem in FASHION_MNIST_FILES.items()}
    missing = [FASHION_MNIST_FILES[k] for k, p in paths.items() if p is None]
    if missing:
        raise InputError(f"Fashion-MNIST not found: {folder} lacks {missing[0]}[.gz]; install it with "
                         "'apt-get install dataset-fashion-mnist' or give --target-dir DIR with the four IDX files")
    arrays = {k: read_idx(p) for k, p in paths.items()}
    for split in ("train", "test"):
        x, y = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y) or x.dtype != np.uint8 or y.max() > 9:
            raise InputError(f"{paths[f'{split}_images']} and its labels do not hold N gray images and N labels "
                             "0..9; give the original Fashion-MNIST files")
    conv = lambda k: _square(torch.from_numpy(arrays[k].copy())[:, None], side)  # noqa: E731
    return {"name": "fashion-mnist", "classes": FASHION_MNIST_CLASSES, "hflip": True, "source": str(folder),
            "train_x": conv("train_images"), "train_y": torch.from_numpy(arrays["train_labels"].astype(np.int64)),
            "test_x": conv("test_images"), "test_y": torch.from_numpy(arrays["test_labels"].astype(np.int64))}


def _stratified(labels: "torch.Tensor", fraction: float, seed_ids: tuple) -> tuple:
    """A seeded stratified split: (indices of ``fraction`` of each class, the rest)."""
    rng = generator(0, "experiment", *seed_ids)
    picked = []
    for c in range(int(labels.max()) + 1):
        idx = (labels == c).nonzero().flatten().numpy()
        picked.extend(rng.permutation(idx)[:max(1, round(fraction * len(idx)))].tolist())
    mask = torch.zeros(len(labels), dtype=torch.bool)
    mask[picked] = True
    return mask.nonzero().flatten(), (~mask).nonzero().flatten()


def _digits(side: int) -> dict:
    """scikit-learn's 8x8 digits (no download); 30 % of each class is the test set."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy((d.images * (255.0 / 16.0)).round().astype("uint8"))[:, None]
    y = torch.from_numpy(d.target).long()
    test, train = _stratified(y, 0.3, (_SPLIT_DIGITS,))
    x = _square(x, side)
    return {"name": "digits", "classes": [str(i) for i in range(10)], "hflip": False, "source": "sklearn",
            "train_x": x[train], "train_y": y[train], "test_x": x[test], "test_y": y[test]}


def _folder_images(path: Path, side: int, classes=None) -> tuple:
    from PIL import Image, UnidentifiedImageError

    names = classes or sorted(p.name for p in path.iterdir() if p.is_dir())
    if not names:
        raise InputError(f"{path} has no class folders; an ImageFolder is {path}/<class>/<image>")
    to = SquareUint8(side)
    xs, ys = [], []
    for label, name in enumerate(names):
        folder = path / name
        if not folder.is_dir():
            raise InputError(f"{path} lacks the class folder {name!r} that the training split has")
        for f in sorted(folder.iterdir()):
            if f.name.startswith("."):
                continue
            try:
                with Image.open(f) as im:
                    xs.append(to(im.convert("RGB")))
            except (UnidentifiedImageError, OSError):
                raise InputError(f"{f} is not an image; remove it from the ImageFolder") from None
            ys.append(label)
    if not xs:
        raise InputError(f"{path} holds no images")
    return torch.stack(xs), torch.tensor(ys), names


def _imagefolder(root: str, side: int) -> dict:
    """``ROOT/train`` and ``ROOT/test`` (or ``ROOT/val``) ImageFolders, or one ImageFolder split 80/20."""
    root_p = Path(root)
    if not root_p.is_dir():
        raise InputError(f"imagefolder target {root} does not exist; give imagefolder:PATH with class folders")
    test_dir = next((root_p / s for s in ("test", "val") if (root_p / s).is_dir()), None)
    if (root_p / "train").is_dir() and test_dir is not None:
        x, y, names = _folder_images(root_p / "train", side)
        tx, ty, _ = _folder_images(test_dir, side, names)
    else:
        allx, ally, names = _folder_images(root_p, side)
        test, train = _stratified(ally, 0.2, (_SPLIT_FOLDER,))
        x, y, tx, ty = allx[train], ally[train], allx[test], ally[test]
    return {"name": f"imagefolder:{root}", "classes": names, "hflip": True, "source": str(root_p),
            "train_x": x, "train_y": y, "test_x": tx, "test_y": ty}


def load_target(target: str, side: int, target_dir=None) -> dict:
    """The target dataset as ``uint8 (N, 3, side, side)`` train and test tensors, labels and class names.

    Raises:
        InputError: the data is missing or unreadable (Fashion-MNIST: names the apt package).
        ConfigError: ``target`` is not one of :data:`TARGETS`.
    """
    if target == "fashion-mnist":
        return _fashion_mnist(target_dir, side)
    if target == "digits":
        return _digits(side)
    if target.startswith("imagefolder:") and len(target) > len("imagefolder:"):
        return _imagefolder(target.split(":", 1)[1], side)
    raise ConfigError(f"unknown --target {target!r}; choose fashion-mnist, digits or imagefolder:PATH")


# --------------------------------------------------------------------------------------------
# Splits: a fixed validation set carved from the training set; nested shot subsets per seed.
# --------------------------------------------------------------------------------------------

def _splits(train_y: "torch.Tensor", val_per_class: int) -> tuple:
    """(validation indices: ``val_per_class`` of each class, the pool the shots are drawn from)."""
    rng = generator(0, "experiment", _SPLIT_VAL)
    val = []
    for c in range(int(train_y.max()) + 1):
        idx = (train_y == c).nonzero().flatten().numpy()
        if len(idx) < 2:
            raise InputError(f"class {c} of the target has {len(idx)} training image(s); the study needs at "
                             "least 2 per class (one for validation)")
        val.extend(rng.permutation(idx)[:min(val_per_class, len(idx) // 2)].tolist())
    mask = torch.ones(len(train_y), dtype=torch.bool)
    mask[val] = False
    return torch.tensor(sorted(val)), mask.nonzero().flatten()


def _shots(train_y: "torch.Tensor", pool: "torch.Tensor", shots, seed: int) -> "torch.Tensor":
    """``shots`` images per class from ``pool`` (``all``: the whole pool).  The subsets of one seed are
    nested: the first ``shots`` of one seeded permutation per class, so 10 of a seed lie inside its 100."""
    if shots == "all":
        return pool
    rng = generator(seed, "experiment", _SPLIT_SHOTS)
    out = []
    ys = train_y[pool]
    for c in range(int(train_y.max()) + 1):
        idx = pool[ys == c].numpy()
        if len(idx) < shots:
            raise InputError(f"class {c} has {len(idx)} training images, fewer than {shots} shots; "
                             "ask for fewer shots")
        out.extend(rng.permutation(idx)[:shots].tolist())
    return torch.tensor(sorted(out))


def _test_subset(test_y: "torch.Tensor", limit: int) -> "torch.Tensor":
    """The test images used: all, or a fixed stratified ``limit`` of them (``quick``)."""
    if not limit or limit >= len(test_y):
        return torch.arange(len(test_y))
    return _stratified(test_y, limit / len(test_y), (_SPLIT_TEST,))[0]


# --------------------------------------------------------------------------------------------
# Pretraining, fine-tuning, linear probe.
# --------------------------------------------------------------------------------------------

def _load_all(folder: str, side: int) -> tuple:
    """Every sample of a ``fractaldb generate`` output as ``uint8 (N, 3, side, side)`` and labels."""
    from .data import shard_dataset

    images, labels = [], []
    for img, label in shard_dataset(folder, resampled=False, shuffle=0, transform=SquareUint8(side)):
        images.append(img)
        labels.append(int(label))
    return torch.stack(images), torch.tensor(labels)


def _finetune_epochs(n: int, cfg: dict, steps: dict) -> int:
    """Epochs that give about ``clamp(epochs x steps_per_epoch, min, max)`` optimizer steps."""
    bs = cfg["batch_size"]
    per_epoch = n // bs + (1 if n % bs > 1 else 0)
    want = min(max(steps["epochs"] * per_epoch, steps["min"]), steps["max"])
    return max(1, round(want / per_epoch))


def _features(model, images: "torch.Tensor", cfg: dict, rt, batch: int = 1000) -> "torch.Tensor":
    """Pooled penultimate features (``forward_head(pre_logits=True)``) of centre crops, eval mode."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = prepare_batch(images[i:i + batch], cfg, rt)
            out.append(model.forward_head(model.forward_features(x), pre_logits=True).float().cpu())
    return torch.cat(out)


def _probe(ftrain, ytrain, fevals: list, c: float) -> list:
    """Multinomial logistic regression (L-BFGS, L2 with inverse strength ``c``) on standardised
    features; accuracy (%) on each ``(features, labels)`` of ``fevals``."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    mu, sd = ftrain.mean(0), ftrain.std(0) + 1e-6
    clf = LogisticRegression(C=c, max_iter=500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(((ftrain - mu) / sd).numpy(), ytrain.numpy())
    return [100.0 * float((clf.predict(((f - mu) / sd).numpy()) == y.numpy()).mean()) for f, y in fevals]


class _Missing(Exception):
    """A run that is not in the cache, with ``cached_only``: it is left out, not computed."""


#: Largest cache file read (a study's runs.json holds a few hundred small entries).
MAX_CACHE_BYTES = 64 << 20


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _valid_run(key, value) -> bool:
    """Whether a cache entry has the shape this module writes for its kind of key."""
    if not isinstance(key, str):
        return False
    if key.endswith("|finetune|select"):
        return (isinstance(value, dict) and _number(value.get("lr")) and _number(value.get("test_seed0"))
                and isinstance(value.get("epochs"), int) and isinstance(value.get("val"), dict)
                and all(_number(v) for v in value["val"].values()))
    if "|finetune|" in key:
        return _number(value)
    if "|linear|" in key:
        return (isinstance(value, dict) and isinstance(value.get("per_seed"), list) and value["per_seed"]
                and all(_number(v) for v in value["per_seed"]) and isinstance(value.get("hyper"), dict))
    return False


def _read_cache(path: Path) -> dict:
    """``{"fingerprint", "runs"}`` of a cache file, bounded; entries of a wrong shape dropped.
    Raises OSError / ValueError when it cannot be read as one."""
    if path.stat().st_size > MAX_CACHE_BYTES:
        raise ValueError(f"larger than {MAX_CACHE_BYTES >> 20} MiB")
    doc = json.loads(path.read_text())
    if not isinstance(doc, dict) or not isinstance(doc.get("runs"), dict):
        raise ValueError("not a transfer-study cache")
    return {"fingerprint": doc.get("fingerprint"),
            "runs": {k: v for k, v in doc["runs"].items() if _valid_run(k, v)}}


class _Cache:
    """One JSON file of finished runs, so an interrupted study resumes where it stopped
    (an entry of the wrong shape is dropped, so that run is made again)."""

    def __init__(self, path: Path, fingerprint: str, cached_only: bool = False):
        self.path, self.fingerprint, self.cached_only = path, fingerprint, cached_only
        self.runs = {}
        if path.exists():
            try:
                doc = _read_cache(path)
            except (OSError, ValueError, RecursionError):
                doc = {}
            if doc.get("fingerprint") == fingerprint:
                self.runs = doc["runs"]

    def get(self, key):
        if self.cached_only and key not in self.runs:
            raise _Missing(key)
        return self.runs.get(key)

    def put(self, key, value):
        self.runs[key] = value
        write_text(self.path, json.dumps({"fingerprint": self.fingerprint, "runs": self.runs}) + "\n")


def _merge_cache(src: Path, out: Path, fingerprint: str) -> None:
    """Copy the finished runs, pretrained weights and data reports of study folder ``src`` into
    ``out``'s cache.  Both must be runs of the same per-run settings (``fingerprint``); a run
    present in both must have the same numbers."""
    import shutil

    path = src / "cache" / "runs.json"
    if not path.is_file():
        raise InputError(f"--merge {src}: no readable {path}; give the --out folder of another "
                         "'experiment transfer' run")
    try:
        doc = _read_cache(path)
    except (OSError, ValueError, RecursionError) as exc:
        raise InputError(f"--merge {src}: {path} is not a transfer-study cache ({exc}); give the --out "
                         "folder of another 'experiment transfer' run") from None
    if doc.get("fingerprint") != fingerprint:
        raise ConfigError(f"--merge {src}: its runs were made with other per-run settings, target or version "
                          f"(fingerprint {doc.get('fingerprint')!r}, here {fingerprint!r}); merge only runs of "
                          "the same study")
    mine = _Cache(out / "cache" / "runs.json", fingerprint)
    for key, value in doc["runs"].items():
        if key in mine.runs and mine.runs[key] != value:
            raise ConfigError(f"--merge {src}: run {key} has other numbers there than in {out}; "
                              "the two folders are not runs of the same code")
        mine.runs[key] = value
    write_text(mine.path, json.dumps({"fingerprint": fingerprint, "runs": mine.runs}) + "\n")
    for pattern in (f"pretrained-*-{fingerprint}.pt", f"report-*-{fingerprint}.json"):
        for f in sorted((src / "cache").glob(pattern)):
            if f.is_file() and not f.is_symlink() and not (out / "cache" / f.name).exists():
                shutil.copyfile(f, out / "cache" / f.name)
    if (src / "reports").is_dir():
        for d in sorted((src / "reports").iterdir()):
            if d.is_dir() and not d.is_symlink() and not (out / "reports" / d.name).exists():
                shutil.copytree(d, out / "reports" / d.name, symlinks=False)


def _shots_key(s) -> str:
    return str(s)


def transfer_experiment(out, quick: bool = True, target: str = "fashion-mnist", target_dir=None,
                        seeds: int | None = None, arms=None, shots=None, scaling: bool | None = None,
                        threads: int | None = None, cached_only: bool = False, on_step=None,
                        merge=()) -> dict:
    """Run the transfer study and write ``results.json``, ``results.md`` and the plots into ``out``.

    Args:
        out: output folder (also holds ``cache/``: finished runs and pretrained weights, so an
            interrupted study resumes).
        quick: the ``quick`` settings instead of ``full`` (:data:`TRANSFER_SETTINGS`).
        target: ``fashion-mnist``, ``digits`` or ``imagefolder:PATH``.
        target_dir: where the Fashion-MNIST IDX files are (default :data:`FASHION_MNIST_DIR`).
        seeds: seeds at 10 and 100 shots (default: the settings'); larger counts use ``seeds_large``.
        arms: arms to run (default: the settings'); ``scratch`` is always added.
        shots: shot counts (ints or ``"all"``; default: the settings').
        scaling: run the scaling study (default: when the settings have one).
        cached_only: train nothing: tables and plots of the runs already in ``out``'s cache (an
            interrupted or partial study); what is missing is left out.  Missing data reports
            of the arms shown are still made (generate + ``fractaldb report``, seconds each).
        threads: PyTorch CPU threads during the study (default 1: on a small, shared CPU one thread per
            process does 3-4 times more work per CPU second than two with these tiny batches).
        on_step: ``on_step(message)`` before each unit of work.
        merge: output folders of other runs of the same study (the same per-run settings, target
            and version, e.g. arms split over several processes or machines) whose finished runs,
            pretrained weights and data reports are copied into ``out``'s cache first.

    Returns:
        ``{"rows": [...], "scaling": [...], "config": {...}, "seconds": ...}``.
    """
    t0, cpu0 = time.perf_counter(), time.process_time()
    settings = copy.deepcopy(TRANSFER_SETTINGS["quick" if quick else "full"])
    if seeds is not None:
        if seeds <= 0:
            raise ConfigError(f"--seeds must be a positive integer, got {seeds}")
        settings["seeds"] = seeds
        settings["seeds_large"] = min(settings["seeds_large"], seeds)
    if arms is not None:
        arms = list(dict.fromkeys(["scratch", *arms]))
        for arm in arms:
            if arm not in ARMS:
                raise ConfigError(f"unknown arm {arm!r}; choose from {', '.join(ARMS)}")
        settings["arms"] = arms
        settings["large_arms"] = [a for a in settings["large_arms"] if a in arms]
    if shots is not None:
        for s in shots:
            if s != "all" and (not isinstance(s, int) or s <= 0):
                raise ConfigError(f"--shots takes positive integers or 'all', got {s!r}")
        settings["shots"] = list(shots)
    if scaling is False:
        settings["scaling"] = None
    settings["cached_only"] = bool(cached_only)
    if threads is not None:
        if threads <= 0:
            raise ConfigError(f"--threads must be a positive integer, got {threads}")
        settings["threads"] = threads
    presets = {}
    from . import config as fconfig
    for arm in settings["arms"]:  # resolve every preset before any work: a missing one fails now
        if ARMS[arm][0] is None:
            continue
        name, overrides, _ = ARMS[arm]
        try:
            presets[arm] = fconfig.resolve(name, overrides)
        except ConfigError as exc:
            raise ConfigError(f"arm {arm!r} needs preset {name!r}: {exc}") from None
    scale_arms = {}
    if settings["scaling"]:
        for c in settings["scaling"]["categories"]:
            name, over, _ = _fractaldb_scaled(c)
            scale_arms[f"fractaldb-c{c}"] = (fconfig.resolve(name, over), 1.0, c)
        for f in settings["scaling"]["epochs_factor"]:
            if f != 1:
                scale_arms[f"fractaldb-e{f:.2g}"] = (presets.get("fractaldb") or fconfig.resolve(*ARMS["fractaldb"][:2]),
                                                     f, 32)

    threads = torch.get_num_threads()
    torch.set_num_threads(settings["threads"])
    try:
        return _run(settings, presets, scale_arms, out, target, target_dir, on_step, t0, cpu0, merge)
    finally:
        torch.set_num_threads(threads)


def _run(settings, presets, scale_arms, out, target, target_dir, on_step, t0, cpu0, merge=()) -> dict:
    rt = setup_runtime("cpu", "off")
    common = dict(arch=settings["arch"], image_size=settings["image_size"], crop_ratio=settings["crop_ratio"],
                  workers=0, device="cpu", amp="off")
    pre_base = resolve_config("pretrain", "cpu-sanity", {**common, **settings["pretrain"], "seed": 0, "epochs": 1})
    side = load_size(pre_base)
    if on_step:
        on_step(f"load {target}")
    data = load_target(target, side, target_dir)
    ft_base = resolve_config("finetune", "cpu-sanity", {**common, **settings["finetune"], "hflip": data["hflip"],
                                                        "lr": settings["lr"][0], "epochs": 1})
    n_classes = len(data["classes"])
    val_idx, pool = _splits(data["train_y"], settings["val_per_class"])
    test_idx = _test_subset(data["test_y"], settings["test_limit"])
    tx, ty = data["test_x"][test_idx], data["test_y"][test_idx]
    vx, vy = data["train_x"][val_idx], data["train_y"][val_idx]
    for s in settings["shots"]:
        if s != "all":
            _shots(data["train_y"], pool, s, 0)  # enough images per class? fail before any work
    out = Path(out)  # created only now: a bad target or setting leaves nothing behind
    try:
        (out / "cache").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {out}: {exc.strerror or exc}; choose a writable --out") from None

    # what a single run depends on (not which arms, shots or seeds are asked for: a narrower or
    # wider rerun reuses every finished run)
    per_run = {k: v for k, v in settings.items() if k not in ("arms", "large_arms", "shots", "seeds", "seeds_large",
                                                              "scaling", "cached_only")}
    finger = hashlib.sha256(json.dumps({"settings": per_run, "target": data["name"], "n": len(data["train_y"]),
                                        "version": __version__}, sort_keys=True, default=str)
                            .encode()).hexdigest()[:16]
    for src in merge:
        _merge_cache(Path(src), out, finger)
    cache = _Cache(out / "cache" / "runs.json", finger, settings.get("cached_only", False))

    # -- pretraining, once per arm (weights cached) ------------------------------------------
    pretrained = {}

    def pretrain_arm(arm: str, dcfg: dict, factor: float = 1.0) -> dict:
        import tempfile

        from .dataset import generate

        wpath = out / "cache" / f"pretrained-{arm}-{finger}.pt"
        if wpath.exists():
            saved = torch.load(wpath, map_location="cpu", weights_only=True)
            if factor == 1.0:
                arm_report(arm, dcfg)
            return saved
        if cache.cached_only:
            raise _Missing(arm)
        with tempfile.TemporaryDirectory(prefix=f"fractaldb-{arm}-") as tmp:
            if on_step:
                on_step(f"generate {arm}")
            generate(dcfg, tmp)
            images, labels = _load_all(tmp, side)
            if factor == 1.0:
                arm_report(arm, dcfg, tmp)
        epochs = max(1, round(settings["presentations"] * factor / len(labels)))
        pre_cfg = {**pre_base, "epochs": epochs}
        if on_step:
            on_step(f"pretrain {arm} ({len(labels)} images x {epochs} epochs)")
        t = time.perf_counter()
        src = tensor_source(images, labels, pre_cfg, rt, True, name=arm)
        model = create_model(pre_cfg["arch"], src.num_classes, pre_cfg["seed"])
        res = fit(pre_cfg, rt, model, src)
        saved = {"state": model.state_dict(), "classes": src.num_classes, "images": len(labels), "epochs": epochs,
                 "presentations": epochs * len(labels), "final_top1": res["last"]["top1"],
                 "final_loss": res["last"]["loss"], "seconds": round(time.perf_counter() - t, 1)}
        torch.save(saved, wpath)
        return saved

    reports = {}

    def arm_report(arm: str, dcfg: dict, folder=None) -> None:
        """``fractaldb report`` of the arm's pretraining data (out/reports/ARM/), its key numbers kept."""
        import tempfile

        from .dataset import generate
        from .report import dataset_report

        path = out / "cache" / f"report-{arm}-{finger}.json"
        if path.exists():
            reports[arm] = json.loads(path.read_text())
            return
        if folder is None:
            with tempfile.TemporaryDirectory(prefix=f"fractaldb-{arm}-") as tmp:
                if on_step:
                    on_step(f"generate {arm} (for its report)")
                generate(dcfg, tmp)
                return arm_report(arm, dcfg, tmp)
        if on_step:
            on_step(f"report {arm}")
        r = dataset_report(folder, out / "reports" / arm, max_images=4000)
        reports[arm] = {"coverage_mean": r["coverage"]["mean"], "separability_top1": r["separability"]["top1"],
                        "separability_chance": r["separability"]["chance"], "near_empty": r["near_empty"]["count"],
                        "degenerate_variants": r["degenerate_variants"]["count"],
                        "near_duplicate_pairs": len(r["near_duplicate_classes"]["pairs"])}
        write_text(path, json.dumps(reports[arm]) + "\n")

    def make_model(arm: str, seed: int):
        if arm == "scratch":
            return create_model(settings["arch"], n_classes, seed)
        p = pretrained[arm]
        model = create_model(settings["arch"], p["classes"], 0)
        model.load_state_dict(p["state"])
        reset_head(model, n_classes, seed)
        return model

    def finetune_run(arm, train_idx, seed, lr):
        """The model fine-tuned on ``train_idx`` and its config."""
        x, y = data["train_x"][train_idx], data["train_y"][train_idx]
        cfg = {**ft_base, "seed": seed, "lr": lr}
        large = len(y) > 100 * n_classes
        cfg["epochs"] = _finetune_epochs(len(y), cfg, settings.get("steps_large", settings["steps"]) if large
                                         else settings["steps"])
        cfg["eval_every"] = cfg["epochs"]
        model = make_model(arm, seed)
        fit(cfg, rt, model, tensor_source(x, y, cfg, rt, True, "target-train", n_classes))
        return model, cfg

    def score(model, cfg, ex, ey) -> float:
        return evaluate(model, tensor_source(ex, ey, cfg, rt, False, "eval", n_classes), cfg, rt)["val_top1"]

    def evaluate_arm(arm: str, shot_list) -> dict:
        """Fine-tune and linear-probe results of ``arm`` at each shot count: {(shots, protocol): per_seed}."""
        res = {}
        feats = {}
        for s in shot_list:
            small = s != "all" and s <= 100
            n_seeds = settings["seeds"] if small else settings["seeds_large"]
            try:
                res.update(finetune_rows(arm, s, n_seeds))
            except _Missing:
                pass
            try:
                res.update(probe(arm, s, 1 if s == "all" else n_seeds, feats))
            except _Missing:
                pass
        return res

    def finetune_rows(arm, s, n_seeds) -> dict:
        # fine-tune: the learning rate chosen on the validation split with seed 0's subset; that
        # seed's chosen model is then scored on the test set, once
        key_sel = f"{arm}|{s}|finetune|select"
        sel = cache.get(key_sel)
        if sel is None:
            tried, models = {}, {}
            idx0 = _shots(data["train_y"], pool, s, 0)
            for lr in settings["lr"]:
                if on_step:
                    on_step(f"{arm} {s} shots: fine-tune lr {lr} (validation)")
                models[lr] = finetune_run(arm, idx0, 0, lr)
                tried[str(lr)] = score(*models[lr], vx, vy)
            best = max(settings["lr"], key=lambda lr: tried[str(lr)])  # first of equals
            sel = {"lr": best, "val": tried, "test_seed0": score(*models[best], tx, ty),
                   "epochs": models[best][1]["epochs"]}
            del models
            cache.put(key_sel, sel)
        per_seed = [sel["test_seed0"]]
        for seed in range(1, n_seeds):
            key = f"{arm}|{s}|finetune|{seed}|{sel['lr']}"
            r = cache.get(key)
            if r is None:
                if on_step:
                    on_step(f"{arm} {s} shots: fine-tune seed {seed}")
                r = score(*finetune_run(arm, _shots(data["train_y"], pool, s, seed), seed, sel["lr"]), tx, ty)
                cache.put(key, r)
            per_seed.append(r)
        return {(s, "finetune"): {"per_seed": per_seed, "hyper": {"lr": sel["lr"], "val_top1_by_lr": sel["val"],
                                                                  "epochs": sel["epochs"]}}}

    def probe(arm, s, n_seeds, feats) -> dict:
        """The linear probe on frozen features (for scratch: random features); C chosen on validation."""
        key = f"{arm}|{s}|linear|{n_seeds}"
        r = cache.get(key)
        if r is None:
            if on_step:
                on_step(f"{arm} {s} shots: linear probe")
            if "model" not in feats:
                model = make_model(arm, 0)
                feats["model"] = model
                feats["val"] = _features(model, vx, ft_base, rt)
                feats["test"] = _features(model, tx, ft_base, rt)
                feats["train"] = {}

            def f_of(idx):
                missing = [int(i) for i in idx if int(i) not in feats["train"]]
                if missing:
                    f = _features(feats["model"], data["train_x"][missing], ft_base, rt)
                    feats["train"].update(zip(missing, f))
                return torch.stack([feats["train"][int(i)] for i in idx])

            idx0 = _shots(data["train_y"], pool, s, 0)
            f0 = f_of(idx0)
            val_by_c = {str(c): _probe(f0, data["train_y"][idx0], [(feats["val"], vy)], c)[0]
                        for c in settings["probe_c"]}
            best_c = max(settings["probe_c"], key=lambda c: val_by_c[str(c)])
            scores = []
            for seed in range(n_seeds):
                idx = _shots(data["train_y"], pool, s, seed)
                scores.append(_probe(f_of(idx), data["train_y"][idx], [(feats["test"], ty)], best_c)[0])
            r = {"per_seed": scores, "hyper": {"C": best_c, "val_top1_by_C": val_by_c}}
            cache.put(key, r)
        return {(s, "linear"): r}

    raw = {}  # arm -> {(shots, protocol): {"per_seed", "hyper"}}
    pre_info = {}
    arms_order = settings["arms"]
    small = [s for s in settings["shots"] if s != "all" and s <= 100]
    large = [s for s in settings["shots"] if s not in small]
    # first every arm at the small shot counts (the study's main question), then the larger
    # counts for the large arms (all arms when none are named)
    stages = [(arms_order, small),
              ([a for a in arms_order if a in settings["large_arms"] or not settings["large_arms"]], large)]
    for stage_arms, shot_list in stages:
        # scratch last: the pretrained arms' runs come first (scratch's may come from another run's cache)
        for arm in sorted(stage_arms, key=lambda a: a == "scratch") if shot_list else []:
            if arm != "scratch" and arm not in pretrained:
                try:
                    pretrained[arm] = pretrain_arm(arm, presets[arm])
                except _Missing:
                    continue
                pre_info[arm] = {k: v for k, v in pretrained[arm].items() if k != "state"}
            got = evaluate_arm(arm, shot_list)
            if got:
                raw.setdefault(arm, {}).update(got)
            _write(out, _assemble(raw, settings), [], _config(settings, data, pre_info, target, len(pool),
                                                              len(val_idx), len(test_idx)), t0, cpu0)
    scaling_rows = []
    if scale_arms:
        sc_shots = settings["scaling"]["shots"]
        for name, (dcfg, factor, cats) in scale_arms.items():
            if name == "fractaldb-c32" and "fractaldb" in raw:  # the main arm is this point
                raw_sc = {k: v for k, v in raw["fractaldb"].items() if k[0] in sc_shots}
            else:
                try:
                    pretrained[name] = pretrain_arm(name, dcfg, factor)
                except _Missing:
                    continue
                pre_info[name] = {k: v for k, v in pretrained[name].items() if k != "state"}
                raw_sc = evaluate_arm(name, sc_shots)
            for (s, proto), r in raw_sc.items():
                base = raw.get("scratch", {}).get((s, proto))
                ci = paired_ci(r["per_seed"], base["per_seed"][:len(r["per_seed"])]) if base else None
                m, sd = mean_std(r["per_seed"])
                scaling_rows.append({"arm": name, "categories": cats, "epochs_factor": factor, "shots": s,
                                     "protocol": proto, "mean": m, "std": sd, "per_seed": r["per_seed"],
                                     "delta_vs_scratch": ci and ci["mean"], "ci95_low": ci and ci["ci95_low"],
                                     "ci95_high": ci and ci["ci95_high"],
                                     "pretrain_epochs": pre_info.get(name, pre_info.get("fractaldb", {})).get("epochs")})
            _write(out, _assemble(raw, settings), scaling_rows,
                   _config(settings, data, pre_info, target, len(pool), len(val_idx), len(test_idx)), t0, cpu0)
    config = _config(settings, data, pre_info, target, len(pool), len(val_idx), len(test_idx))
    config["arm_reports"] = reports
    results = _write(out, _assemble(raw, settings), scaling_rows, config, t0, cpu0, plots=True,
                     predictors=_predictors(_assemble(raw, settings), reports))
    return results


def _predictors(rows: list, reports: dict) -> list:
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


def _assemble(raw: dict, settings: dict) -> list:
    """results.json rows: one per (arm, shots, protocol), with the paired difference to scratch."""
    rows = []
    for arm, by in raw.items():
        for (s, proto), r in by.items():
            m, sd = mean_std(r["per_seed"])
            row = {"arm": arm, "shots": s, "protocol": proto, "mean": m, "std": sd, "per_seed": r["per_seed"],
                   "delta_vs_scratch": None, "ci95_low": None, "ci95_high": None, "hyper": r["hyper"]}
            base = raw.get("scratch", {}).get((s, proto))
            if arm != "scratch" and base is not None:
                n = min(len(base["per_seed"]), len(r["per_seed"]))
                ci = paired_ci(r["per_seed"][:n], base["per_seed"][:n])
                row.update(delta_vs_scratch=ci["mean"], ci95_low=ci["ci95_low"], ci95_high=ci["ci95_high"])
            rows.append(row)
    return rows


def _config(settings, data, pre_info, target, pool, val, test) -> dict:
    return {"settings": settings, "target": target, "target_source": data["source"], "classes": data["classes"],
            "pool": pool, "val": val, "test": test, "arms": {a: ARMS[a][2] for a in settings["arms"]},
            "pretrained": pre_info, "torch_threads": torch.get_num_threads(),
            "versions": {"fractaldb": __version__, "torch": str(torch.__version__)}}


def _write(out: Path, rows, scaling_rows, config, t0, cpu0, plots=False, predictors=None) -> dict:
    results = {"rows": rows, "scaling": scaling_rows, "config": config, "predictors": predictors or [],
               "seconds": round(time.perf_counter() - t0, 1), "cpu_seconds": round(time.process_time() - cpu0, 1)}
    write_text(out / "results.json", json.dumps(results, indent=1, default=str) + "\n")
    write_text(out / "results.md", transfer_table(results) + "\n")
    if plots:
        results["plots"] = _plots(out, results)
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
    mark = " ↑" if r["ci95_low"] > 0 else (" ↓" if r["ci95_high"] < 0 else "")
    return f"{r['delta_vs_scratch']:+.2f} [{r['ci95_low']:+.2f}, {r['ci95_high']:+.2f}]{mark}"


def transfer_table(results: dict) -> str:
    """Markdown: per protocol, test top-1 (%) mean ± std and the paired Δ vs scratch with its 95 % CI."""
    cfg = results["config"]
    shots = cfg["settings"]["shots"]
    lines = [f"Target {cfg['target']}: {len(cfg['classes'])} classes, shots drawn from {cfg['pool']} training "
             f"images, validation {cfg['val']} (carved from the training set), test {cfg['test']} images; "
             f"{cfg['settings']['arch']} at {cfg['settings']['image_size']} px; "
             f"{results['seconds']:.0f} s wall, {results['cpu_seconds']:.0f} s CPU (this process)", ""]
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
                             + ("" if arm == "scratch" else f"<br>Δ {_fmt_ci(r)}"))
            lines.append(f"| {arm} | " + " | ".join(cells) + " |")
        lines.append("")
    if results.get("scaling"):
        lines += ["**Scaling** (FractalDB; Δ vs scratch [95 % CI])", "",
                  "| arm | categories | epochs | shots | protocol | top-1 % | Δ vs scratch |", "|---|---|---|---|---|---|---|"]
        for r in results["scaling"]:
            lines.append(f"| {r['arm']} | {r['categories']} | {r['pretrain_epochs']} | {r['shots']} | {r['protocol']} "
                         f"| {r['mean']:.2f} ± {r['std']:.2f} | {_fmt_ci(r)} |")
        lines.append("")
    reps = cfg.get("arm_reports") or {}
    if reps:
        lines += ["**Pretraining data** (`fractaldb report` of each arm's data)", "",
                  "| arm | images × epochs | final train top-1 % | coverage | nearest-centroid top-1 % (chance) "
                  "| near-empty | degenerate variants |", "|---|---|---|---|---|---|---|"]
        for arm, v in reps.items():
            p = cfg["pretrained"].get(arm, {})
            sep = ("n/a (one image per class)" if v["separability_top1"] is None
                   else f"{v['separability_top1']:.1f} ({v['separability_chance']:.1f})")
            lines.append(f"| {arm} | {p.get('images', '?')} × {p.get('epochs', '?')} | "
                         f"{p.get('final_top1', float('nan')):.1f} | {v['coverage_mean']:.3f} | {sep} | "
                         f"{v['near_empty']} | {v['degenerate_variants']} |")
        lines.append("")
    if results.get("predictors"):
        lines += ["**Do the data's numbers predict the gain?** Spearman ρ across arms (gain = Δ vs scratch)", "",
                  "| shots | protocol | predictor | arms | ρ | p |", "|---|---|---|---|---|---|"]
        for p in results["predictors"]:
            lines.append(f"| {p['shots']} | {p['protocol']} | {p['predictor']} | {p['n']} | "
                         f"{p['spearman_rho']:+.2f} | {p['p_value']:.2f} |")
        lines.append("")
    lines.append("Δ: paired difference to scratch on the same splits (percentage points), 95 % paired-t interval; "
                 "↑/↓: the interval excludes zero.")
    return "\n".join(lines)


def _plots(out: Path, results: dict) -> list:
    """learning_curves.png (per protocol, mean with 95 % band) and scaling.png; their paths."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    from .stats import t_quantile

    shots = results["config"]["settings"]["shots"]
    xs = {s: (i if s == "all" else s) for i, s in enumerate(shots)}
    n_pool = results["config"]["pool"] // max(len(results["config"]["classes"]), 1)
    xs = {s: (n_pool if s == "all" else s) for s in shots}
    paths = []
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, proto in zip(axes, ("finetune", "linear")):
        for arm, rows in transfer_rows(results, proto).items():
            pts = sorted(((xs[s], r) for s, r in rows.items()), key=lambda p: p[0])
            x = [p[0] for p in pts]
            m = np.array([p[1]["mean"] for p in pts])
            half = np.array([t_quantile(len(p[1]["per_seed"]) - 1) * p[1]["std"] / math.sqrt(len(p[1]["per_seed"]))
                             if len(p[1]["per_seed"]) > 1 else 0.0 for p in pts])
            line, = ax.plot(x, m, marker="o", label=arm, lw=2.2 if arm in ("scratch", "fractaldb") else 1.2)
            ax.fill_between(x, m - half, m + half, color=line.get_color(), alpha=0.15)
        ax.set_xscale("log")
        ax.set_xlabel("labelled images per class (log)")
        ax.set_ylabel("test top-1 %")
        ax.set_title({"finetune": "fine-tuned", "linear": "linear probe (scratch = random features)"}[proto])
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{results['config']['target']}: mean over seeds, band = 95 % CI of the mean")
    fig.tight_layout()
    p = out / "learning_curves.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(str(p))
    if results.get("scaling"):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax, key, label in ((axes[0], "categories", "pretraining categories (3,200 images in all)"),
                               (axes[1], "pretrain_epochs", "pretraining epochs (32 categories)")):
            rows = [r for r in results["scaling"]
                    if (key == "categories" and r["epochs_factor"] == 1) or (key != "categories" and r["categories"] == 32)]
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
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(str(p))
    return paths
