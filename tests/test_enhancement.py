"""Enhancement: t = 0 is the identity, t > 0 denoises towards the generator, bad t is refused."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from t2wlib.experiments.enhancement import enhance, enhancement_scores
from t2wlib.zoo.model_zoo import load_zoo

sys.path.insert(0, str(Path(__file__).parent))
import train_job  # noqa: E402
import zoo_job  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("enh")
    zoo_job.build(root / "zoo")
    zoo = load_zoo(root / "zoo")
    return zoo, train_job.tiny_generator(root / "g", zoo)


def test_t0_returns_the_head_unchanged_and_t_bounds(setup):
    zoo, gen = setup
    ids = zoo.tasks.ids("unseen")[:3]
    theta, v = zoo.theta[ids], zoo.task_text["v_c/prompt"][ids]
    assert torch.equal(enhance(gen, theta, v, 0), theta)
    moved = enhance(gen, theta, v, 300, steps=5, seed=1)
    assert moved.shape == theta.shape and not torch.equal(moved, theta) and torch.isfinite(moved).all()
    assert torch.equal(moved, enhance(gen, theta, v, 300, steps=5, seed=1))  # seeded
    with pytest.raises(ValueError, match=r"t must be in \[0, 1000\]"):
        enhance(gen, theta, v, 1001)


def test_enhancement_scores_table(setup):
    zoo, gen = setup
    train, test, _ = zoo_job.synthetic_data()
    ids = zoo.tasks.ids("unseen")[:4]
    df = enhancement_scores(zoo, train, test, gen, ids, [0, 50], ddim_steps=3)
    assert len(df) == 8 and (df.epochs_trained == 2).all()  # half of the zoo's 3 stage-2 epochs, rounded
    t0 = df[df.t == 0]
    assert (t0.acc_before == t0.acc_after).all()  # t = 0 changes nothing


def test_enhancement_moves_a_noised_head_towards_the_generators_estimate_for_its_text(tmp_path):
    """A trained head plus noise (a head off the generator's manifold), enhanced at t, ends closer to the
    generator's own head for that task's text than it started, and closer the larger t (t = N: plain
    generation). Returning the input, or the input noised to t, fails this."""
    zoo = zoo_job.linear_map_zoo(tmp_path / "zoo")
    gen = train_job.tiny_generator(tmp_path / "g", zoo)
    ids = zoo.tasks.ids("unseen")
    v = zoo.task_text["v_c/prompt"][ids]
    estimate = gen.sample(v, steps=10)
    noised = zoo.theta[ids] + 0.3 * torch.randn(zoo.theta[ids].shape, generator=torch.Generator().manual_seed(0))

    def distance(theta):
        return float(((theta - estimate) ** 2).mean())

    distances = [distance(enhance(gen, noised, v, t, steps=10)) for t in (0, 100, 500, 1000)]
    assert distances[0] == distance(noised)
    assert all(later < earlier for earlier, later in zip(distances, distances[1:])), distances
    assert distances[1] < 0.5 * distances[0]
