"""torchrun support shared by the zoo build and generator training: this process's rank and the world
size (0 and 1 without torch.distributed), a barrier, rank 0's tensors to every rank, and gradient
averaging (DDP's all_reduce done explicitly; generator/trainer.py says why)."""

from __future__ import annotations

import torch
import torch.distributed as dist


def rank_world() -> tuple[int, int]:
    return (dist.get_rank(), dist.get_world_size()) if dist.is_available() and dist.is_initialized() else (0, 1)


def barrier() -> None:
    if rank_world()[1] > 1:
        dist.barrier()


def broadcast_from_rank0(modules: list[torch.nn.Module]) -> None:
    """Every rank starts from rank 0's weights."""
    if rank_world()[1] > 1:
        for module in modules:
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, src=0)


def average_gradients(module: torch.nn.Module) -> None:
    world = rank_world()[1]
    if world > 1:
        for p in module.parameters():
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= world
