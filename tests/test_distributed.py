"""torchrun's gradient averaging (core/distributed.py): two ranks, each on its half of a batch, end with
the gradient of one process on the whole batch (DDP's contract: averaged over the global batch, not summed)."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from t2wlib.core.distributed import average_gradients, broadcast_from_rank0

BATCH = 8


def _model_and_batch(seed: int):
    """A small two-layer net and a batch (BATCH, 5) with regression targets, the same in every process."""
    g = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.GELU(), torch.nn.Linear(7, 3)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    return model, torch.randn(BATCH, 5, generator=g, dtype=torch.float64), torch.randn(BATCH, 3, generator=g,
                                                                                       dtype=torch.float64)


def _gradients(model, x, y) -> list[torch.Tensor]:
    torch.nn.functional.mse_loss(model(x), y).backward()  # the mean over this process's rows
    return [p.grad.clone() for p in model.parameters()]


def _rank(rank: int, world: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        model, x, y = _model_and_batch(seed=0)
        if rank == 1:  # rank 1 starts elsewhere: broadcast must give every rank rank 0's weights
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(1.0)
        broadcast_from_rank0([model])
        rows = torch.arange(BATCH).chunk(world)[rank]  # as the trainer slices its batch
        _gradients(model, x[rows], y[rows])
        average_gradients(model)
        torch.save([p.grad for p in model.parameters()], f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_ranks_average_to_the_one_process_gradient_of_the_whole_batch(tmp_path):
    mp.spawn(_rank, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    model, x, y = _model_and_batch(seed=0)
    expected = _gradients(model, x, y)
    for rank in (0, 1):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        for g, e in zip(got, expected):
            torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-12)
