"""The transfer study's targets: ``uint8 (N, 3, R, R)`` images and labels with a fixed train/test
split (Fashion-MNIST's IDX files, scikit-learn's digits, an ImageFolder; nothing downloaded), the
validation split carved from the training set, and the nested shot subsets per seed.

An ImageFolder's files are read through the one validated reader path
(:func:`fractaldb.inputs.open_image`: regular files only, so a FIFO named like an image is
refused, never waited on; sizes bounded before decoding); every target is checked to be a
study's target (:func:`check_target`: two classes or more, each with training and test
images) before any output is made."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, InputError
from ..idx import find_idx, read_idx
from ..seeds import generator
from ..train.sources import SquareUint8

#: Where Debian's dataset-fashion-mnist puts the four IDX files.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
                       "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot"]
TARGETS = ("fashion-mnist", "digits", "imagefolder:PATH")

# Ids inside the "experiment" seed purpose: one stream per use, never renumbered.
_SPLIT_DIGITS, _SPLIT_VAL, _SPLIT_SHOTS, _SPLIT_TEST, _SPLIT_FOLDER = 0, 1, 2, 3, 4


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


#: Most images an ImageFolder target may hold (each is kept as a small uint8 tensor).
MAX_TARGET_IMAGES = 2_000_000


def _folder_images(path: Path, side: int, classes=None) -> tuple:
    from ..inputs import open_image

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
            if len(xs) >= MAX_TARGET_IMAGES:
                raise InputError(f"{path} holds more than {MAX_TARGET_IMAGES} images; a transfer target is a "
                                 "small labelled set, give a subset")
            xs.append(to(open_image(f, str(f), "RGB", fix="remove it from the ImageFolder")))
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
        InputError: the data is missing or unreadable (Fashion-MNIST: names the apt package), or
            is not a target a study can learn (:func:`check_target`).
        ConfigError: ``target`` is not one of :data:`TARGETS`.
    """
    if target == "fashion-mnist":
        return check_target(_fashion_mnist(target_dir, side))
    if target == "digits":
        return check_target(_digits(side))
    if target.startswith("imagefolder:") and len(target) > len("imagefolder:"):
        return check_target(_imagefolder(target.split(":", 1)[1], side))
    raise ConfigError(f"unknown --target {target!r}; choose fashion-mnist, digits or imagefolder:PATH")


def check_target(data: dict) -> dict:
    """``data`` if a study can learn it: two classes or more, every class with two training
    images or more (one goes to validation) and a test image (else one line, before any output)."""
    name, n = data["name"], len(data["classes"])
    if n < 2:
        raise InputError(f"target {name} has {n} class; a transfer study needs at least 2 class folders")
    for split, ys, least in (("training", data["train_y"], 2), ("test", data["test_y"], 1)):
        counts = torch.bincount(ys, minlength=n) if len(ys) else torch.zeros(n, dtype=torch.long)
        short = [c for c in range(n) if int(counts[c]) < least]
        if short:
            c = short[0]
            raise InputError(f"target {name}: class {str(data['classes'][c])[:60]!r} has {int(counts[c])} {split} "
                             f"image(s), the study needs at least {least}; add images or remove the class")
    return data


# --------------------------------------------------------------------------------------------
# Splits: a fixed validation set carved from the training set; nested shot subsets per seed.
# --------------------------------------------------------------------------------------------

def validation_split(train_y: "torch.Tensor", val_per_class: int) -> tuple:
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


def fitting_shots(train_y: "torch.Tensor", pool: "torch.Tensor", shots: list, target: str = "the target") -> list:
    """The shot counts of ``shots`` that every class's pool holds (``all`` always does); a
    count larger than the smallest class is dropped with a warning (``experiment transfer
    --quick --target digits``: 100 shots, but a digit class holds about 63 training images).
    When none is left, the list is returned as it is (``shot_subset`` then says what is short)."""
    ys = train_y[pool]
    fewest = min(int((ys == c).sum()) for c in range(int(train_y.max()) + 1))
    kept = [s for s in shots if s == "all" or s <= fewest]
    dropped = [s for s in shots if s not in kept]
    if dropped and kept:
        import warnings

        warnings.warn(f"{target}: its smallest class holds {fewest} training images, fewer than "
                      f"{', '.join(map(str, dropped))} shots; running {', '.join(map(str, kept))} only", stacklevel=2)
        return kept
    return list(shots)


def shot_subset(train_y: "torch.Tensor", pool: "torch.Tensor", shots, seed: int) -> "torch.Tensor":
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


def capped_test(test_y: "torch.Tensor", limit: int) -> "torch.Tensor":
    """The test images used: all, or a fixed stratified ``limit`` of them (``quick``)."""
    if not limit or limit >= len(test_y):
        return torch.arange(len(test_y))
    return _stratified(test_y, limit / len(test_y), (_SPLIT_TEST,))[0]
