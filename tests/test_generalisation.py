"""The claim the compendium exists to test, on a zoo where it must hold: heads that depend on the text by a
known map (zoo_job.linear_map_zoo). Ridge and the generators beat the text-blind answer, the mean seen head,
on unseen tasks by a stated margin (weight-space MSE to the true heads); a generator that ignored the text,
or returned the mean head, would fail."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from t2wlib.generator.ridge import fit_ridge

sys.path.insert(0, str(Path(__file__).parent))
import train_job  # noqa: E402
import zoo_job  # noqa: E402


@pytest.fixture(scope="module")
def linear(tmp_path_factory):
    root = tmp_path_factory.mktemp("linear")
    zoo = zoo_job.linear_map_zoo(root / "zoo")
    seen, unseen = zoo.tasks.ids("seen"), zoo.tasks.ids("unseen")
    v = zoo.task_text["v_c/prompt"]

    def mse(theta: torch.Tensor) -> float:  # to the unseen tasks' true heads
        return float(((theta - zoo.theta[unseen]) ** 2).mean())

    return root, zoo, v[seen], v[unseen], mse, mse(zoo.theta[seen].mean(0))


def test_ridge_recovers_the_map_far_better_than_the_mean_head(linear):
    _, zoo, v_seen, v_unseen, mse, mean_head = linear
    ridge = fit_ridge(v_seen, zoo.theta[zoo.tasks.ids("seen")])
    assert mse(ridge(v_unseen)) < 0.1 * mean_head


def test_the_profiles_generator_beats_the_mean_head_on_unseen_tasks(linear):
    """The smoke profile's generator (compact tokens, x0, text path), one epoch."""
    root, zoo, _, v_unseen, mse, mean_head = linear
    gen = train_job.tiny_generator(root / "profile", zoo)
    assert mse(gen.sample(v_unseen, steps=10)) < 0.3 * mean_head


def test_the_denoiser_alone_learns_the_text_map(linear):
    """Without the text path, the DiT itself must carry the text: the paper's design (no ridge inside)."""
    root, zoo, _, v_unseen, mse, mean_head = linear
    gen = train_job.tiny_generator(root / "dit-only", zoo, text_path=False, gen_epochs=50)
    assert mse(gen.sample(v_unseen, steps=10)) < 0.6 * mean_head
