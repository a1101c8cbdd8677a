"""Weight matching recovers a hidden-unit permutation exactly; fusion rules are what they say."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from t2wlib.experiments import fusion
from t2wlib.heads.adapter import HeadSpec, head_logits, permute_hidden
from t2wlib.zoo.model_zoo import load_zoo

sys.path.insert(0, str(Path(__file__).parent))
import train_job  # noqa: E402
import zoo_job  # noqa: E402

SPEC = HeadSpec(feature_dim=10, hidden=6, embed_dim=5)


def test_weight_matching_recovers_the_permutation_and_the_function():
    g = torch.Generator().manual_seed(0)
    theta = torch.randn(SPEC.num_params, generator=g, dtype=torch.float64)
    for _ in range(5):
        perm = torch.randperm(SPEC.hidden, generator=g)
        shuffled = permute_hidden(theta, perm, SPEC)
        found = fusion.weight_matching(theta, shuffled, SPEC)
        aligned = permute_hidden(shuffled, found, SPEC)
        assert torch.equal(aligned, theta)  # the exact inverse permutation
        x, e = torch.randn(7, 10, generator=g, dtype=torch.float64), torch.randn(3, 5, generator=g, dtype=torch.float64)
        torch.testing.assert_close(head_logits(shuffled[None], x, e, SPEC), head_logits(theta[None], x, e, SPEC))
        assert torch.equal(fusion.rebasin_average(theta, shuffled, SPEC), theta)  # aligned copies average to themselves


def test_plain_average_of_a_permuted_copy_differs_from_rebasin():
    g = torch.Generator().manual_seed(1)
    theta = torch.randn(SPEC.num_params, generator=g, dtype=torch.float64)
    shuffled = permute_hidden(theta, torch.tensor([1, 0, 2, 3, 4, 5]), SPEC)
    assert not torch.equal(fusion.average(theta, shuffled), theta)
    torch.testing.assert_close(fusion.average(theta, 3 * theta), 2 * theta)


def test_disjoint_pairs_are_disjoint_and_checked():
    pairs = fusion.disjoint_pairs(10, 4, 5, seed=0)
    assert len(pairs) == 5 and all(len(a) == len(b) == 4 and not set(a) & set(b) for a, b in pairs)
    assert pairs == fusion.disjoint_pairs(10, 4, 5, seed=0)
    with pytest.raises(ValueError, match="k=6"):
        fusion.disjoint_pairs(10, 6, 1, seed=0)


def test_fusion_table_on_a_tiny_zoo(tmp_path):
    zoo_job.build(tmp_path / "zoo")
    zoo = load_zoo(tmp_path / "zoo")
    train, test, _ = zoo_job.synthetic_data()
    gen = train_job.tiny_generator(tmp_path / "g", zoo)
    pairs = fusion.disjoint_pairs(len(zoo.class_names), 2, 3, seed=1)
    df = fusion.fusion_scores(zoo, train, test, gen, pairs, ddim_steps=3, seed=0)
    assert len(df) == 5 * 3 and set(df.method) == {"Model A", "Model B", "Weight averaging", "Git Re-Basin",
                                                   "T2W (combined text)"}
    assert df[["acc_A", "acc_B", "acc_union"]].stack().between(0, 1).all()
    model_a = df[df.method == "Model A"]
    assert (model_a.acc_A > 0.5).all()  # a trained head does its own task (6 well-separated classes)
