"""Gaussian diffusion over weight tokens (paper §3.2): schedules, q_sample, losses, samplers.

Forward: q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I). Reverse (eq. 7-8): mean from the model's
ε (default, eq. 9's target), x0 (as the authors' public code) or v prediction (Salimans & Ho:
v = sqrt(abar) ε - sqrt(1 - abar) x0, whose scale stays 1 at every noise level), variance Σ_t = the
posterior variance (1 - abar_{t-1}) / (1 - abar_t) β_t. Samplers: DDPM (`p_sample_loop`, all N
steps), deterministic DDIM with few steps (`ddim_sample_loop`, η = 0), both able to start from a
partially noised x_t (enhancement) and to return every intermediate x0-estimate (Figure 3).

Like facebookresearch/DiT, the model and the diffusion meet in one call: the model is any callable
model(x_t, t, **model_kwargs) -> prediction of x_t's shape; time steps are 0-based (t = 0 is the
first noising step, N - 1 the last).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

SCHEDULES = ("linear", "cosine")
PREDICTIONS = ("eps", "x0", "v")


def get_betas(schedule: str, num_steps: int) -> torch.Tensor:
    """β_1..β_N (float64): "linear" (Ho et al., 1e-4 to 0.02 at N = 1000, rescaled for other N) or
    "cosine" (Nichol & Dhariwal: abar(t) = cos²((t/N + s)/(1 + s) π/2), s = 0.008, β ≤ 0.999)."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be positive, got {num_steps}")
    if schedule == "linear":
        scale = 1000 / num_steps
        return torch.linspace(scale * 1e-4, scale * 0.02, num_steps, dtype=torch.float64)
    if schedule == "cosine":
        s = 0.008
        f = torch.cos((torch.arange(num_steps + 1, dtype=torch.float64) / num_steps + s) / (1 + s) * math.pi / 2) ** 2
        return (1 - f[1:] / f[:-1]).clamp(max=0.999)
    raise ValueError(f"unknown noise schedule {schedule!r}; allowed: {', '.join(SCHEDULES)}")


def _at(a: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """a[t] (float64 table) broadcast to x's shape and dtype: t (B,) -> (B, 1, ..., 1)."""
    return a.to(x.device)[t].to(x.dtype).view(-1, *([1] * (x.ndim - 1)))


class GaussianDiffusion:
    """The DDPM process for a given β schedule and model parameterisation ("eps", "x0" or "v")."""

    def __init__(self, betas: torch.Tensor, prediction: str = "eps", clip_x0: float | None = None):
        if prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction {prediction!r}; allowed: {', '.join(PREDICTIONS)}")
        self.prediction, self.clip_x0 = prediction, clip_x0
        self.betas = betas.double()
        self.num_steps = len(betas)
        self.alphas_cumprod = torch.cumprod(1 - self.betas, 0)
        self.alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod[:-1]])
        self.sqrt_alphas_cumprod = self.alphas_cumprod.sqrt()
        self.sqrt_one_minus_alphas_cumprod = (1 - self.alphas_cumprod).sqrt()
        self.posterior_variance = self.betas * (1 - self.alphas_cumprod_prev) / (1 - self.alphas_cumprod)
        self.posterior_mean_coef1 = self.betas * self.alphas_cumprod_prev.sqrt() / (1 - self.alphas_cumprod)
        self.posterior_mean_coef2 = (1 - self.alphas_cumprod_prev) * (1 - self.betas).sqrt() / (1 - self.alphas_cumprod)

    # --- forward process --------------------------------------------------------------------------
    def q_sample(self, x_start: torch.Tensor, t: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) ε: x_start (B, ...), t (B,) -> (B, ...)."""
        noise = torch.randn_like(x_start) if noise is None else noise
        return _at(self.sqrt_alphas_cumprod, t, x_start) * x_start + _at(self.sqrt_one_minus_alphas_cumprod, t, x_start) * noise

    def q_posterior_mean(self, x_start: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Mean of q(x_{t-1} | x_t, x_0)."""
        return _at(self.posterior_mean_coef1, t, x_t) * x_start + _at(self.posterior_mean_coef2, t, x_t) * x_t

    # --- model parameterisation -------------------------------------------------------------------
    def x0_from_eps(self, x_t, t, eps):
        return (x_t - _at(self.sqrt_one_minus_alphas_cumprod, t, x_t) * eps) / _at(self.sqrt_alphas_cumprod, t, x_t)

    def eps_from_x0(self, x_t, t, x0):
        return (x_t - _at(self.sqrt_alphas_cumprod, t, x_t) * x0) / _at(self.sqrt_one_minus_alphas_cumprod, t, x_t)

    def split(self, x_t: torch.Tensor, t: torch.Tensor, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(ε̂, x̂0) from a model output `out` of this parameterisation at x_t, t."""
        if self.prediction == "eps":
            return out, self.x0_from_eps(x_t, t, out)
        if self.prediction == "x0":
            return self.eps_from_x0(x_t, t, out), out
        a, s = _at(self.sqrt_alphas_cumprod, t, x_t), _at(self.sqrt_one_minus_alphas_cumprod, t, x_t)
        return s * x_t + a * out, a * x_t - s * out

    def target(self, x_start: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """What the model is trained to output for x_t = q_sample(x_start, t, noise)."""
        if self.prediction == "eps":
            return noise
        if self.prediction == "x0":
            return x_start
        a, s = _at(self.sqrt_alphas_cumprod, t, x_start), _at(self.sqrt_one_minus_alphas_cumprod, t, x_start)
        return a * noise - s * x_start

    def min_snr_weight(self, t: torch.Tensor, gamma: float) -> torch.Tensor:
        """Min-SNR-γ loss weights (B,) of Hang et al. for this parameterisation: the per-step weight that
        makes the loss min(SNR_t, γ) x (x0 error)², capping the low-noise steps' share of the gradient."""
        snr = (self.alphas_cumprod / (1 - self.alphas_cumprod)).to(t.device)[t]
        capped = snr.clamp(max=gamma)
        return {"eps": capped / snr, "x0": capped, "v": capped / (snr + 1)}[self.prediction].float()

    def predict(self, model: Callable, x_t: torch.Tensor, t: torch.Tensor, model_kwargs: dict | None = None):
        """(ε̂, x̂0) from the model's output, x̂0 clipped to ±clip_x0 when set (ε̂ recomputed to match)."""
        eps, x0 = self.split(x_t, t, model(x_t, t, **(model_kwargs or {})))
        if self.clip_x0 is not None:
            x0 = x0.clamp(-self.clip_x0, self.clip_x0)
            eps = self.eps_from_x0(x_t, t, x0)
        return eps, x0

    # --- training ---------------------------------------------------------------------------------
    def training_losses(self, model: Callable, x_start: torch.Tensor, t: torch.Tensor, model_kwargs: dict | None = None,
                        noise: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """L_diff (eq. 9) per sample: mean squared error of the model's target (ε, x0 or v) over the
        entries where `mask` (broadcastable to x_start) is True. Returns loss (B,), x_t, output."""
        noise = torch.randn_like(x_start) if noise is None else noise
        x_t = self.q_sample(x_start, t, noise)
        out = model(x_t, t, **(model_kwargs or {}))
        err = (out - self.target(x_start, t, noise)) ** 2
        if mask is None:
            loss = err.flatten(1).mean(1)
        else:
            m = mask.expand_as(err).to(err.dtype)
            loss = (err * m).flatten(1).sum(1) / m.flatten(1).sum(1)
        return {"loss": loss, "x_t": x_t, "output": out, "noise": noise}

    # --- sampling ---------------------------------------------------------------------------------
    def _start(self, shape, noise, generator, device):
        if noise is not None:
            return noise
        return torch.randn(shape, generator=generator, device=device)

    @torch.no_grad()
    def p_sample_step(self, model: Callable, x: torch.Tensor, i: int, model_kwargs: dict | None = None,
                      generator: torch.Generator | None = None, z: torch.Tensor | None = None):
        """One DDPM step (eq. 7-8) from x = x_i (B, ...) at 0-based step i: (x_{i-1}, x̂0). x_{i-1} is
        the posterior mean of q(x_{i-1} | x_i, x̂0) plus sqrt(Σ_i) z (z drawn from `generator` unless
        given); at i = 0 it is the mean alone."""
        t = torch.full((x.shape[0],), i, dtype=torch.int64, device=x.device)
        _, x0 = self.predict(model, x, t, model_kwargs)
        mean = self.q_posterior_mean(x0, x, t)
        if i == 0:
            return mean, x0
        if z is None:
            z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return mean + _at(self.posterior_variance, t, x).sqrt() * z, x0

    @torch.no_grad()
    def p_sample_loop(self, model: Callable, shape: tuple, model_kwargs: dict | None = None,
                      noise: torch.Tensor | None = None, t_start: int | None = None,
                      generator: torch.Generator | None = None, device="cpu", record: bool = False):
        """DDPM ancestral sampling (eq. 7-8) from step t_start (default N - 1) down to 0. `noise`
        is x at t_start (pure noise, or a partially noised x_t for enhancement). Returns x0, and
        with record=True also the x0-estimate at every step as a list of (t, x̂0)."""
        t_start = self.num_steps - 1 if t_start is None else t_start
        x = self._start(shape, noise, generator, device)
        trajectory = []
        for i in range(t_start, -1, -1):
            x, x0 = self.p_sample_step(model, x, i, model_kwargs, generator)
            if record:
                trajectory.append((i, x0))
        return (x, trajectory) if record else x

    def ddim_timesteps(self, steps: int, t_start: int | None = None) -> list[int]:
        """`steps` evenly spaced time steps from t_start (default N - 1) down to 0."""
        t_start = self.num_steps - 1 if t_start is None else t_start
        if not 1 <= steps <= t_start + 1:
            raise ValueError(f"DDIM steps must be in [1, {t_start + 1}], got {steps}")
        return sorted({round(v) for v in torch.linspace(t_start, 0, steps).tolist()}, reverse=True)

    @torch.no_grad()
    def ddim_step(self, model: Callable, x: torch.Tensor, i: int, i_next: int | None,
                  model_kwargs: dict | None = None):
        """One deterministic DDIM step (η = 0) from x = x_i at step i to step i_next < i (None: to the
        clean end, abar = 1): (x_{i_next}, x̂0), x_{i_next} = sqrt(abar_next) x̂0 + sqrt(1 - abar_next) ε̂."""
        t = torch.full((x.shape[0],), i, dtype=torch.int64, device=x.device)
        eps, x0 = self.predict(model, x, t, model_kwargs)
        abar_next = self.alphas_cumprod[i_next] if i_next is not None else torch.tensor(1.0, dtype=torch.float64)
        return abar_next.sqrt() * x0 + (1 - abar_next).sqrt() * eps, x0

    @torch.no_grad()
    def ddim_sample_loop(self, model: Callable, shape: tuple, steps: int = 50, model_kwargs: dict | None = None,
                         noise: torch.Tensor | None = None, t_start: int | None = None,
                         generator: torch.Generator | None = None, device="cpu", record: bool = False):
        """DDIM (Song et al.) with η = 0 over `steps` time steps: deterministic given the start noise."""
        x = self._start(shape, noise, generator, device)
        times = self.ddim_timesteps(steps, t_start)
        trajectory = []
        for i, i_next in zip(times, [*times[1:], None]):
            x, x0 = self.ddim_step(model, x, i, i_next, model_kwargs)
            if record:
                trajectory.append((i, x0))
        return (x, trajectory) if record else x
