"""GPU plumbing every CUDA renderer shares: the start-up check, the launch lock,
streams, and the hand-off of device images to PyTorch.

Nothing here imports ``numba.cuda`` at import time; :func:`gpu_start` does, when
a GPU renderer is built, and raises :class:`~fractaldb.errors.ConfigError`
with :data:`NO_GPU` or :data:`NO_NUMBA_CUDA` when it cannot run.
"""

from __future__ import annotations

import contextlib
import threading

from .errors import ConfigError

__all__ = ["DEVICES", "AUTO_DEVICES", "check_device", "NO_GPU", "NO_NUMBA_CUDA", "cuda_available", "gpu_start",
           "launch_lock", "LAUNCH_LOCK", "simulator", "to_torch", "as_torch"]

#: Where images are rendered; the bytes are the same on both.  The one list every command uses.
DEVICES = ("cpu", "cuda")
#: Devices of training (and of on-the-fly rendering for it): ``auto`` picks one of :data:`DEVICES`.
AUTO_DEVICES = ("auto",) + DEVICES


def check_device(device, choices=DEVICES, what: str = "device") -> str:
    """``device`` if it is one of ``choices``, else a one-line :class:`ConfigError`."""
    if device not in choices:
        raise ConfigError(f"unknown {what} {device!r}; choose {', '.join(choices[:-1])} or {choices[-1]}")
    return device

#: The error of ``--device cuda`` on a machine without a usable GPU.
NO_GPU = "--device cuda needs an NVIDIA GPU with a working CUDA driver; none was found. Use --device cpu"
#: The error of ``--device cuda`` without numba-cuda installed.
NO_NUMBA_CUDA = "--device cuda needs numba-cuda; install it with: pip install 'fractaldb[cuda]'"

#: Serialises launch sequences under numba's CUDA simulator, which is not
#: thread-safe (``generate --workers N`` runs one renderer per thread).  On a
#: GPU a renderer that launches on its own stream runs concurrently with the
#: others (:func:`launch_lock` gives it no lock there).
LAUNCH_LOCK = threading.RLock()


def _numba_cuda():
    """``numba.cuda``, or :class:`ConfigError` when it cannot be imported."""
    try:
        from numba import cuda
    except ImportError as exc:  # pragma: no cover - numba-cuda is in the test extra
        raise ConfigError(NO_NUMBA_CUDA) from exc
    return cuda


def cuda_available() -> bool:
    """Whether a GPU (or numba's CUDA simulator) can run the kernels."""
    try:
        return bool(_numba_cuda().is_available())
    except Exception:  # a broken driver counts as no GPU
        return False


def simulator() -> bool:
    """Whether numba runs CUDA kernels in its simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    from numba import config

    return bool(config.ENABLE_CUDASIM)


def gpu_start(max_batch):
    """``numba.cuda`` after the checks every CUDA renderer makes when it is built.

    Raises:
        ConfigError: without numba-cuda (:data:`NO_NUMBA_CUDA`), without a usable
            GPU (:data:`NO_GPU`), or when ``max_batch`` is not a positive integer.
    """
    cuda = _numba_cuda()
    if not cuda_available():
        raise ConfigError(NO_GPU)
    if not isinstance(max_batch, int) or isinstance(max_batch, bool) or max_batch < 1:
        raise ConfigError(f"max_batch must be a positive integer, got {max_batch!r}")
    return cuda


def launch_lock(own_stream: bool = True):
    """The lock a renderer holds around a launch sequence.

    :data:`LAUNCH_LOCK` under the simulator, or for a renderer that launches on
    the default stream (``own_stream=False``); none for a renderer on its own
    stream on a GPU.
    """
    return LAUNCH_LOCK if simulator() or not own_stream else contextlib.nullcontext()


def to_torch(images):
    """A ``torch.Tensor`` on the GPU sharing device array ``images``' memory (no copy).

    Goes through ``__cuda_array_interface__``; the whole device is
    synchronised first, so the kernels that wrote ``images`` (on a
    renderer's own stream) are finished.

    Raises:
        ConfigError: under numba's CUDA simulator, without PyTorch, or with
            a PyTorch that cannot see the GPU.
    """
    if simulator():
        raise ConfigError("to_torch needs a real GPU: numba's CUDA simulator keeps device arrays in host memory")
    try:
        import torch
    except ImportError as exc:
        raise ConfigError("to_torch needs PyTorch; install it with: pip install 'fractaldb[torch]'") from exc
    if not torch.cuda.is_available():
        raise ConfigError("to_torch needs a CUDA build of PyTorch that sees the GPU; "
                          "torch.cuda.is_available() is False")
    _numba_cuda().synchronize()
    return torch.as_tensor(images, device="cuda")


def as_torch(images):
    """Device images as a ``torch`` tensor: :func:`to_torch` on a GPU; under the
    simulator (tests only) a CPU tensor of a host copy."""
    if simulator():
        import torch

        return torch.from_numpy(images.copy_to_host())
    return to_torch(images)
