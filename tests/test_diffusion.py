"""Diffusion: schedules against diffusers, q_sample's closed form, losses and samplers with an oracle."""

from __future__ import annotations

import pytest
import torch

from t2wlib.generator.diffusion import GaussianDiffusion, get_betas


@pytest.mark.parametrize("ours, theirs", [("linear", "linear"), ("cosine", "squaredcos_cap_v2")])
def test_schedules_agree_with_diffusers(ours, theirs):
    from diffusers import DDPMScheduler

    ref = DDPMScheduler(num_train_timesteps=1000, beta_schedule=theirs)
    d = GaussianDiffusion(get_betas(ours, 1000))
    torch.testing.assert_close(d.betas.float(), ref.betas, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(d.alphas_cumprod.float(), ref.alphas_cumprod, rtol=1e-4, atol=1e-7)
    for t in (1, 10, 500, 999):  # Σ_t of eq. 7-8, diffusers' "fixed_small" variance
        # diffusers computes in float32
        torch.testing.assert_close(float(d.posterior_variance[t]), float(ref._get_variance(t)), rtol=1e-3, atol=1e-9)


def test_q_sample_matches_closed_form_and_the_markov_chain():
    d = GaussianDiffusion(get_betas("linear", 100))
    x0, noise = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
    t = torch.tensor([0, 40, 99])
    abar = torch.tensor([torch.prod(1 - d.betas[: i + 1]) for i in t.tolist()], dtype=torch.float64).view(3, 1)
    torch.testing.assert_close(d.q_sample(x0, t, noise), abar.sqrt() * x0 + (1 - abar).sqrt() * noise)
    # Monte Carlo: 40 Markov steps q(x_n | x_{n-1}) give the closed form's mean and variance.
    g = torch.Generator().manual_seed(0)
    x = torch.full((200_000,), 2.0, dtype=torch.float64)
    for b in d.betas[:40]:
        x = (1 - b).sqrt() * x + b.sqrt() * torch.randn(x.shape, generator=g, dtype=torch.float64)
    assert float(x.mean()) == pytest.approx(2 * float(d.sqrt_alphas_cumprod[39]), abs=0.01)
    assert float(x.var()) == pytest.approx(1 - float(d.alphas_cumprod[39]), abs=0.01)


def _oracle(d: GaussianDiffusion, x0: torch.Tensor):
    """A perfect denoiser for a single known x0, in the diffusion's parameterisation."""
    def model(x_t, t):
        return d.eps_from_x0(x_t, t, x0.expand_as(x_t)) if d.prediction == "eps" else x0.expand_as(x_t)
    return model


@pytest.mark.parametrize("prediction", ["eps", "x0"])
def test_training_loss_is_zero_for_the_oracle_and_masks(prediction):
    d = GaussianDiffusion(get_betas("cosine", 50), prediction=prediction)
    x0 = torch.randn(1, 4, 6, dtype=torch.float64)
    out = d.training_losses(_oracle(d, x0), x0.expand(8, -1, -1), torch.arange(8) * 6)
    assert out["loss"].shape == (8,) and float(out["loss"].max()) < 1e-18
    mask = torch.zeros(4, 6, dtype=torch.bool)
    mask[:2] = True
    bad = d.training_losses(lambda x_t, t: torch.where(mask, 0.0, 1e6) + 0 * x_t, x0.expand(2, -1, -1),
                            torch.tensor([3, 30]), mask=mask)
    assert float(bad["loss"].max()) < 20  # the 1e6 errors outside the mask do not count


@pytest.mark.parametrize("prediction", ["eps", "x0"])
def test_samplers_recover_x0_with_the_oracle(prediction):
    d = GaussianDiffusion(get_betas("linear", 200), prediction=prediction)
    x0 = torch.randn(1, 3, 4, dtype=torch.float64)
    model = _oracle(d, x0)
    g = torch.Generator().manual_seed(1)
    shape = (2, 3, 4)
    ddpm, trajectory = d.p_sample_loop(model, shape, noise=torch.randn(shape, generator=g, dtype=torch.float64),
                                       generator=g, record=True)
    torch.testing.assert_close(ddpm, x0.expand(shape))
    assert [t for t, _ in trajectory] == list(range(199, -1, -1))
    ddim = d.ddim_sample_loop(model, shape, steps=10, noise=torch.randn(shape, generator=g, dtype=torch.float64))
    torch.testing.assert_close(ddim, x0.expand(shape))
    # Partial noising to t and denoising back (enhancement) returns the clean weights too.
    x_t = d.q_sample(x0.expand(shape), torch.full((2,), 60))
    torch.testing.assert_close(d.ddim_sample_loop(model, shape, steps=5, noise=x_t, t_start=60), x0.expand(shape))


def test_ddim_is_deterministic_with_eta_zero():
    d = GaussianDiffusion(get_betas("linear", 100))
    w = torch.randn(6, 6, generator=torch.Generator().manual_seed(0))

    def model(x_t, t):
        return torch.tanh(x_t @ w) * (t.view(-1, 1, 1) / 100)

    noise = torch.randn(3, 2, 6, generator=torch.Generator().manual_seed(2))
    a = d.ddim_sample_loop(model, noise.shape, steps=20, noise=noise)
    assert torch.equal(a, d.ddim_sample_loop(model, noise.shape, steps=20, noise=noise.clone()))
    assert d.ddim_timesteps(4) == [99, 66, 33, 0]


def test_bad_options():
    with pytest.raises(ValueError, match="unknown noise schedule"):
        get_betas("quadratic", 10)
    with pytest.raises(ValueError, match="unknown prediction"):
        GaussianDiffusion(get_betas("linear", 10), prediction="velocity")
    with pytest.raises(ValueError, match="DDIM steps"):
        GaussianDiffusion(get_betas("linear", 10)).ddim_timesteps(11)


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_every_parameterisation_recovers_noise_and_x0_from_its_target(prediction):
    """split(x_t, t, target) gives back (ε, x0) exactly: the sampler reads each target right."""
    d = GaussianDiffusion(get_betas("linear", 100), prediction)
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(6, 4, 3, generator=g, dtype=torch.float64), torch.randn(6, 4, 3, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 1, 30, 60, 98, 99])
    eps_hat, x0_hat = d.split(d.q_sample(x0, t, noise), t, d.target(x0, t, noise))
    torch.testing.assert_close(eps_hat, noise)
    torch.testing.assert_close(x0_hat, x0)
    if prediction == "v":  # v's scale is 1 at every step: E[v²] = abar + (1 - abar) for unit x0 and ε
        v = d.target(torch.randn(20000, 1, generator=g), torch.full((20000,), 50), torch.randn(20000, 1, generator=g))
        assert abs(float(v.var()) - 1) < 0.05


def test_min_snr_weights_cap_the_low_noise_steps():
    d = GaussianDiffusion(get_betas("linear", 1000), "eps")
    t = torch.arange(1000)
    snr = d.alphas_cumprod / (1 - d.alphas_cumprod)
    w = d.min_snr_weight(t, 5.0)
    assert torch.all(w[snr <= 5] == 1) and torch.all(w[snr > 5] < 1)  # ε: min(SNR, γ) / SNR
    x0 = GaussianDiffusion(get_betas("linear", 1000), "x0").min_snr_weight(t, 5.0)
    torch.testing.assert_close(x0.double(), snr.clamp(max=5.0), rtol=1e-6, atol=0)
    v = GaussianDiffusion(get_betas("linear", 1000), "v").min_snr_weight(t, 5.0)
    torch.testing.assert_close(v.double(), snr.clamp(max=5.0) / (snr + 1), rtol=1e-6, atol=0)
