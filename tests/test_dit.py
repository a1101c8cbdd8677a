"""The DiT denoiser: shapes, zero-initialised output, classifier-free guidance, clear errors."""

from __future__ import annotations

import pytest
import torch

from t2wlib.generator.denoiser import guided, timestep_embedding
from t2wlib.generator.denoisers import build_denoiser
from t2wlib.generator.dit import DIT_SIZES, WeightDiT


@pytest.fixture()
def model():
    torch.manual_seed(0)
    return WeightDiT(num_tokens=5, block_size=8, text_dim=6, cfg=DIT_SIZES["tiny"])


def _inputs(B=3):
    g = torch.Generator().manual_seed(1)
    return torch.randn(B, 5, 8, generator=g), torch.tensor([0, 500, 999][:B]), torch.randn(B, 6, generator=g)


def test_output_shape_and_zero_init(model):
    x, t, v = _inputs()
    out = model(x, t, v)
    assert out.shape == (3, 5, 8) and torch.equal(out, torch.zeros_like(out))  # adaLN-Zero / zero output maps


def test_classifier_free_guidance(model):
    x, t, v = _inputs()
    torch.nn.init.normal_(model.out_weight)  # make outputs depend on the inputs
    with torch.no_grad():
        model.null_text.normal_()
        cond, uncond = model(x, t, v), model(x, t, model.null_text.expand_as(v))
        torch.testing.assert_close(guided(model, 1.0)(x, t, v), cond)
        torch.testing.assert_close(guided(model, 0.0)(x, t, v), uncond)
        torch.testing.assert_close(guided(model, 3.0)(x, t, v), uncond + 3 * (cond - uncond), rtol=1e-4, atol=1e-4)
    assert torch.equal(model.drop_text(v, 1.0), model.null_text.expand_as(v))
    assert torch.equal(model.drop_text(v, 0.0), v)


def test_timestep_embedding_distinguishes_steps():
    e = timestep_embedding(torch.tensor([0, 1, 999]), 256)
    assert e.shape == (3, 256) and not torch.allclose(e[0], e[1])


def test_sizes_and_errors(model):
    assert DIT_SIZES["paper"].hidden == 1024
    with pytest.raises(KeyError, match="unknown denoiser 'huge'; available: .*paper.*mlp-film"):
        build_denoiser("huge", 5, 8, 6)
    x, t, v = _inputs()
    with pytest.raises(ValueError, match="expects x"):
        model(x[:, :4], t, v)


def test_text_norm_standardises_the_condition(model):
    v = torch.randn(50, 6) * 0.01 + 3.0  # task vectors: a large common mean, small differences
    model.fit_text_norm(v)
    x, t, _ = _inputs(2)
    _, c_tok = model.condition(x, t, v[:2])
    expected = model.c_embed((v[:2] - v.mean(0)) / v.std(0))
    torch.testing.assert_close(c_tok, expected)
    state = model.state_dict()  # saved with the weights
    assert torch.equal(state["text_mean"], v.mean(0)) and torch.equal(state["text_std"], v.std(0))


@pytest.mark.parametrize("name", ["tiny", "mlp-film"])
def test_every_denoiser_starts_at_zero_and_learns_the_condition(name):
    torch.manual_seed(0)
    model = build_denoiser(name, 5, 8, 6)
    x, t, v = _inputs()
    assert torch.equal(model(x, t, v), torch.zeros(3, 5, 8))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    target = torch.randn(3, 5, 8, generator=torch.Generator().manual_seed(2))
    for _ in range(60):
        loss = ((model(x, t, v) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss < 0.5
    assert not torch.allclose(model(x, t, v), model(x, t, torch.zeros_like(v)))  # the text matters
    assert not torch.allclose(model(x, t, v), model(x, torch.full_like(t, 7), v))  # the time step matters
    with pytest.raises(ValueError, match="expects x"):
        model(x[:, :4], t, v)


def test_unknown_denoiser_lists_the_known_ones():
    with pytest.raises(KeyError, match="unknown denoiser 'rnn'.*mlp-film"):
        build_denoiser("rnn", 5, 8, 6)


@pytest.mark.parametrize("name", ["tiny", "mlp-film"])
def test_the_linear_text_path_starts_at_ridge(name):
    """With the text path, the untrained denoiser's x0 estimate is the ridge map of the text, at every
    x_t and t; without it, the model starts at 0; a ridge map of other text statistics is refused."""
    from t2wlib.generator.ridge import fit_ridge

    g = torch.Generator().manual_seed(2)
    v = torch.randn(40, 6, generator=g) * 3 + 1
    targets = v @ torch.randn(6, 40, generator=g) + 0.5  # flat tokens (40 tasks, 5 x 8)
    torch.manual_seed(0)
    model = build_denoiser(name, 5, 8, 6, text_path=True)
    model.fit_text_norm(v)
    ridge = fit_ridge(v, targets)
    model.init_text_path(ridge)
    x, t, _ = _inputs()
    out = model(x, t, v[:3])
    torch.testing.assert_close(out.flatten(1), ridge(v[:3]), rtol=1e-4, atol=1e-4)
    assert float((out.flatten(1) - targets[:3]).abs().max()) < 0.05  # a linear target: ridge recovers it
    other = build_denoiser(name, 5, 8, 6, text_path=True)
    with pytest.raises(ValueError, match="standardises the text differently"):
        other.init_text_path(ridge)
    with pytest.raises(ValueError, match="without a text path"):
        build_denoiser(name, 5, 8, 6).init_text_path(ridge)


def test_class_set_condition_pads_with_zero_rows_and_orders_by_slot():
    """A DiT conditioned on class sets (B, k, D): one token per class in a slot of its own. Zero rows
    pad a smaller task without changing its prediction; reordering the classes changes it (the slot
    is the class's head row); the pooled v_c is Alg. 1 over the set; wrong shapes name what is allowed;
    classifier-free guidance drops the whole set."""
    from t2wlib.data.task_condition import fuse_features

    torch.manual_seed(0)
    model = build_denoiser("tiny", 5, 8, 6, text_path=True, classes=4)
    with torch.no_grad():  # away from the zero start, so that every input reaches the output
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    g = torch.Generator().manual_seed(2)
    x, t, e = torch.randn(2, 5, 8, generator=g), torch.tensor([3, 700]), torch.randn(2, 3, 6, generator=g)
    model.fit_text_norm(torch.cat([e, e.flip(1)]))
    padded = torch.cat([e, torch.zeros(2, 1, 6)], dim=1)
    assert torch.allclose(model(x, t, padded), model(x, t, e), atol=1e-6)
    assert not torch.allclose(model(x, t, e.flip(1)), model(x, t, e), atol=1e-3)
    assert torch.allclose(model.pooled(padded), fuse_features(e), atol=1e-6)
    for bad in (torch.randn(2, 6), torch.randn(2, 5, 6), torch.randn(2, 3, 7)):
        with pytest.raises(ValueError, match="and \\(B, k <= 4, 6\\) class embeddings; got"):
            model(x, t, bad)
    dropped = model.drop_text(e, 1.0)
    assert torch.equal(dropped, model.null_text.expand_as(e))
    assert torch.allclose(guided(model, 2.0)(x, t, e), 2 * model(x, t, e) - model(x, t, dropped), atol=1e-5)
    with pytest.raises(ValueError, match="a class-set condition needs a DiT"):
        build_denoiser("mlp-film", 5, 8, 6, classes=4)
