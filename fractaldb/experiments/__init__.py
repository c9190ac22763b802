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
(:func:`fractaldb.dataset.generate`); training never imports this package.

Modules: :mod:`.targets` (the target datasets, splits and shot subsets),
:mod:`.arms` (the arms, collected from each family's ``study_arms``),
:mod:`.protocol` (the settings; pretraining, fine-tuning, linear probe,
hyperparameters chosen on validation), :mod:`.cache` (the run cache and
``--merge``), :mod:`.tables` (results rows, markdown), :mod:`.plots` (figures) and
:mod:`.transfer` (the study's stages, :func:`transfer_experiment`).

Needs PyTorch, timm, scikit-learn and matplotlib (``pip install 'fractaldb[torch]'``).
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError("fractaldb.experiments needs PyTorch: pip install 'fractaldb[torch]'") from exc

from .arms import ArmTable
from .protocol import PROTOCOLS as PROTOCOLS
from .protocol import TRANSFER_SETTINGS as TRANSFER_SETTINGS
from .tables import RESULT_KEYS as RESULT_KEYS
from .tables import transfer_rows as transfer_rows
from .tables import transfer_table as transfer_table
from .targets import FASHION_MNIST_DIR as FASHION_MNIST_DIR
from .targets import TARGETS as TARGETS
from .targets import load_target as load_target
from .transfer import transfer_experiment as transfer_experiment
from .v2 import transfer_v2 as transfer_v2
from .v2_tables import v2_markdown as v2_markdown

__all__ = ["TRANSFER_SETTINGS", "ARMS", "PROTOCOLS", "TARGETS", "FASHION_MNIST_DIR", "RESULT_KEYS",
           "load_target", "transfer_experiment", "transfer_table", "transfer_rows",
           "transfer_v2", "v2_markdown"]

#: arm -> (preset, overrides, what it is): scratch and every registered family's ``study_arms``,
#: read from the registry at each use (read-only: an arm is changed in its family's study.py).
ARMS = ArmTable()
