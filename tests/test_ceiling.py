"""The projection limit (experiments/ceiling.py): a trained head projected on K principal directions is
what the compact tokenizer of K components decodes, it nears the trained head as K grows, and the curve
ends at the trained heads' own accuracy."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from t2wlib.experiments.ceiling import projected_heads, projection_curve
from t2wlib.generator.pca_tokenizer import PrincipalTokenizer
from t2wlib.zoo.model_zoo import load_zoo

sys.path.insert(0, str(Path(__file__).parent))
import zoo_job  # noqa: E402


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    root = tmp_path_factory.mktemp("ceiling")
    zoo_job.build(root / "zoo", num_tasks=24)
    return load_zoo(root / "zoo")


def test_projection_is_the_compact_tokenizers_round_trip_and_nears_the_head_as_k_grows(zoo):
    seen, unseen = zoo.tasks.ids("seen"), zoo.tasks.ids("unseen")
    wide = PrincipalTokenizer.fit(zoo.theta[seen], zoo.spec, block_size=4, components=6)
    for k in (2, 6):
        narrow = PrincipalTokenizer.fit(zoo.theta[seen], zoo.spec, block_size=4, components=k)
        assert torch.allclose(projected_heads(wide, zoo.theta[unseen], k), narrow.decode(narrow.encode(zoo.theta[unseen])),
                              atol=1e-4)
    distance = [float(((projected_heads(wide, zoo.theta[unseen], k) - zoo.theta[unseen]) ** 2).sum()) for k in range(1, 7)]
    assert all(a >= b - 1e-6 for a, b in zip(distance, distance[1:], strict=False))  # more directions, never farther
    with pytest.raises(ValueError, match="7 components: allowed 1 to 6"):
        projected_heads(wide, zoo.theta[unseen], 7)


def test_the_curve_ends_at_the_trained_heads(zoo):
    _, test, _ = zoo_job.synthetic_data()
    seen, unseen = zoo.tasks.ids("seen"), zoo.tasks.ids("unseen")
    curve = projection_curve(zoo, test, seen, unseen, [4, 1, 4, 2])
    assert curve.components.tolist() == [1, 2, 4, zoo.spec.num_params]
    assert curve.accuracy.iloc[-1] == pytest.approx(float(zoo.test_accuracy[unseen].mean()))
    assert curve.of_trained.iloc[-1] == 1 and (curve.tasks == len(unseen)).all()
    assert curve.accuracy.between(0, 1).all()


def test_the_noise_floor_retrains_the_zoos_heads_exactly_with_its_own_seeds_and_apart_with_others(zoo):
    from t2wlib.experiments.ceiling import noise_floor, retrained_heads

    train, test, _ = zoo_job.synthetic_data()
    ids = zoo.tasks.ids("unseen")
    assert torch.allclose(retrained_heads(zoo, train, ids, 0), zoo.theta[ids], atol=1e-6)  # the zoo's own training
    floor = noise_floor(zoo, train, test, ids)
    assert floor["weight_mse"] > 0 and 0 < floor["distance_over_update"] < 2  # another run: near, not the same
    assert floor["zoo_accuracy"] == pytest.approx(float(zoo.test_accuracy[ids].mean()))
    assert 0 <= floor["retrained_accuracy"] <= 1 and floor["tasks"] == len(ids)
