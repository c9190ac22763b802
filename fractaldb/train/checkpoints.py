"""The files of a run: checkpoints (``last.pt``, ``best.pt``) and text files written whole.

Every write goes through :func:`fractaldb.storage.write_file` (an exclusive,
unpredictable temporary, then a rename; never through a link), so a reader (or a
resumed run) never sees half a file.  A checkpoint is a dict whose ``format``
is :data:`CHECKPOINT_FORMAT`; :func:`load_checkpoint` also reads a plain
``state_dict`` (e.g. published weights).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import InputError
from ..storage import write_file

CHECKPOINT_FORMAT = "fractaldb-checkpoint-v1"


def _save(obj, path: Path) -> None:
    """``torch.save`` through :func:`fractaldb.storage.write_file`: a reader never sees half a file."""
    write_file(path, lambda f: torch.save(obj, f))


def load_checkpoint(path) -> dict:
    """A checkpoint file (ours, or a plain ``state_dict``) as a dict, tensors on the CPU.

    Raises:
        InputError: missing or unreadable file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint {path} does not exist; give the last.pt or best.pt of a "
                         "'fractaldb pretrain' run")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling problem is a bad input file
        raise InputError(f"checkpoint {path} cannot be read ({type(exc).__name__}); give a .pt file "
                         "written by 'fractaldb pretrain' or a plain state_dict") from None
    if not isinstance(obj, dict):
        raise InputError(f"checkpoint {path} holds a {type(obj).__name__}, not a state_dict")
    if obj.get("format") != CHECKPOINT_FORMAT:  # a plain state_dict (e.g. the published weights)
        obj = {"model": obj.get("state_dict", obj)}
    return obj


def _last_checkpoint(run_dir, kind: str) -> dict:
    """``run_dir/last.pt`` for ``--resume``, checked to be a ``kind`` checkpoint."""
    path = Path(run_dir) / "last.pt"
    if not path.is_file():
        raise InputError(f"--resume: {path} does not exist; run 'fractaldb {kind}' into {run_dir} first, "
                         "or drop --resume")
    ckpt = load_checkpoint(path)
    if ckpt.get("kind") != kind:
        raise InputError(f"--resume: {path} is not a 'fractaldb {kind}' checkpoint")
    return ckpt


def write_text(path: Path, text: str) -> None:
    """Write ``text`` whole (:func:`fractaldb.storage.write_file`): a reader never sees half a file."""
    write_file(path, text.encode())
