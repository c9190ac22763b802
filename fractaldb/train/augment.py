"""The ViT-era training recipe's pieces, from timm: RandAugment, Mixup/CutMix,
random erasing, label smoothing, AdamW, multi-label loss.

timm draws these from Python's and NumPy's global generators.  Randomness is an
input here (see :mod:`fractaldb.train`), so every call runs with those global
states swapped for ones seeded from the run's own stream (one seed per batch,
drawn from the epoch's generator) and restored afterwards: a run is repeatable
and resumable, and nothing outside is disturbed.
"""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch
import torch.nn.functional as nnf

__all__ = ["seeded_globals", "BatchAugment", "make_optimizer", "loss_and_hits", "multi_hot"]


@contextlib.contextmanager
def seeded_globals(seed: int):
    """Python's ``random`` and NumPy's global generator seeded with ``seed`` inside, restored after."""
    py, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(np_state)


class BatchAugment:
    """RandAugment on uint8 images, then (after normalisation) Mixup/CutMix and random erasing.

    Built from the run config: ``randaugment`` (a timm config string such as
    ``rand-m9-mstd0.5-inc1``, or empty), ``mixup`` / ``cutmix`` (alphas, 0 = off),
    ``label_smoothing``, ``random_erasing`` (probability, 0 = off).
    """

    def __init__(self, cfg: dict, num_classes: int):
        self.randaugment = None
        if cfg.get("randaugment"):
            from timm.data.auto_augment import rand_augment_transform

            mean = tuple(round(255 * m) for m in cfg["mean"])
            self.randaugment = rand_augment_transform(cfg["randaugment"], {"img_mean": mean})
        self.mixup = None
        if cfg.get("mixup", 0) > 0 or cfg.get("cutmix", 0) > 0:
            from timm.data import Mixup

            self.mixup = Mixup(mixup_alpha=cfg["mixup"], cutmix_alpha=cfg["cutmix"],
                               label_smoothing=cfg["label_smoothing"], num_classes=num_classes)
        self.erasing = None
        if cfg.get("random_erasing", 0) > 0:
            from timm.data.random_erasing import RandomErasing

            self.erasing = RandomErasing(probability=cfg["random_erasing"], mode="pixel", device="cpu")

    @property
    def active(self) -> bool:
        return any(x is not None for x in (self.randaugment, self.mixup, self.erasing))

    def images(self, x: torch.Tensor, seed: int) -> torch.Tensor:
        """RandAugment each uint8 ``(B, 3, H, W)`` image (PIL round trip, as timm's transform wants)."""
        if self.randaugment is None:
            return x
        from PIL import Image

        out = []
        with seeded_globals(seed):
            for img in x.cpu():
                pil = Image.fromarray(img.permute(1, 2, 0).numpy())
                out.append(torch.from_numpy(np.asarray(self.randaugment(pil)).copy()).permute(2, 0, 1))
        return torch.stack(out).to(x.device)

    def batch(self, x: torch.Tensor, y: torch.Tensor, seed: int) -> tuple:
        """Mixup/CutMix (soft targets) and random erasing of a normalised batch."""
        with seeded_globals(seed):
            if self.mixup is not None and len(y) % 2 == 0:
                x, y = self.mixup(x, y)
            if self.erasing is not None:
                self.erasing.device = x.device
                x = self.erasing(x)
        return x, y


def make_optimizer(params, cfg: dict):
    """SGD (momentum, weight decay) or AdamW, by ``cfg['optimizer']``."""
    if cfg.get("optimizer", "sgd") == "adamw":
        return torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    return torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"])


def multi_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``float (B, C)`` targets from class indices (already multi-hot targets pass through)."""
    if labels.dim() == 2:
        return labels.float()
    return nnf.one_hot(labels, num_classes).float()


def loss_and_hits(logits: torch.Tensor, y: torch.Tensor, cfg: dict) -> tuple:
    """The recipe's loss and the number of top-1 hits.

    ``y`` is class indices (cross-entropy with ``label_smoothing``), soft targets
    from Mixup (soft-target cross-entropy), or, with ``loss: bce``, multi-hot
    targets (binary cross-entropy per class with ``pos_weight`` = classes /
    positives of the sample, as Anderson & Farrell weigh multi-fractal images);
    a hit is the top logit on a positive (or the argmax) class.
    """
    if cfg.get("loss", "ce") == "bce":
        target = multi_hot(y, logits.shape[1])
        pos = target.sum(1, keepdim=True).clamp(min=1)
        weight = torch.where(target > 0, logits.shape[1] / pos, torch.ones_like(target))
        loss = nnf.binary_cross_entropy_with_logits(logits.float(), target, weight=weight)
        hits = target.gather(1, logits.argmax(1, keepdim=True)).gt(0).sum()
        return loss, hits
    if y.dim() == 2:  # soft targets (Mixup/CutMix, already smoothed)
        loss = torch.sum(-y * nnf.log_softmax(logits.float(), dim=-1), dim=-1).mean()
        return loss, (logits.argmax(1) == y.argmax(1)).sum()
    loss = nnf.cross_entropy(logits.float(), y, label_smoothing=cfg.get("label_smoothing", 0.0))
    return loss, (logits.argmax(1) == y).sum()
