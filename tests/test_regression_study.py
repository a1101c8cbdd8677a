"""The multi-solution zoo, the solution-space metrics and the diffusion-vs-regression study."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
import torch

from t2wlib.experiments import diffusion_vs_regression, solution_space
from t2wlib.heads.adapter import permute_hidden
from t2wlib.heads.training import train_heads
from t2wlib.methods.baselines import average_nearest_heads, noisy_heads
from t2wlib.pipeline.config import zoo_config
from t2wlib.pipeline.profiles import get_profile, solution_zoo_profile
from t2wlib.zoo.model_zoo import load_zoo

sys.path.insert(0, str(Path(__file__).parent))
import zoo_job  # noqa: E402

TASKS, STARTS = 20, 4


@pytest.fixture(scope="module")
def zoos(tmp_path_factory):
    root = tmp_path_factory.mktemp("solutions")
    zoo_job.build(root / "multi", num_tasks=TASKS, starts=STARTS)
    zoo_job.build(root / "single", num_tasks=TASKS)
    return load_zoo(root / "multi"), load_zoo(root / "single")


def test_start_zero_rows_are_the_single_solution_zoo(zoos):
    multi, single = zoos
    assert len(multi.tasks) == TASKS * STARTS and multi.starts.shape == (STARTS, multi.spec.num_params)
    assert multi.start.tolist() == [m for m in range(STARTS) for _ in range(TASKS)]
    # The same fine-tuning; shards batch other heads together, so equal up to float rounding.
    torch.testing.assert_close(multi.theta[:TASKS], single.theta, rtol=0, atol=1e-6)
    torch.testing.assert_close(multi.starts[0], single.stage1, rtol=0, atol=0)
    assert multi.tasks.classes == single.tasks.classes * STARTS and multi.tasks.split == single.tasks.split * STARTS
    view = multi.select(list(range(TASKS)), "single")
    assert view.name.endswith("/single") and view.table().id.tolist() == list(range(TASKS))


def test_a_single_start_zoo_keeps_its_folder_identity():
    assert "starts" not in zoo_job.config().to_json()
    assert zoo_job.config(starts=3).to_json()["starts"] == 3
    assert zoo_config(solution_zoo_profile(get_profile("smoke", hidden=2))).starts == get_profile("smoke").solution_starts


def test_the_heads_of_one_task_differ_far_beyond_fine_tuning_noise(zoos):
    multi, _ = zoos
    assert len({tuple(s.tolist()) for s in multi.starts}) == STARTS  # distinct θ0*'s
    train, _, emb = zoo_job.synthetic_data()
    task = list(multi.tasks.classes[0])
    # Fine-tuning noise: the same task from the same θ0* with another minibatch order.
    again, _ = train_heads(multi.stage1, train.X, train.y, emb["prompt"], torch.tensor([task]), [12345],
                           multi.config.stage2, multi.spec)
    noise = float(solution_space.rms_distance(again, multi.theta[:1]))
    heads = multi.theta[[m * TASKS for m in range(STARTS)]]
    aligned = solution_space.align_to(heads, multi.stage1, multi.spec)
    across = solution_space.rms_distance(aligned, aligned)[torch.triu_indices(STARTS, STARTS, 1).unbind()]
    assert across.min() > 5 * noise


def test_each_zoo_head_lies_in_the_basin_of_its_own_start(zoos):
    multi, _ = zoos
    assert torch.equal(solution_space.basin(multi.theta, multi.starts), multi.start)


def head_spec():
    from t2wlib.heads.adapter import HeadSpec

    train, _, emb = zoo_job.synthetic_data()
    return HeadSpec(train.X.shape[1], zoo_job.config().hidden, emb["prompt"].shape[1])


def test_alignment_maps_a_permuted_head_back():
    spec = head_spec()
    g = torch.Generator().manual_seed(0)
    theta = torch.randn(5, spec.num_params, generator=g)
    perms = torch.stack([torch.randperm(spec.hidden, generator=g) for _ in range(5)])
    permuted = permute_hidden(theta, perms, spec)
    assert not torch.equal(permuted, theta)
    for original, p in zip(theta, permuted):
        torch.testing.assert_close(solution_space.align_to(p.unsqueeze(0), original, spec)[0], original)


def test_iou_of_misprediction_sets():
    a = torch.tensor([True, False, True, False])
    assert solution_space.iou(a, a) == 1.0
    assert solution_space.iou(a, ~a) == 0.0
    assert solution_space.iou(torch.zeros(4, dtype=torch.bool), torch.zeros(4, dtype=torch.bool)) == 1.0
    assert solution_space.iou(a, torch.tensor([True, False, False, False])) == 0.5


def test_noise_and_average_baselines():
    g = torch.Generator().manual_seed(1)
    theta, sigma = torch.randn(3, 50, generator=g), torch.full((50,), 0.2)
    draws = noisy_heads(theta, sigma, 4, seed=5)
    assert draws.shape == (3, 4, 50) and torch.equal(draws, noisy_heads(theta, sigma, 4, seed=5))
    assert 0.15 < float((draws - theta.unsqueeze(1)).std()) < 0.25
    v_seen = torch.eye(4)
    avg = average_nearest_heads(torch.tensor([[1.0, 0.9, 0.0, 0.0]]), v_seen, torch.arange(4.0).unsqueeze(1), 2)
    assert avg.tolist() == [[0.5]]  # the heads of texts 0 and 1
    with pytest.raises(ValueError, match="allowed 1 to 4"):
        average_nearest_heads(v_seen, v_seen, v_seen, 5)


def study_profile():
    return solution_zoo_profile(dataclasses.replace(get_profile("smoke"), solution_steps=8, gen_batch_size=8,
                                                    block_size=32, solution_samples=3))


def test_memorisation_baselines_read_seen_heads_only(zoos):
    multi, _ = zoos
    views = diffusion_vs_regression.views(multi)
    unseen = [i for i, s in enumerate(multi.tasks.split) if s == "unseen"]
    spoiled = multi.theta.clone()
    spoiled[unseen] = float("nan")  # every row of an unseen task, of every start
    spoiled = multi.with_heads(spoiled, "spoiled")
    both = {diffusion_vs_regression.SINGLE: spoiled.select(list(range(TASKS)), "single"), diffusion_vs_regression.MULTI: spoiled}
    heads = diffusion_vs_regression.method_heads(both, {}, {}, study_profile())
    trained = {key for key in heads if key[1] == diffusion_vs_regression.TRAINED}
    assert all(torch.isfinite(h).all() for key, h in heads.items() if key not in trained)
    assert all(torch.isnan(heads[key]).all() for key in trained)
    assert views[diffusion_vs_regression.SINGLE].rows == tuple(range(TASKS))


def test_the_study_runs_end_to_end(zoos, tmp_path):
    multi, _ = zoos
    _, test, _ = zoo_job.synthetic_data()
    profile = study_profile()
    views = diffusion_vs_regression.views(multi)
    gens, nets, seconds = diffusion_vs_regression.train_models(tmp_path, profile, views)
    assert set(seconds) == {f"{diffusion_vs_regression.ZOO_LABEL[z]} / {m}" for z, m in diffusion_vs_regression.GENERATORS} | {
        f"{diffusion_vs_regression.ZOO_LABEL[z]} / {m}" for z, m in diffusion_vs_regression.HYPERNETS.values()}
    heads = diffusion_vs_regression.method_heads(views, gens, nets, profile)
    ridges = {(zoo, m.name + suffix) for m in diffusion_vs_regression.closed_regressions()
              for zoo, suffix in diffusion_vs_regression.REGRESSION_VIEWS.values()}
    assert ridges and ridges <= set(heads)
    per_sample, summary = diffusion_vs_regression.score(views, heads, test)
    rows = summary.set_index(["zoo", "method"])
    assert rows.loc[("single-solution", diffusion_vs_regression.TRAINED), "novelty"] == 1.0
    assert rows.loc[("multi-solution", diffusion_vs_regression.TRAINED), "basins_hit"] == STARTS  # one head from every start
    assert rows.loc[("single-solution", diffusion_vs_regression.TRAINED), "basins_hit"] == 1
    assert rows.loc[("multi-solution", "T2W"), "samples"] == 3 and 0 <= rows.loc[("multi-solution", "T2W"), "pairwise_iou"] <= 1
    assert per_sample.accuracy.between(0, 1).all()
    assert "on the single-solution zoo T2W" in diffusion_vs_regression.answer(summary)
