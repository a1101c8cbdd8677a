"""Loss landscape: the grid's centre is the solution's loss; directions have the documented norms."""

from __future__ import annotations

import pytest
import torch

from t2wlib.experiments.landscape import directions, landscape_around, loss_grid
from t2wlib.heads.adapter import HeadSpec, head_logits, unflatten

SPEC = HeadSpec(feature_dim=12, hidden=3, embed_dim=5)


def test_directions_are_layerwise_normalised_and_scaled():
    g = torch.Generator().manual_seed(0)
    init, final = torch.randn(SPEC.num_params, generator=g), torch.randn(SPEC.num_params, generator=g)
    d1, d2 = directions(init, final, SPEC, seed=1)
    assert d1.norm().item() == pytest.approx(1.0) and d2.norm().item() == pytest.approx(1.0)
    # Each layer of a direction is proportional to that layer's norm in θ*.
    for d in (d1, d2):
        ratio = {k: float(v.norm() / unflatten(final.double(), SPEC)[k].norm()) for k, v in unflatten(d, SPEC).items()}
        assert max(ratio.values()) == pytest.approx(min(ratio.values()))


def test_grid_centre_equals_the_loss_at_the_solution():
    g = torch.Generator().manual_seed(2)
    theta = torch.randn(SPEC.num_params, generator=g)
    x, labels, emb = torch.randn(30, 12, generator=g), torch.randint(0, 4, (30,), generator=g), torch.randn(4, 5, generator=g)
    d1, d2 = directions(torch.zeros_like(theta), theta, SPEC)
    alphas = betas = torch.linspace(-4, 4, 9)  # contains 0 at index 4
    Z = loss_grid(theta, d1, d2, alphas, betas, x, labels, emb, SPEC, chunk=7)
    direct = torch.nn.functional.cross_entropy(head_logits(theta[None], x, emb, SPEC)[0], labels)
    assert Z.shape == (9, 9) and Z[4, 4].item() == pytest.approx(direct.item(), rel=1e-5)
    moved = torch.nn.functional.cross_entropy(head_logits((theta + 2 * d1 - 3 * d2).float()[None], x, emb, SPEC)[0], labels)
    assert Z[6, 1].item() == pytest.approx(moved.item(), rel=1e-4)  # α = 2, β = -3


def test_landscape_around_trains_grids_and_caches(tmp_path):
    import sys
    from pathlib import Path

    from t2wlib.core.tensor_cache import TensorCache
    from t2wlib.heads.training import HeadTrainConfig

    sys.path.insert(0, str(Path(__file__).parent))
    import zoo_job

    train, test, emb = zoo_job.synthetic_data()
    spec, classes = HeadSpec(16, 3, 8), torch.tensor([0, 2, 5])
    cfg, grid = HeadTrainConfig(epochs=3, lr=1e-2, batch_size=8), torch.linspace(-2, 2, 5)
    theta0 = torch.zeros(spec.num_params).normal_(0, 0.1, generator=torch.Generator().manual_seed(0))
    cache = TensorCache(tmp_path)
    Z, stats = landscape_around(theta0, classes, train, test, emb["prompt"], spec, cfg, grid, grid, 0, cache, {"t": 1})
    again, _ = landscape_around(theta0, classes, train, test, emb["prompt"], spec, cfg, grid, grid, 0, cache, {"t": 1})
    assert Z.shape == (5, 5) and torch.equal(Z, again) and len(list(tmp_path.rglob("*.safetensors"))) == 1
    assert stats["loss_at_solution"] == pytest.approx(float(Z[2, 2]), rel=1e-5)  # the grid's centre is θ*
    assert 0 < stats["frac_below_2x_solution"] <= 1
    assert stats["test_accuracy"] > 0.5 and stats["trajectory_length"] > 0


def test_a_trained_head_sits_at_the_grids_minimum_and_the_loss_rises_back_towards_its_start():
    """App. C's premise: θ* is a minimum of the landscape drawn around it. On a 17 x 17 grid over
    [-4, 4]², the lowest cell is the centre, and the loss rises away from it along δ1 (back towards
    θ_init for α < 0, past θ* for α > 0) and along the random δ2."""
    import sys
    from pathlib import Path

    from t2wlib.heads.training import HeadTrainConfig

    sys.path.insert(0, str(Path(__file__).parent))
    import zoo_job

    train, test, emb = zoo_job.synthetic_data()
    spec, classes, grid = HeadSpec(16, 3, 8), torch.tensor([0, 2, 5]), torch.linspace(-4, 4, 17)
    theta0 = torch.zeros(spec.num_params).normal_(0, 0.1, generator=torch.Generator().manual_seed(0))
    Z, _ = landscape_around(theta0, classes, train, test, emb["prompt"], spec, HeadTrainConfig(epochs=3, lr=1e-2, batch_size=8),
                            grid, grid, 0)
    assert divmod(int(Z.argmin()), 17) == (8, 8)
    for line in (Z[:, 8], Z[8, :]):  # along δ1, along δ2: rising for two cells on each side of θ*
        assert line[8] < line[7] < line[6] and line[8] < line[9] < line[10], line
