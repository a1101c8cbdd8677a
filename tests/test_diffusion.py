"""Diffusion: schedules and single sampler steps against diffusers, q_sample's closed form, losses, and the
samplers with an oracle."""

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


DIFFUSERS_PREDICTION = {"eps": "epsilon", "x0": "sample", "v": "v_prediction"}
DIFFUSERS_TOLERANCE = dict(rtol=1e-4, atol=2e-5)  # diffusers keeps its schedule tables in float32


def _nonlinear_model(n_steps: int, seed: int = 0):
    """A fixed denoiser that is neither the oracle nor linear in x_t, so a wrong coefficient shows."""
    w = torch.randn(6, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)

    def model(x_t, t):
        return torch.tanh(x_t @ w) * (1 + t.view(-1, 1, 1).double() / n_steps)
    return model


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_one_ddpm_step_equals_diffusers_at_every_kind_of_t(schedule, prediction):
    """x_{t-1} = posterior mean(x̂0, x_t) + sqrt(Σ_t) z, against diffusers' DDPMScheduler.step given the
    same z, at the first, middle and last steps (t > 0 is where the posterior coefficients matter)."""
    from diffusers import DDPMScheduler

    n = 100
    d = GaussianDiffusion(get_betas(schedule, n), prediction=prediction)
    ref = DDPMScheduler(num_train_timesteps=n, trained_betas=d.betas.numpy(), clip_sample=False,
                        variance_type="fixed_small", prediction_type=DIFFUSERS_PREDICTION[prediction])
    model = _nonlinear_model(n)
    x = torch.randn(3, 4, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for i in (n - 1, 70, 31, 5, 1, 0):
        t = torch.full((3,), i)
        z = torch.randn(x.shape, generator=torch.Generator().manual_seed(i), dtype=torch.float64)
        ours, x0 = d.p_sample_step(model, x, i, z=z)
        theirs = ref.step(model(x, t), i, x, generator=torch.Generator().manual_seed(i))
        torch.testing.assert_close(x0, theirs.pred_original_sample, **DIFFUSERS_TOLERANCE)
        torch.testing.assert_close(ours, theirs.prev_sample, **DIFFUSERS_TOLERANCE)
        if i > 0:  # the step moves x by more than the tolerance: a swapped coefficient cannot hide in it
            assert (ours - x).abs().max() > 1e-3


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_one_ddim_step_equals_diffusers(schedule, prediction):
    """x_next = sqrt(abar_next) x̂0 + sqrt(1 - abar_next) ε̂ (η = 0) against DDIMScheduler.step, for
    jumps of 10 steps and the last jump to abar = 1."""
    from diffusers import DDIMScheduler

    n, jump = 100, 10
    d = GaussianDiffusion(get_betas(schedule, n), prediction=prediction)
    ref = DDIMScheduler(num_train_timesteps=n, trained_betas=d.betas.numpy(), clip_sample=False,
                        set_alpha_to_one=True, prediction_type=DIFFUSERS_PREDICTION[prediction])
    ref.set_timesteps(n // jump)
    model = _nonlinear_model(n, seed=3)
    x = torch.randn(3, 4, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for i in (99, 50, 23, 9, 4):
        ours, x0 = d.ddim_step(model, x, i, i - jump if i >= jump else None)
        theirs = ref.step(model(x, torch.full((3,), i)), i, x, eta=0.0)
        torch.testing.assert_close(x0, theirs.pred_original_sample, **DIFFUSERS_TOLERANCE)
        torch.testing.assert_close(ours, theirs.prev_sample, **DIFFUSERS_TOLERANCE)
    assert d.ddim_timesteps(4) == [99, 66, 33, 0]


def test_the_loops_are_their_steps_in_order():
    """p_sample_loop is p_sample_step from N - 1 down to 0 with the generator's draws, ddim_sample_loop
    is ddim_step over ddim_timesteps: the loops add nothing the step tests do not cover."""
    d = GaussianDiffusion(get_betas("linear", 30), prediction="v")
    model = _nonlinear_model(30)
    noise = torch.randn(2, 4, 6, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    x, g = noise, torch.Generator().manual_seed(9)
    for i in range(29, -1, -1):
        x, _ = d.p_sample_step(model, x, i, generator=g)
    torch.testing.assert_close(d.p_sample_loop(model, noise.shape, noise=noise, generator=torch.Generator().manual_seed(9)),
                               x, rtol=0, atol=0)
    times = d.ddim_timesteps(7)
    x = noise
    for i, i_next in zip(times, [*times[1:], None]):
        x, _ = d.ddim_step(model, x, i, i_next)
    torch.testing.assert_close(d.ddim_sample_loop(model, noise.shape, steps=7, noise=noise), x, rtol=0, atol=0)


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
