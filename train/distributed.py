"""torchrun support for the trainer: process group, rank info and the few collectives it uses.

Every helper is a no-op on a single process, so the trainer calls them unconditionally.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_kind: str) -> DistInfo:
    """Join the process group when launched by torchrun (``WORLD_SIZE > 1``) or when one exists."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), False)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    backend = "nccl" if device_kind == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), True)


def all_gather_cat(t: torch.Tensor, world_size: int) -> torch.Tensor:
    """Concatenate ``t`` from every rank along dim 0 (rank order); sizes may differ per rank."""
    if world_size <= 1:
        return t
    import torch.distributed as dist

    n = torch.tensor([t.shape[0]], device=t.device)
    sizes = [torch.zeros_like(n) for _ in range(world_size)]
    dist.all_gather(sizes, n)
    counts = [int(s.item()) for s in sizes]
    big = max(counts)
    padded = t if t.shape[0] == big else torch.cat([t, t.new_zeros((big - t.shape[0], *t.shape[1:]))])
    parts = [torch.empty_like(padded) for _ in range(world_size)]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[:c] for p, c in zip(parts, counts)])


def all_gather_objects(obj: Any, world_size: int) -> list[Any]:
    """``obj`` of every rank, in rank order (``[obj]`` on one process)."""
    if world_size <= 1:
        return [obj]
    import torch.distributed as dist

    objs: list[Any] = [None] * world_size
    dist.all_gather_object(objs, obj)
    return objs


def barrier(world_size: int) -> None:
    """Wait for every rank (nothing to wait for on one process)."""
    if world_size > 1:
        import torch.distributed as dist

        dist.barrier()


def teardown(info: DistInfo) -> None:
    """Leave the process group if :func:`setup_distributed` created it."""
    if info.owns_group:
        import torch.distributed as dist

        dist.destroy_process_group()
