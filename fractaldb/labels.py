"""Label kinds: what a sample says besides its image and its class.

Every sample of a shard has a ``<key>.cls`` member (its label, decimal text) and a
``<key>.json`` member (what made it).  A family's **label kind**
(``Family.label_kind``) says what more its samples carry; a dataset takes the
richest kind among its families (:func:`dataset_kind`), and every generic stage
asks that object instead of branching on families:

``class`` (:data:`CLASS`)
    nothing more: ``.cls`` is the training target.
``multi-hot`` (:data:`MULTI_HOT`)
    a ``<key>.labels.json`` member: the sorted labels of every class the image shows
    (a JSON list; single-label samples of a mixed dataset list their one label).
    Loaders yield multi-hot ``float32`` vectors.  ``.cls`` stays the primary label.
``mask`` (:data:`MASK`)
    a ``<key>.mask.png`` member beside the image: a lossless 8-bit gray PNG of the
    same size whose pixels are ``label + 1`` of the class drawn there and 0 for
    background (255 is never written: segmentation tools use it as "ignore"), so a
    mask dataset holds at most :data:`MAX_MASK_LABELS` labels.  Loaders yield
    ``(image, mask)``; ``export`` writes ``images/`` and ``masks/`` trees.  Classes of
    families without masks cannot share a dataset with it.

webdataset, wids and Hugging Face ``datasets`` decode a member by its last
extension, so ``labels.json`` arrives as a list and ``mask.png`` as an image.
"""

from __future__ import annotations

import json

import numpy as np

from .errors import ConfigError, InputError

__all__ = ["LabelKind", "CLASS", "MULTI_HOT", "MASK", "KINDS", "dataset_kind", "MAX_MASK_LABELS", "LABELS_EXT",
           "MASK_EXT"]

#: The multi-label member's extension.
LABELS_EXT = "labels.json"
#: The mask member's extension.
MASK_EXT = "mask.png"
#: Most labels a mask dataset holds: mask values are label + 1 in 1..254 (0 background, 255 "ignore").
MAX_MASK_LABELS = 254


class LabelKind:
    """What samples of one kind carry besides ``.cls`` (the base class is ``class``: nothing)."""

    #: The name a family gives as ``label_kind``.
    name = "class"
    #: Richer kinds win when a dataset mixes families (:func:`dataset_kind`).
    rank = 0
    #: The extension of the extra member of every sample, or None.
    member: str | None = None
    #: The Hugging Face task category the card declares.
    task = "image-classification"

    def members(self, key: str, label: int, labels, mask) -> list:
        """The extra ``(member name, bytes)`` of one sample, written after ``.json`` and
        before the image.  ``labels``: every label the image shows (dataset labels, sorted)
        or None; ``mask``: ``(H, W)`` uint8 of dataset labels + 1, or None."""
        return []

    def target(self, label: int, labels, mask, num_classes: int):
        """The training target of a sample rendered on the fly (what :meth:`decode` gives for a stored one)."""
        return label

    def decode(self, sample: dict, label: int, num_classes: int, where: str):
        """The training target of a webdataset sample dict (raw member bytes)."""
        return label

    def card_features(self, class_label: dict) -> list:
        """Extra ``dataset_info.features`` entries of the card."""
        return []

    def card_note(self) -> str:
        """A sentence for the card's *Contents* section ('' for none)."""
        return ""

    def check(self, n_classes: int) -> None:
        """Refuse a dataset this kind cannot hold (:class:`ConfigError`)."""


class _MultiHot(LabelKind):
    name = "multi-hot"
    rank = 1
    member = LABELS_EXT

    def members(self, key, label, labels, mask):
        labels = [label] if labels is None else labels
        return [(f"{key}.{LABELS_EXT}", json.dumps(labels, separators=(",", ":")).encode("ascii"))]

    def target(self, label, labels, mask, num_classes):
        return _multi_hot([label] if labels is None else labels, num_classes)

    def decode(self, sample, label, num_classes, where):
        raw = sample.get(LABELS_EXT)
        try:
            labels = [label] if raw is None else json.loads(raw)
            if not (isinstance(labels, list) and all(isinstance(v, int) and 0 <= v < num_classes for v in labels)):
                raise ValueError(labels)
        except (ValueError, TypeError, RecursionError):
            raise InputError(f"{where}: {LABELS_EXT} is not a list of labels 0..{num_classes - 1}; the shard is "
                             "damaged, regenerate it") from None
        return _multi_hot(labels, num_classes)

    def card_features(self, class_label):
        return [{"name": LABELS_EXT, "sequence": class_label}]

    def card_note(self):
        return (f"Every sample also has a `{LABELS_EXT}` member: all the classes it shows (multi-hot "
                "training); `cls` is its primary label.")


def _multi_hot(labels, num_classes: int) -> np.ndarray:
    out = np.zeros(num_classes, dtype=np.float32)
    out[list(labels)] = 1.0
    return out


class _Mask(LabelKind):
    name = "mask"
    rank = 2
    member = MASK_EXT
    task = "image-segmentation"

    def members(self, key, label, labels, mask):
        from .encode import encode_png

        if mask is None:
            raise ValueError(f"sample {key}: a mask dataset's family rendered no mask")
        return [(f"{key}.{MASK_EXT}", encode_png(np.ascontiguousarray(mask, dtype=np.uint8)[:, :, None]))]

    def target(self, label, labels, mask, num_classes):
        return np.ascontiguousarray(mask, dtype=np.uint8)

    def decode(self, sample, label, num_classes, where):
        from .inputs import open_image

        raw = sample.get(MASK_EXT)
        if raw is None:
            raise InputError(f"{where} has no {MASK_EXT} member; the shard is damaged, regenerate it")
        bad = InputError(f"{where}: {MASK_EXT} is not an 8-bit gray PNG; the shard is damaged, regenerate it")
        try:  # the one validated reader path: its size bounded before it is decoded
            im = open_image(raw if isinstance(raw, (bytes, bytearray)) else b"", f"{where}: {MASK_EXT}")
        except InputError:
            raise bad from None
        if im.mode != "L":
            raise bad
        mask = np.array(im)
        if mask.size and int(mask.max()) > num_classes:
            raise InputError(f"{where}: {MASK_EXT} holds value {int(mask.max())}, above the dataset's "
                             f"{num_classes} labels + 1; the shard is damaged, regenerate it")
        return mask

    def card_features(self, class_label):
        return [{"name": MASK_EXT, "dtype": "image"}]

    def card_note(self):
        return (f"Every sample also has a `{MASK_EXT}` member: a segmentation mask of the image's size, 8-bit "
                "gray, pixel = label + 1 of the class drawn there, 0 = background (255 is never used: "
                "segmentation tools read it as *ignore*). `cls` is the image's primary label.")

    def check(self, n_classes):
        if n_classes > MAX_MASK_LABELS:
            raise ConfigError(f"a segmentation (mask) dataset holds at most {MAX_MASK_LABELS} classes "
                              f"(mask values label + 1 in 1..254), this one has {n_classes}; use fewer classes")


CLASS = LabelKind()
MULTI_HOT = _MultiHot()
MASK = _Mask()
#: Every label kind by name.
KINDS = {k.name: k for k in (CLASS, MULTI_HOT, MASK)}


def dataset_kind(kinds) -> LabelKind:
    """The label kind of a dataset whose families have label kinds ``kinds`` (names):
    the richest one.  A mask family mixes only with mask families (a class image has no
    mask to give).

    Raises:
        ConfigError: a mask family beside a family of another kind.
    """
    found = [KINDS[k] for k in kinds]
    if not found:
        return CLASS
    best = max(found, key=lambda k: k.rank)
    if best is MASK and any(k is not MASK for k in found):
        raise ConfigError("a dataset with segmentation masks cannot mix in families without masks "
                          f"(label kinds: {', '.join(sorted({k.name for k in found}))}); generate them apart")
    return best
