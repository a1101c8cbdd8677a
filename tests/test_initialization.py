"""Init schemes have their documented statistics; Reptile, few-shot subsets and the batched
train-from-inits run are what they say."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

from t2wlib.experiments import initialization as init
from t2wlib.heads.adapter import HeadSpec, task_accuracy, unflatten
from t2wlib.heads.training import HeadTrainConfig
from t2wlib.zoo.model_zoo import load_zoo

sys.path.insert(0, str(Path(__file__).parent))
import zoo_job  # noqa: E402

SPEC = HeadSpec(feature_dim=300, hidden=40, embed_dim=200)
F, R, D = 300, 40, 200


@pytest.mark.parametrize("scheme, std1, std2", [
    ("xavier-uniform", math.sqrt(2 / (F + R)), math.sqrt(2 / (R + D))),
    ("xavier-normal", math.sqrt(2 / (F + R)), math.sqrt(2 / (R + D))),
    ("kaiming-uniform", math.sqrt(2 / F), math.sqrt(2 / R)),
    ("kaiming-normal", math.sqrt(2 / F), math.sqrt(2 / R)),
    ("uniform-0.1", 0.1 / math.sqrt(3), 0.1 / math.sqrt(3)),
    ("normal-0.01", 0.01, 0.01),
])
def test_schemes_have_the_documented_statistics(scheme, std1, std2):
    p = unflatten(init.init_heads(scheme, 4, SPEC, seed=1), SPEC)
    assert p["W1"].std().item() == pytest.approx(std1, rel=0.03) and p["W2"].std().item() == pytest.approx(std2, rel=0.03)
    assert abs(p["W1"].mean().item()) < 0.05 * std1 and (p["b1"] == 0).all() and (p["b2"] == 0).all()
    if scheme.endswith("uniform") or scheme == "uniform-0.1":
        assert p["W1"].abs().max() <= math.sqrt(3) * std1 + 1e-6  # bounded support
    assert not torch.equal(init.init_heads(scheme, 1, SPEC, seed=1), init.init_heads(scheme, 1, SPEC, seed=2))


def test_unknown_scheme():
    with pytest.raises(KeyError, match="unknown init scheme 'orthogonal'"):
        init.init_heads("orthogonal", 1, SPEC)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("init")
    zoo_job.build(root / "zoo")
    train, test, _ = zoo_job.synthetic_data()
    return load_zoo(root / "zoo"), train, test


def test_train_from_inits_records_every_epoch_and_starts_at_the_init(tiny):
    zoo, train, test = tiny
    ids = zoo.tasks.ids("unseen")[:3]
    classes, emb = zoo.tasks.padded(ids), zoo.task_text["class_emb/prompt"]
    inits = {"zoo": zoo.theta[ids], "xavier-normal": init.init_heads("xavier-normal", 3, zoo.spec)}
    df = init.train_from_inits(inits, train, test, emb, classes, zoo.spec, HeadTrainConfig(4, 1e-2, 8))
    assert len(df) == 2 * 3 * 5 and set(df.epoch) == set(range(5))
    start = df[(df.init == "zoo") & (df.epoch == 0)].test_accuracy.to_numpy()
    assert torch.equal(torch.tensor(start), task_accuracy(zoo.theta[ids], test.X, test.y, emb, classes, zoo.spec).double())
    xav = df[df.init == "xavier-normal"].groupby("epoch").test_accuracy.mean()
    assert xav[4] > xav[0]  # training from a random init learns


def test_reptile_and_few_shot(tiny):
    zoo, train, _ = tiny
    seen = zoo.tasks.ids("seen")
    meta = init.reptile(zoo.stage1 * 0, train, zoo.task_text["class_emb/prompt"], zoo.tasks.padded(seen), zoo.spec,
                        HeadTrainConfig(1, 1e-2, 8), iterations=3, meta_batch=4)
    assert meta.shape == zoo.stage1.shape and meta.abs().sum() > 0
    shots = init.few_shot(train, 5, seed=0)
    assert torch.bincount(shots.y).tolist() == [5] * len(zoo.class_names)
    assert set(shots.index.tolist()) <= set(train.index.tolist())


def test_init_summary_counts_epochs_to_90_percent():
    import pandas as pd

    curves = pd.DataFrame([{"init": i, "task": t, "epoch": e, "test_accuracy": a, "test_loss": 1.0 - a}
                           for i, accs in {"fast": [0.2, 0.9, 0.95], "slow": [0.1, 0.5, 0.7]}.items()
                           for t in range(2) for e, a in enumerate(accs)])
    few = {10: curves.assign(test_accuracy=0.5)}
    table = init.summarise_inits(curves, torch.tensor([1.0, 1.0]), few).set_index("init")
    assert table.loc["fast", "epochs_to_90pct"] == 1 and table.loc["fast", "reached_90pct"] == 1.0
    assert table.loc["slow", "reached_90pct"] == 0.0 and math.isnan(table.loc["slow", "epochs_to_90pct"])
    assert table.loc["fast", "test_accuracy"] == pytest.approx(0.95) and table.loc["slow", "acc_10_shot"] == 0.5
