"""Evaluation on a tiny zoo: the trained-head baseline reproduces the zoo's stored accuracies,
retrieval returns the nearest task, metrics match direct computations, tables have their columns."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from t2wlib.experiments import figure3, novelty, scoring, table1
from t2wlib.generator import ridge
from t2wlib.generator.from_zoo import train_generator
from t2wlib.generator.tokenizer import WeightTokenizer
from t2wlib.generator.trainer import TrainConfig
from t2wlib.heads.adapter import head_logits, permute_hidden, task_loss
from t2wlib.methods import baselines, registry
from t2wlib.pipeline.config import generator_config
from t2wlib.pipeline.profiles import get_profile
from t2wlib.zoo.model_zoo import load_zoo

sys.path.insert(0, str(Path(__file__).parent))
import zoo_job  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    zoo_job.build(root / "zoo")
    _, test, _ = zoo_job.synthetic_data()
    return root, load_zoo(root / "zoo"), test


def test_trained_heads_reproduce_the_zoo_accuracies_exactly(setup):
    _, zoo, test = setup
    ids = list(range(len(zoo.tasks)))
    scores = scoring.head_scores(zoo, zoo.theta[ids], test, ids)
    assert torch.equal(torch.tensor(scores.accuracy.to_numpy()), zoo.test_accuracy[ids])
    assert (scores.mse == 0).all() and list(scores.k) == [len(c) for c in zoo.tasks.classes]


def test_accuracy_and_mse_match_a_direct_computation(setup):
    _, zoo, test = setup
    ids = zoo.tasks.ids("unseen")[:4]
    theta = zoo.theta[ids] + 0.05 * torch.randn(len(ids), zoo.spec.num_params, generator=torch.Generator().manual_seed(0))
    scores = scoring.head_scores(zoo, theta, test, ids)
    emb = zoo.task_text["class_emb/prompt"]
    for row, th in zip(scores.itertuples(), theta):
        classes = torch.tensor(zoo.tasks.classes[row.task])
        keep = torch.isin(test.y, classes)
        logits = head_logits(th[None], test.X[keep], emb[classes], zoo.spec)[0]
        direct = (classes[logits.argmax(1)] == test.y[keep]).float().mean()
        assert row.accuracy == pytest.approx(float(direct), abs=1e-6)
        assert row.mse == pytest.approx(float(((th - zoo.theta[row.task]) ** 2).mean()), rel=1e-5)


def test_retrieval_returns_the_nearest_task():
    g = torch.Generator().manual_seed(1)
    keys, theta = torch.randn(20, 8, generator=g), torch.randn(20, 5, generator=g)
    query = keys[[3, 11]] * 2.5 + 0.01 * torch.randn(2, 8, generator=g)  # cosine ignores the scale
    heads, idx = baselines.retrieve_heads(query, keys, theta)
    assert idx.tolist() == [3, 11] and torch.equal(heads, theta[[3, 11]])
    brute = torch.stack([torch.stack([torch.nn.functional.cosine_similarity(q, k, dim=0) for k in keys]) for q in query])
    assert torch.equal(baselines.nearest_tasks(query, keys), brute.argmax(1))


def test_novelty_of_a_copy_and_of_the_trained_heads(setup):
    _, zoo, test = setup
    ids = zoo.tasks.ids("unseen")[:5]
    seen = zoo.tasks.ids("seen")
    copy = zoo.theta[seen[:5]]  # a "generator" that returns seen heads
    df = novelty.novelty(zoo, copy, test, ids)
    assert df.nn_cos_generated.to_numpy() == pytest.approx(1.0) and (df.agree_nearest == 1).all()
    # Scored against itself the trained head agrees fully; permuting hidden units changes nothing.
    g = torch.Generator().manual_seed(0)
    perm = torch.stack([torch.randperm(zoo.spec.hidden, generator=g) for _ in ids])
    same = novelty.novelty(zoo, permute_hidden(zoo.theta[ids], perm, zoo.spec), test, ids)
    assert (same.agree_trained == 1).all()
    assert list(df.columns) == ["task", "nn_cos_generated", "nn_cos_trained", "agree_nearest", "agree_trained",
                                "trained_agree_nearest"]
    # One reference, computed once, gives every method the numbers it would compute itself; it
    # refuses other tasks.
    ref = novelty.novelty_reference(zoo, test, ids)
    pd.testing.assert_frame_equal(novelty.novelty(zoo, copy, test, ids, ref), df)
    with pytest.raises(ValueError, match="other tasks"):
        novelty.novelty(zoo, copy, test, ids[:4], ref)


def test_trajectory_accuracy_scores_the_first_every_strideth_and_the_last_step(setup):
    _, zoo, test = setup
    ids = zoo.tasks.ids("unseen")[:2]
    record = [(24 - s, zoo.theta[ids]) for s in range(25)]  # 25 steps, the trained heads at each
    full = figure3.trajectory_accuracy(record, zoo, test, ids)
    strided = figure3.trajectory_accuracy(record, zoo, test, ids, stride=10)
    assert sorted(set(full.step)) == list(range(1, 26)) and sorted(set(strided.step)) == [1, 10, 20, 25]
    merged = strided.merge(full, on=["step", "task"], suffixes=("", "_full"))
    assert len(merged) == len(strided) and (merged.accuracy == merged.accuracy_full).all()
    assert (merged.t == merged.t_full).all()
    with pytest.raises(ValueError, match="stride 0"):
        figure3.trajectory_accuracy(record, zoo, test, ids, stride=0)


def test_summarise_means_over_seeds_and_the_ceiling_fraction():
    rows = [{"dataset": "d", "method": m, "seed": s, "task": t, "accuracy": a, "mse": e}
            for m, base in (("Trained (ceiling)", 0.8), ("X", 0.4)) for s in (1, 2) for t in range(3)
            for a, e in [(base + 0.1 * (s - 1), 0.01 * s)]]
    out = scoring.summarise(pd.DataFrame(rows), ["dataset", "method"])
    assert list(out.columns) == ["dataset", "method", "accuracy_mean", "accuracy_std", "mse_mean", "mse_std",
                                 "seeds", "tasks", "of_ceiling"]
    x = out.set_index("method").loc["X"]
    assert x.accuracy_mean == pytest.approx(0.45) and x.accuracy_std == pytest.approx(0.1 / 2 ** 0.5)
    assert x.of_ceiling == pytest.approx(0.45 / 0.85) and x.seeds == 2 and x.tasks == 3


def test_hypernetwork_fits_its_training_heads_and_resumes(setup, tmp_path):
    _, zoo, _ = setup
    seen = zoo.tasks.ids("seen")
    tok = WeightTokenizer.fit(zoo.theta[seen], zoo.spec, 8)
    v = zoo.task_text["v_c/prompt"][seen]
    cfg = TrainConfig(epochs=60, batch_size=8, lr=3e-3, grad_clip=1.0, seed=0)
    net = baselines.train_hypernetwork(tmp_path, zoo.theta[seen], v, tok, cfg)
    pred = baselines.hypernetwork_heads(net, v, tok)
    mean_mse = ((zoo.theta[seen].mean(0) - zoo.theta[seen]) ** 2).mean()
    assert ((pred - zoo.theta[seen]) ** 2).mean() < 0.5 * mean_mse  # it uses the text, beating the mean head
    again = baselines.train_hypernetwork(tmp_path, zoo.theta[seen], v, tok, cfg)  # loaded, not retrained
    assert torch.equal(baselines.hypernetwork_heads(again, v, tok), pred)
    # Another width is another model: its definition differs, so the stored one is not loaded for it.
    small = baselines.train_hypernetwork(tmp_path, zoo.theta[seen], v, tok, dataclasses.replace(cfg, epochs=1), hidden=8)
    assert small.net[0].out_features == 8 and net.net[0].out_features == baselines.HYPERNETWORK_HIDDEN


def test_hypernetwork_through_the_task_loss_is_its_own_model(setup, tmp_path):
    from t2wlib.generator.from_zoo import task_loss_term

    _, zoo, _ = setup
    train = zoo_job.synthetic_data()[0]
    seen = zoo.tasks.ids("seen")
    tok = WeightTokenizer.fit(zoo.theta[seen], zoo.spec, 8)
    v = zoo.task_text["v_c/prompt"][seen]
    cfg = TrainConfig(epochs=20, batch_size=8, lr=3e-3, grad_clip=1.0, seed=0)
    plain = baselines.train_hypernetwork(tmp_path, zoo.theta[seen], v, tok, cfg)
    term = task_loss_term(zoo, train, seen)
    assert torch.equal(term.task_classes, zoo.tasks.padded(seen))
    with_task = dataclasses.replace(cfg, lambda_task=1.0)
    net = baselines.train_hypernetwork(tmp_path, zoo.theta[seen], v, tok, with_task, task_loss=term)
    heads, plain_heads = (baselines.hypernetwork_heads(n, v, tok) for n in (net, plain))
    assert not torch.equal(heads, plain_heads)  # trained anew under the other objective, not loaded
    mean_loss = [float(task_loss(h, train.X, train.y, term.class_emb, term.task_classes, zoo.spec).mean())
                 for h in (heads, plain_heads)]
    assert mean_loss[0] < mean_loss[1]  # the task loss is what it lowers
    for bad in (None, dataclasses.replace(term, task_classes=term.task_classes[:2])):
        with pytest.raises(ValueError, match="lambda_task = 1.0 needs a task loss with the classes of each of the"):
            baselines.train_hypernetwork(tmp_path, zoo.theta[seen], v, tok, with_task, task_loss=bad)


def test_ridge_recovers_a_linear_map_and_shrinks_on_noise():
    g = torch.Generator().manual_seed(0)
    v = torch.randn(200, 6, generator=g)
    W = torch.randn(6, 30, generator=g)
    linear = ridge.fit_ridge(v, v @ W + 0.5)
    v_new = torch.randn(10, 6, generator=g)
    torch.testing.assert_close(linear(v_new), v_new @ W + 0.5, atol=1e-2, rtol=0)
    assert linear.alpha == min(ridge.RIDGE_ALPHAS)
    noise = torch.randn(200, 30, generator=g)  # heads that the text does not predict
    shrunk = ridge.fit_ridge(v, noise)
    assert shrunk.alpha == max(ridge.RIDGE_ALPHAS)
    assert float(shrunk(v_new).std(0).mean()) < 0.5 * float(linear(v_new).std(0).mean())
    with pytest.raises(ValueError, match="at least"):
        ridge.fit_ridge(v[:2], noise[:2])


def test_comparison_table_has_every_method_and_seed(setup):
    root, zoo, test = setup
    profile = get_profile("smoke", block_size=8, gen_epochs=1, gen_batch_size=8)
    gens = {(v, s): train_generator(root / f"g-{v}-{s}", zoo, generator_config(profile, zoo, v, s), progress=False)[0]
            for v in ("prompt", "description") for s in (1, 2)}
    ids = zoo.tasks.ids("unseen")
    heads = table1.method_heads(zoo, ids, gens, {}, ddim_steps=3)
    scores = table1.score_methods(zoo, test, ids, heads, dataset="synthetic", split="unseen")
    assert set(scores.method) == {"Trained (ceiling)", "Universal Model", registry.STAGE1, registry.CLASS_IDS, "Retrieval-CLIP",
                                  "Retrieval-NL", "Ridge-CLIP", "Ridge-NL", "T2W-CLIP", "T2W-NL"}
    assert scores.groupby("method").seed.nunique().eq(2).all() and len(scores) == 10 * 2 * len(ids)
    # Seed-free methods are scored once and repeated under every seed; heads that differ by seed
    # under a seed-free method's name are refused rather than scored as the first seed's.
    for method in ("Universal Model", "Ridge-NL"):
        by_seed = scores[scores.method == method].pivot(index="task", columns="seed", values="accuracy")
        assert (by_seed[1] == by_seed[2]).all()
    edited = dict(heads)
    edited["Ridge-CLIP", 2] = heads["Ridge-CLIP", 2] + 1.0
    with pytest.raises(ValueError, match="Ridge-CLIP is seed-free"):
        table1.score_methods(zoo, test, ids, edited)
    table = scoring.summarise(scores, ["dataset", "split", "method"])
    assert table.set_index("method").loc["Trained (ceiling)", "of_ceiling"] == 1.0
    # Novelty per method: a seed-free method's heads are scored once, and every method's row is the
    # mean of its per-seed novelty.
    keyed = {("synthetic", "unseen", method, seed): theta for (method, seed), theta in heads.items()}
    calls = []
    real = novelty.novelty
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(novelty, "novelty", lambda *a, **k: calls.append(1) or real(*a, **k))
    table = novelty.novelty_by_method({"synthetic": zoo}, {"synthetic": test}, keyed, ("T2W-CLIP", "Ridge-CLIP"))
    monkeypatch.undo()
    assert len(calls) == 3 and sorted(table.method) == ["Ridge-CLIP", "T2W-CLIP"]  # Ridge once, T2W per seed
    per_seed = [novelty.novelty(zoo, heads["T2W-CLIP", s], test, ids).drop(columns="task").mean() for s in (1, 2)]
    row = table.set_index("method").loc["T2W-CLIP"]
    assert all(abs(row[c] - (per_seed[0][c] + per_seed[1][c]) / 2) < 1e-6 for c in per_seed[0].index)
