"""Text encoders, prompts, Alg. 1's fuse_features and T2W-NL descriptions."""

from __future__ import annotations

import pytest
import torch

from t2wlib.core.tensor_cache import TensorCache
from t2wlib.data import task_condition, wordnet
from t2wlib.encoders.text import embed_texts, load_text_encoder


@pytest.fixture(scope="module")
def minilm():
    return load_text_encoder("minilm")


def test_minilm_is_deterministic_and_normalised(minilm):
    texts = task_condition.prompts(["sneaker", "ankle boot", "dress"])
    a, b = minilm.encode(texts), load_text_encoder("minilm").encode(texts)
    assert a.shape == (3, 384) and minilm.dim == 384 and not a.is_inference()  # usable in autograd
    assert torch.equal(a, minilm.encode(texts))
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a.norm(dim=-1), torch.ones(3))


def test_minilm_is_semantically_sane(minilm):
    e = minilm.encode(task_condition.prompts(["sneaker", "ankle boot", "dress"]))
    assert e[0] @ e[1] > e[0] @ e[2]  # sneaker is nearer ankle boot than dress


def test_clip_vit_b_32_without_pretrained_weights_has_paper_shapes():
    enc = load_text_encoder("clip-vit-b-32", pretrained=False)
    e = enc.encode(["A photo of otter", "A photo of lamp"])
    assert enc.weights == "random" and e.shape == (2, 512)
    torch.testing.assert_close(e.norm(dim=-1), torch.ones(2))


def test_unknown_encoder_and_empty_input(minilm):
    with pytest.raises(KeyError, match="unknown text encoder 'bert'.*minilm"):
        load_text_encoder("bert")
    with pytest.raises(ValueError, match="at least one text"):
        minilm.encode([])


def _alg1(e: torch.Tensor) -> torch.Tensor:
    """Algorithm 1, step 3, transcribed literally with Python loops."""
    k = e.shape[0]
    mu = sum(e[i] for i in range(k)) / k
    mu_hat = mu / mu.norm()
    scores = [torch.exp((e[i] / e[i].norm()) @ mu_hat) for i in range(k)]
    w = [s / sum(scores) for s in scores]
    return sum(w[i] * e[i] for i in range(k))


def test_fuse_features_matches_algorithm_1():
    g = torch.Generator().manual_seed(0)
    e = torch.randn(7, 16, generator=g, dtype=torch.float64)
    torch.testing.assert_close(task_condition.fuse_features(e), _alg1(e))


def test_fuse_features_batched_with_padding_equals_per_task():
    g = torch.Generator().manual_seed(1)
    tasks = [torch.randn(k, 8, generator=g, dtype=torch.float64) for k in (3, 5, 1)]
    padded = torch.zeros(3, 5, 8, dtype=torch.float64)
    mask = torch.zeros(3, 5, dtype=torch.bool)
    for i, t in enumerate(tasks):
        padded[i, :len(t)], mask[i, :len(t)] = t, True
    padded[0, 3:] = 1e3  # garbage in padding must not leak
    fused = task_condition.fuse_features(padded, mask)
    for i, t in enumerate(tasks):
        torch.testing.assert_close(fused[i], _alg1(t))


def test_prompts_follow_the_paper_template():
    assert task_condition.prompts(["palm tree"]) == ["A photo of palm tree"]
    with pytest.raises(ValueError, match="placeholder"):
        task_condition.prompts(["x"], template="A photo")


def test_descriptions():
    assert wordnet.available(), "Debian's wordnet-base should be installed by scripts/setup.sh"
    fashion = task_condition.descriptions(["sneaker"])[0]
    assert fashion.startswith("A photo of sneaker, ") and "rubber sole" in fashion
    goldfish = task_condition.descriptions(["goldfish"], ["n01443537"])[0]
    assert "freshwater fishes" in goldfish
    assert "mammal" in task_condition.describe("otter")  # the animal, not WordNet's first sense (its fur)
    assert task_condition.describe("zqxv qwrtz") == "A photo of zqxv qwrtz"  # neither word in WordNet
    with pytest.raises(ValueError, match="wnids"):
        task_condition.descriptions(["a", "b"], ["n01443537"])


def test_text_embeddings_are_cached(minilm, tmp_path):
    cache = TensorCache(tmp_path)
    texts = ["A photo of bag", "A photo of coat"]
    first = embed_texts(minilm, texts, cache)
    assert len(list(tmp_path.rglob("*.safetensors"))) == 1
    calls = []
    minilm_spy = type(minilm)(minilm.name, minilm.dim, minilm.weights, lambda t: calls.append(t) or torch.zeros(2, 384))
    torch.testing.assert_close(embed_texts(minilm_spy, texts, cache), first)
    assert calls == []
