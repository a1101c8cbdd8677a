"""Batched head training equals training each head alone with torch.optim.Adam."""

from __future__ import annotations

import pytest
import torch

from t2wlib.heads.adapter import CLIPAdapter, HeadSpec, task_accuracy
from t2wlib.heads.training import HeadTrainConfig, schedule, train_head_loop, train_heads

SPEC = HeadSpec(16, 3, 8)


@pytest.fixture(scope="module")
def problem():
    g = torch.Generator().manual_seed(0)
    C, N = 6, 90
    means = 2 * torch.randn(C, 16, generator=g, dtype=torch.float64)
    y = torch.randint(0, C, (N,), generator=g)
    X = means[y] + torch.randn(N, 16, generator=g, dtype=torch.float64)
    E = torch.nn.functional.normalize(torch.randn(C, 8, generator=g, dtype=torch.float64), dim=-1)
    torch.manual_seed(0)
    theta0 = CLIPAdapter(SPEC).double().flat()
    # Tasks of different k, hence different numbers of samples and schedule lengths.
    tasks = torch.tensor([[0, 1, -1, -1], [2, 3, 4, -1], [1, 4, 5, 0], [0, 5, -1, -1]])
    return theta0, X, y, E, tasks


def test_batched_training_equals_per_task_loop(problem):
    theta0, X, y, E, tasks = problem
    cfg = HeadTrainConfig(epochs=3, lr=1e-2, batch_size=8)
    seeds = [11, 12, 13, 14]
    batched, losses = train_heads(theta0, X, y, E, tasks, seeds, cfg, SPEC)
    looped = torch.stack([train_head_loop(theta0, X, y, E, [int(c) for c in row if c >= 0], s, cfg, SPEC)
                          for row, s in zip(tasks, seeds)])
    # Adam turns rounding-level differences of near-zero gradients into lr-sized steps on those
    # coordinates, so the match is to float tolerance, not bitwise; predictions agree exactly.
    torch.testing.assert_close(batched, looped, atol=1e-4, rtol=0)
    assert torch.equal(task_accuracy(batched, X, y, E, tasks, SPEC), task_accuracy(looped, X, y, E, tasks, SPEC))
    assert losses.shape == (4, 3) and (losses[:, -1] < losses[:, 0]).all()


def test_training_learns_the_tasks(problem):
    theta0, X, y, E, tasks = problem
    before = task_accuracy(theta0.expand(4, -1), X, y, E, tasks, SPEC)
    after = task_accuracy(train_heads(theta0, X, y, E, tasks, [0] * 4, HeadTrainConfig(10, 1e-2, 8), SPEC)[0],
                          X, y, E, tasks, SPEC)
    assert (after >= 0.9).all() and after.mean() > before.mean()


def test_schedule_is_a_permutation_per_epoch():
    s = schedule(10, HeadTrainConfig(epochs=2, lr=1.0, batch_size=4), seed=3)
    assert s.shape == (6, 4)
    for epoch in s.reshape(2, -1):
        assert sorted(epoch[epoch >= 0].tolist()) == list(range(10))
    assert not torch.equal(s[:3], s[3:])


def test_invalid_config():
    with pytest.raises(ValueError, match="invalid head training config"):
        HeadTrainConfig(epochs=1, lr=0.0, batch_size=8)
