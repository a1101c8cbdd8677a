"""L_sym is zero exactly for equivariant denoisers; augmentation keeps functions; D learns."""

from __future__ import annotations

import pytest
import torch

from t2wlib.generator.losses import (
    Discriminator,
    discriminator_loss,
    generator_adversarial_loss,
    permutation_augment,
    symmetry_loss,
)
from t2wlib.generator.tokenizer import WeightTokenizer
from t2wlib.heads.adapter import HeadSpec, head_logits

SPEC = HeadSpec(12, 4, 7)


@pytest.fixture(scope="module")
def tok():
    zoo = torch.randn(40, SPEC.num_params, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 0.3
    return WeightTokenizer.fit(zoo, SPEC, block_size=8)


def _equivariant(tok, prediction):
    """Elementwise in weight space (commutes with any permutation), mapped back to tokens the way
    the prediction transforms: linearly for ε, affinely for x0."""
    def model(x, t):
        theta = torch.tanh(tok.decode(x))
        if prediction == "x0":
            return tok.encode(theta)
        return (theta[..., tok.index.clamp_min(0)] / tok.scale).where(tok.mask, 0.0)
    return model


@pytest.mark.parametrize("prediction", ["eps", "x0"])
def test_symmetry_loss_is_zero_for_an_equivariant_denoiser(tok, prediction):
    x_t = torch.randn(6, tok.num_tokens, 8, dtype=torch.float64) * tok.mask
    t = torch.zeros(6, dtype=torch.int64)
    loss = symmetry_loss(_equivariant(tok, prediction), x_t, t, {}, tok, prediction,
                         generator=torch.Generator().manual_seed(1))
    assert loss.shape == (6,) and float(loss.max()) < 1e-20


def test_symmetry_loss_is_positive_for_a_generic_denoiser(tok):
    w = torch.randn(8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    x_t = torch.randn(6, tok.num_tokens, 8, dtype=torch.float64) * tok.mask
    loss = symmetry_loss(lambda x, t: x @ w, x_t, torch.zeros(6, dtype=torch.int64), {}, tok,
                         generator=torch.Generator().manual_seed(1))
    assert float(loss.min()) > 1e-3


def test_permutation_augment_keeps_every_head_function(tok):
    theta = torch.randn(5, SPEC.num_params, dtype=torch.float64)
    augmented = tok.decode(permutation_augment(tok.encode(theta), tok, torch.Generator().manual_seed(3)))
    x, e = torch.randn(3, 12, dtype=torch.float64), torch.randn(2, 7, dtype=torch.float64)
    assert not torch.allclose(augmented, theta)
    torch.testing.assert_close(head_logits(augmented, x, e, SPEC), head_logits(theta, x, e, SPEC))


def test_discriminator_separates_real_from_fake():
    torch.manual_seed(0)
    disc = Discriminator(num_tokens=5, block_size=4, width=32)
    real, fake = torch.randn(64, 5, 4) * 0.2 + 0.5, torch.randn(64, 5, 4)
    opt = torch.optim.Adam(disc.parameters(), lr=1e-2)  # the paper's discriminator learning rate
    first = discriminator_loss(disc, real, fake).item()
    for _ in range(50):
        loss = discriminator_loss(disc, real, fake)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 < first
    assert generator_adversarial_loss(disc, fake) > generator_adversarial_loss(disc, real)
    # Weights select samples: all weight on one fake sample gives that sample's loss.
    w = torch.zeros(64)
    w[5] = 1.0
    torch.testing.assert_close(generator_adversarial_loss(disc, fake, w), generator_adversarial_loss(disc, fake[5:6]))
