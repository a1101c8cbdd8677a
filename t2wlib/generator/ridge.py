"""Ridge regression from task text vectors to weights (or weight tokens), in closed form: the Ridge
baseline of Table 1 (methods/baselines.py) and the starting point of the denoiser's linear text
path (denoiser.py), which is why it lives in the generator's layer."""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Ridge strengths tried (on standardised text vectors), and the share of the seen tasks held out to choose one.
RIDGE_ALPHAS = tuple(10.0 ** e for e in range(-4, 3))
RIDGE_VALIDATION = 0.1


@dataclass(frozen=True)
class RidgeMap:
    """θ = ((v_c - text_mean) / text_std) @ W + bias: W (D, P), bias (P,), chosen strength alpha."""

    text_mean: torch.Tensor
    text_std: torch.Tensor
    W: torch.Tensor
    bias: torch.Tensor
    alpha: float

    def __call__(self, v_c: torch.Tensor) -> torch.Tensor:
        """Heads (B, P) for text vectors v_c (B, D)."""
        return (((v_c.double() - self.text_mean) / self.text_std) @ self.W + self.bias).float()


def fit_ridge(v_seen: torch.Tensor, theta_seen: torch.Tensor, alphas=RIDGE_ALPHAS,
              validation: float = RIDGE_VALIDATION) -> RidgeMap:
    """Ridge regression from seen text vectors (S, D) to seen heads (S, P). The strength is the one of
    `alphas` with the least weight MSE on the last `validation` share of the seen rows when fitted on
    the rest (the task order is random already); the map returned is refitted on all of them. Each
    fit takes one eigendecomposition of the (D, D) Gram matrix, which serves every strength."""
    n_val = max(1, round(validation * len(v_seen)))
    if len(v_seen) - n_val < 2:
        raise ValueError(f"ridge regression needs at least {n_val + 2} seen tasks, got {len(v_seen)}")

    def fit(v, theta, alpha_list):
        mean, std = v.double().mean(0), v.double().std(0).clamp_min(1e-6)
        x = (v.double() - mean) / std
        bias = theta.double().mean(0)
        evals, evecs = torch.linalg.eigh(x.T @ x)
        xty = evecs.T @ (x.T @ (theta.double() - bias))  # (D, P) in the eigenbasis
        return [RidgeMap(mean, std, evecs @ (xty / (evals + a).unsqueeze(1)), bias, a) for a in alpha_list]

    candidates = fit(v_seen[:-n_val], theta_seen[:-n_val], alphas)
    errors = [float(((m(v_seen[-n_val:]) - theta_seen[-n_val:]) ** 2).mean()) for m in candidates]
    best = alphas[min(range(len(alphas)), key=errors.__getitem__)]
    return fit(v_seen, theta_seen, [best])[0]
