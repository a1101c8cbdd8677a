"""What every T2W denoiser shares (paper §3.2): the sinusoidal timestep embedding, the embedding and
standardisation of the task text vector v_c, the learned null text of classifier-free guidance,
the optional linear text path, and `guided`, which mixes conditional and unconditional predictions
at sampling. The DiT (dit.py) and the MLP + FiLM alternative (generator/mlp_denoiser.py) subclass
`Denoiser` and implement its `network`.

The linear text path (x0-prediction only): x̂0 = network(x_t, t, v_c) + A ṽ_c + b, with ṽ_c the
standardised text vector, A and b started from ridge regression of the training tokens on ṽ_c
(`init_text_path`, generator/ridge.py) and trained with the rest. From the first step the estimate
is the closed-form linear one, and the network has only the residual to learn: without the path a
denoiser must first learn the text -> weights map through its attention and MLPs, which is what it
does slowest.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .ridge import RidgeMap


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer steps t (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float().unsqueeze(1) * freqs
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class Denoiser(nn.Module):
    """What every T2W denoiser shares: the embeddings of the timestep and of the task text vector v_c,
    the standardisation of v_c, and the null text vector of classifier-free guidance.

    Subclasses map (x_t (B, N, s), t (B,), v_c (B, D)) -> ε or x0 estimate (B, N, s)."""

    def __init__(self, num_tokens: int, block_size: int, text_dim: int, hidden: int, text_path: bool = False):
        super().__init__()
        self.num_tokens, self.block_size, self.text_dim = num_tokens, block_size, text_dim
        self.t_embed = nn.Sequential(nn.Linear(256, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.c_embed = nn.Sequential(nn.Linear(text_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.null_text = nn.Parameter(torch.zeros(text_dim))  # classifier-free guidance's "no task"
        # v_c is standardised per dimension with the training tasks' statistics (`fit_text_norm`)
        # before c_embed: task text vectors are weighted means of related prompts, so they differ
        # little from task to task (a small per-dimension spread around a large common mean).
        # Buffers: saved with the weights; the identity until fitted.
        self.register_buffer("text_mean", torch.zeros(text_dim))
        self.register_buffer("text_std", torch.ones(text_dim))
        self.text_path = nn.Linear(text_dim, num_tokens * block_size) if text_path else None
        if self.text_path is not None:  # zero until init_text_path: the untrained model predicts 0
            nn.init.zeros_(self.text_path.weight)
            nn.init.zeros_(self.text_path.bias)

    def network(self, x: torch.Tensor, t: torch.Tensor, v_c: torch.Tensor) -> torch.Tensor:
        """The subclass's prediction (B, N, s) for x_t (B, N, s), t (B,), v_c (B, D)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, t: torch.Tensor, v_c: torch.Tensor) -> torch.Tensor:
        out = self.network(x, t, v_c)
        if self.text_path is None:
            return out
        return out + self.text_path((v_c - self.text_mean) / self.text_std).view_as(out)

    @torch.no_grad()
    def init_text_path(self, ridge: RidgeMap) -> None:
        """Start the linear text path at a ridge map fitted on the standardised-text -> flat-token
        regression of the training tasks (its text statistics must be this model's, `fit_text_norm`)."""
        if self.text_path is None:
            raise ValueError("this denoiser was built without a text path")
        same = torch.allclose(ridge.text_mean.float(), self.text_mean) and torch.allclose(ridge.text_std.float(), self.text_std)
        if not same:
            raise ValueError("the ridge map standardises the text differently from the denoiser; fit both on the same tasks")
        self.text_path.weight.copy_(ridge.W.T.float())
        self.text_path.bias.copy_(ridge.bias.float())

    @torch.no_grad()
    def fit_text_norm(self, v_c: torch.Tensor, eps: float = 1e-6) -> None:
        """Set the condition's standardisation from the training tasks' text vectors v_c (T, D)."""
        self.text_mean.copy_(v_c.mean(0))
        self.text_std.copy_(v_c.std(0).clamp_min(eps))

    def drop_text(self, v_c: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
        """Replace each row of v_c (B, D) by the null text vector with probability p (CFG training)."""
        if p <= 0:
            return v_c
        drop = torch.rand(v_c.shape[0], 1, generator=generator, device=v_c.device) < p
        return torch.where(drop, self.null_text.expand_as(v_c), v_c)

    def condition(self, x: torch.Tensor, t: torch.Tensor, v_c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Check shapes; embed t (B,) and v_c (B, D) -> (t_tok, c_tok), each (B, h)."""
        if x.shape[1:] != (self.num_tokens, self.block_size) or v_c.shape[-1] != self.text_dim:
            raise ValueError(f"{type(self).__name__} expects x (B, {self.num_tokens}, {self.block_size}) and v_c "
                             f"(B, {self.text_dim}); got x {tuple(x.shape)}, v_c {tuple(v_c.shape)}")
        return self.t_embed(timestep_embedding(t, 256)), self.c_embed((v_c - self.text_mean) / self.text_std)


def guided(model: Denoiser, scale: float):
    """A model function for the samplers with classifier-free guidance:
    pred = pred(null) + scale * (pred(v_c) - pred(null)); scale 1 is plain conditioning."""
    def fn(x, t, v_c):
        if scale == 1.0:
            return model(x, t, v_c)
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([v_c, model.null_text.expand_as(v_c)]))
        cond, uncond = both.chunk(2)
        return uncond + scale * (cond - uncond)
    return fn
