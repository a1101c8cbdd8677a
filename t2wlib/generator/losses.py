"""T2W's losses besides L_diff (paper §3.3-3.5): L = L_diff + λ1 L_sym + λ2 L_adv.

L_sym (eq. 12): ||ε_φ(g·x_t, t, v_c) - g·ε_φ(x_t, t, v_c)||² for a random hidden-unit permutation g
per sample, applied consistently in token space: affinely to the weights x_t (decode, permute,
encode), linearly to an ε prediction (noise has no offset), affinely to an x0 prediction.
`permutation_augment` (App. A's alternative) instead trains on g·x_0 with plain L_diff.
L_adv (eq. 13): a 4-layer ReLU MLP discriminator D on weight tokens, real zoo weights vs the
generator's x0 estimates; D maximises log D(real) + log(1 - D(gen)), the generator minimises the
non-saturating -log D(gen). They are trained alternately (generator/trainer.py). Each generated sample is
weighted by abar_t, its signal fraction: an x0 estimate from near-pure noise is necessarily blurry,
and without the weight D rejects those trivially and its gradient swamps L_diff (L_diff then stops
falling).
"""

from __future__ import annotations

import torch
import torch.nn.functional as Fn
from torch import nn

from .tokenizers import Tokenizer


def random_permutations(batch: int, hidden: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(batch, hidden) independent random permutations of the hidden units."""
    return torch.argsort(torch.rand(batch, hidden, generator=generator), dim=1)


def _masked_mse(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error per sample over the real (unpadded) token entries: (B, N, s) -> (B,)."""
    m = mask.to(a.dtype)
    return (((a - b) ** 2) * m).flatten(1).sum(1) / m.sum()


def symmetry_loss(model, x_t: torch.Tensor, t: torch.Tensor, model_kwargs: dict, tokenizer: Tokenizer,
                  prediction: str = "eps", generator: torch.Generator | None = None,
                  output: torch.Tensor | None = None) -> torch.Tensor:
    """L_sym per sample (B,). `output` = model(x_t, ...) when already computed (saves a forward)."""
    perm = random_permutations(x_t.shape[0], tokenizer.spec.hidden, generator).to(x_t.device)
    out = model(x_t, t, **model_kwargs) if output is None else output
    out_g = model(tokenizer.permute(x_t, perm), t, **model_kwargs)  # ε_φ(g·x_t)
    g_out = tokenizer.permute(out, perm, linear=prediction == "eps")  # g·ε_φ(x_t)
    return _masked_mse(out_g, g_out, tokenizer.mask.to(x_t.device))


def permutation_augment(x_start: torch.Tensor, tokenizer: Tokenizer,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """g·x_0 for a random g per sample (eq. 10): the augmentation-only alternative to L_sym."""
    perm = random_permutations(x_start.shape[0], tokenizer.spec.hidden, generator).to(x_start.device)
    return tokenizer.permute(x_start, perm)


class Discriminator(nn.Module):
    """D_Φ: a 4-layer ReLU MLP from flattened weight tokens (B, N, s) to a real/fake logit (B,)."""

    def __init__(self, num_tokens: int, block_size: int, width: int = 256):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(num_tokens * block_size, width), nn.ReLU(),
            nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 1),
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.net(tokens).squeeze(-1)


def _weighted_mean(x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    return x.mean() if weight is None else (x * weight).sum() / weight.sum().clamp_min(1e-12)


def discriminator_loss(disc: Discriminator, real: torch.Tensor, fake: torch.Tensor,
                       fake_weight: torch.Tensor | None = None) -> torch.Tensor:
    """-(log D(real) + log(1 - D(fake))), the negative of eq. 13 for D to minimise; fake is detached,
    its samples weighted by `fake_weight` (B,) when given."""
    r, f = disc(real), disc(fake.detach())
    fake_term = Fn.binary_cross_entropy_with_logits(f, torch.zeros_like(f), reduction="none")
    return Fn.binary_cross_entropy_with_logits(r, torch.ones_like(r)) + _weighted_mean(fake_term, fake_weight)


def generator_adversarial_loss(disc: Discriminator, fake: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """-log D(fake), the generator's side of eq. 13 (non-saturating form), a weighted mean over samples."""
    f = disc(fake)
    return _weighted_mean(Fn.binary_cross_entropy_with_logits(f, torch.ones_like(f), reduction="none"), weight)
