"""Where a run executes: device, autocast dtype (AMP), and its place in a DDP (torchrun) job."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..errors import ConfigError


@dataclass
class Runtime:
    """Device, precision and place in a DDP job of this process."""

    device: "torch.device"
    amp_dtype: "torch.dtype | None"
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_runtime(device: str = "auto", amp: str = "auto") -> Runtime:
    """Pick the device, the autocast dtype, and join a torchrun job if there is one.

    Raises:
        ConfigError: ``cuda`` asked for but not available.
    """
    cuda = torch.cuda.is_available()
    if device == "cuda" and not cuda:
        raise ConfigError(f"--device cuda but PyTorch {torch.__version__} sees no CUDA device "
                          "(torch.cuda.is_available() is False); use --device cpu")
    kind = "cuda" if device == "cuda" or (device == "auto" and cuda) else "cpu"
    rank, world = 0, int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:  # started by torchrun: one process per GPU
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if kind == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
    dev = torch.device("cpu")
    if kind == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
        torch.backends.cudnn.benchmark = True
    if amp == "auto":
        amp = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if kind == "cuda" else "off"
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}[amp]
    if dtype is torch.float16 and kind == "cpu":
        raise ConfigError("--amp fp16 needs --device cuda; use --amp bf16 or off on a CPU")
    return Runtime(dev, dtype, rank, world)


def _all_reduce(t: "torch.Tensor", rt: Runtime) -> "torch.Tensor":
    if rt.world > 1:
        torch.distributed.all_reduce(t)
    return t


def _teardown(rt: Runtime) -> None:
    if rt.world > 1 and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
