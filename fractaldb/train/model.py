"""Models: timm architectures, created and given new heads from seeded streams, frozen for a linear probe."""

from __future__ import annotations

import torch

from ..errors import ConfigError, InputError
from ..seeds import int_seed
from .config import _HEAD, _INIT


def check_arch(arch: str) -> None:
    """Raise :class:`ConfigError` unless ``arch`` is a timm model name (with a suggestion)."""
    import timm

    if not arch or not timm.is_model(arch):
        import difflib

        close = difflib.get_close_matches(arch, timm.list_models(), n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ConfigError(f"unknown architecture {arch!r}; {hint}list the names with "
                          "python -c \"import timm; print(timm.list_models('resnet*'))\"")


def create_model(arch: str, num_classes: int, seed: int, **kwargs) -> "torch.nn.Module":
    """``timm.create_model(arch, pretrained=False, num_classes, in_chans=3)``, initialised
    from the stream (seed, ``train``, init) without touching the global RNG.

    Raises:
        ConfigError: ``arch`` is not a timm model name.
    """
    import timm

    check_arch(arch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int_seed(seed, "train", _INIT))
        return timm.create_model(arch, pretrained=False, num_classes=num_classes, in_chans=3, **kwargs)


def reset_head(model, num_classes: int, seed: int) -> None:
    """A new classifier for ``num_classes`` (``model.reset_classifier``), seeded."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int_seed(seed, "train", _HEAD))
        model.reset_classifier(num_classes)


def freeze_backbone(model) -> None:
    """Train only the classifier (a linear probe): every other parameter stops taking gradients.

    BatchNorm layers stay in training mode, so their running statistics still adapt.
    """
    head = {id(p) for p in model.get_classifier().parameters()}
    for p in model.parameters():
        p.requires_grad_(id(p) in head)


def _head_classes(state_dict: dict) -> int:
    """Class count of a plain state_dict: rows of its last 2-D weight (the classifier)."""
    weights = [v for k, v in state_dict.items() if k.endswith("weight") and getattr(v, "ndim", 0) == 2]
    if not weights:
        raise InputError("the checkpoint has no classifier weight; is it a classification model?")
    return int(weights[-1].shape[0])
