"""The registry of methods: its labels and seed dependence, and that a new baseline is one entry,
which Table 1, the novelty table and notebook 10's study all pick up."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from t2wlib.experiments import diffusion_vs_regression, novelty, table1
from t2wlib.methods import registry
from t2wlib.zoo.model_zoo import load_zoo

sys.path.insert(0, str(Path(__file__).parent))
import zoo_job  # noqa: E402

# A new memorisation baseline: the mean of all seen heads, whatever the text.
SEEN_MEAN = registry.Method("Seen mean", registry.MEMORISATION, False,
                            lambda zoo, ids, seen, variant: zoo.theta[seen].mean(0).expand(len(ids), -1))


@pytest.fixture(scope="module")
def zoos(tmp_path_factory):
    root = tmp_path_factory.mktemp("methods")
    zoo_job.build(root / "multi", num_tasks=12, starts=2)
    return load_zoo(root / "multi")


def test_labels_follow_the_text_variants_and_name_their_method():
    labels = registry.labels(registry.VARIANT_LABEL)
    assert labels[:3] == [registry.TRAINED, registry.UNIVERSAL, registry.STAGE1]  # references read no text
    assert "Ridge-CLIP" in labels and "Ridge-NL" in labels and "T2W-CLIP" in labels
    assert len(labels) == len(set(labels))
    assert registry.method_of("Hypernetwork-NL").name == registry.HYPERNETWORK
    assert registry.method_of(registry.STAGE1).kind == registry.REFERENCE
    with pytest.raises(KeyError, match="no method 'Lasso-CLIP'"):
        registry.method_of("Lasso-CLIP")
    assert [m.name for m in registry.METHODS if m.seeded] == [registry.HYPERNETWORK, registry.T2W]


def test_closed_forms_give_one_head_per_task(zoos):
    single = zoos.select(list(range(12)), "single")
    ids, seen = single.tasks.ids("unseen"), single.tasks.ids("seen")
    for method in registry.METHODS:
        if method.closed_form is not None:
            theta = method.closed_form(single, ids, seen, "prompt")
            assert theta.shape == (len(ids), single.spec.num_params), method.name
    trained = registry.method_of(registry.TRAINED).closed_form(single, ids, seen, "prompt")
    assert torch.equal(trained, single.theta[ids])


def test_a_new_baseline_is_one_entry(zoos, monkeypatch):
    monkeypatch.setattr(registry, "METHODS", (*registry.METHODS, SEEN_MEAN))
    single = zoos.select(list(range(12)), "single")
    ids = single.tasks.ids("unseen")

    class FakeGenerator:  # T2W's place in Table 1, without training one
        tokenizer = None
        config = type("Config", (), {"condition": "pooled"})()

        def sample(self, v_c, steps, seed):
            return torch.zeros(len(v_c), single.spec.num_params)

    heads = table1.method_heads(single, ids, {("prompt", 1): FakeGenerator()}, {}, ddim_steps=1)
    assert torch.equal(heads["Seen mean-CLIP", 1], single.theta[single.tasks.ids("seen")].mean(0).expand(len(ids), -1))
    _, test, _ = zoo_job.synthetic_data()
    scores = table1.score_methods(single, test, ids, heads)
    assert "Seen mean-CLIP" in set(scores.method)
    assert "Seen mean-CLIP" in novelty.novelty_labels(["prompt"])  # it reads text, so it could copy
    assert SEEN_MEAN in diffusion_vs_regression.shared_methods()  # notebook 10 reports it on both zoos
    study = diffusion_vs_regression.method_heads(diffusion_vs_regression.views(zoos), {}, {},
                                                 _study_profile())
    assert {(diffusion_vs_regression.SINGLE, "Seen mean"), (diffusion_vs_regression.MULTI, "Seen mean")} <= set(study)


def _study_profile():
    from t2wlib.pipeline.profiles import get_profile, solution_zoo_profile

    return solution_zoo_profile(get_profile("smoke"))
