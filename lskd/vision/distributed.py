"""The process group of a run: one process, or torchrun's DDP ranks (gloo on CPU, nccl on GPU).

As torchvision's reference scripts do, the rank, world size and local rank come from torchrun's
environment (RANK, WORLD_SIZE, LOCAL_RANK); without them the run is one process and every
collective below is a no-op.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn


class Distributed:
    """This process's place in the run (rank, world, device) and the two collectives the trainer needs."""

    def __init__(self, device: str = ""):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        want_cuda = device.startswith("cuda") or (not device and torch.cuda.is_available())
        if want_cuda:
            self.device = torch.device(f"cuda:{self.local_rank}" if self.world > 1 or not device else device)
            torch.cuda.set_device(self.device)
        else:
            self.device = torch.device(device or "cpu")
        self.enabled = self.world > 1
        if self.enabled and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            t = t.to(self.device if self.device.type == "cuda" else "cpu")
            dist.all_reduce(t)
        return t.cpu()

    def barrier(self):
        if self.enabled:
            dist.barrier()

    def wrap(self, model: nn.Module) -> nn.Module:
        """The model under DistributedDataParallel when there are several processes."""
        if not self.enabled:
            return model
        return nn.parallel.DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
