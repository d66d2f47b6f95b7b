"""Data-parallel training under torchrun or accelerate launch (DDP), or one process."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @staticmethod
    def from_env_rank() -> int:
        """This process's rank as torchrun announces it, before the group is joined."""
        return int(os.environ.get("RANK", "0"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def device(self, requested: str) -> str:
        """Each process takes its own GPU; CPU processes share the CPU."""
        if self.active and requested in ("auto", "cuda") and torch.cuda.is_available():
            return f"cuda:{self.local_rank}"
        return requested

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def agree(self, flag: bool) -> bool:
        """True on every rank when rank 0 says so (stop, cancel)."""
        if not self.active:
            return flag
        value = torch.tensor([1.0 if flag else 0.0])
        if dist.get_backend() == "nccl":
            value = value.cuda()
        dist.broadcast(value, 0)
        return bool(value.item())

    def share(self, value: float) -> float:
        """Rank 0's value on every rank."""
        if not self.active:
            return value
        tensor = torch.tensor([value], dtype=torch.float64)
        if dist.get_backend() == "nccl":
            tensor = tensor.cuda()
        dist.broadcast(tensor, 0)
        return float(tensor.item())

    def mean(self, value: float) -> float:
        if not self.active:
            return value
        tensor = torch.tensor([value])
        if dist.get_backend() == "nccl":
            tensor = tensor.cuda()
        dist.all_reduce(tensor)
        return float(tensor.item()) / self.world


def init_distributed() -> DistContext:
    """Join the process group that torchrun/accelerate describe in the environment."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    ctx = DistContext(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(ctx.local_rank)
        dist.init_process_group(backend)
    return ctx
