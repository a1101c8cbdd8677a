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
