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

Conditioning on the set of class embeddings (`classes` > 0, as Tina does) in place of the pooled v_c
alone: the condition is then the task's class embeddings e (B, k, D), zero rows padding tasks of
fewer than `classes` classes. v_c is pooled from them by Alg. 1 (`pooled`) for the adaLN condition
and the text path, and each class also becomes a token of its own (`class_tokens`): its embedding
plus a learned slot for its place in the task's class order, which is the order of the head's
output rows, so a block token can attend to the class whose row it holds.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..data.task_condition import fuse_features
from .ridge import RidgeMap


def present_classes(e: torch.Tensor) -> torch.Tensor:
    """Which rows of class sets e (B, k, D) are classes, not zero padding: (B, k) bool. A set with no
    non-zero row (the null condition before its vector is trained) counts every row."""
    present = e.ne(0).any(-1)
    return present | ~present.any(-1, keepdim=True)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer steps t (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float().unsqueeze(1) * freqs
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class Denoiser(nn.Module):
    """What every T2W denoiser shares: the embeddings of the timestep and of the task text vector v_c,
    the standardisation of v_c, and the null text vector of classifier-free guidance.

    Subclasses map (x_t (B, N, s), t (B,), c) -> ε or x0 estimate (B, N, s), where the condition c is
    v_c (B, D), or with `classes` > 0 the class embeddings (B, k <= classes, D) (module docstring)."""

    def __init__(self, num_tokens: int, block_size: int, text_dim: int, hidden: int, text_path: bool = False,
                 classes: int = 0):
        super().__init__()
        self.num_tokens, self.block_size, self.text_dim, self.classes = num_tokens, block_size, text_dim, classes
        self.t_embed = nn.Sequential(nn.Linear(256, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.c_embed = nn.Sequential(nn.Linear(text_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.null_text = nn.Parameter(torch.zeros(text_dim))  # classifier-free guidance's "no task"
        # v_c is standardised per dimension with the training tasks' statistics (`fit_text_norm`)
        # before c_embed: task text vectors are weighted means of related prompts, so they differ
        # little from task to task (a small per-dimension spread around a large common mean).
        # Buffers: saved with the weights; the identity until fitted.
        self.register_buffer("text_mean", torch.zeros(text_dim))
        self.register_buffer("text_std", torch.ones(text_dim))
        if classes:  # class embeddings get statistics of their own: theirs is the class-to-class spread
            self.class_embed = nn.Sequential(nn.Linear(text_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
            self.slot = nn.Parameter(torch.randn(classes, hidden) * 0.02)  # (classes, h): the class's place
            self.register_buffer("class_mean", torch.zeros(text_dim))
            self.register_buffer("class_std", torch.ones(text_dim))
        self.text_path = nn.Linear(text_dim, num_tokens * block_size) if text_path else None
        if self.text_path is not None:  # zero until init_text_path: the untrained model predicts 0
            nn.init.zeros_(self.text_path.weight)
            nn.init.zeros_(self.text_path.bias)

    def network(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """The subclass's prediction (B, N, s) for x_t (B, N, s), t (B,) and the condition c."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, t: torch.Tensor, v_c: torch.Tensor) -> torch.Tensor:
        """x_t (B, N, s), t (B,) and the condition v_c: (B, D), or with `classes` the class sets (B, k, D)."""
        out = self.network(x, t, v_c)
        if self.text_path is None:
            return out
        return out + self.text_path((self.pooled(v_c) - self.text_mean) / self.text_std).view_as(out)

    def pooled(self, c: torch.Tensor) -> torch.Tensor:
        """The task text vector v_c (B, D) of a condition: c itself, or Alg. 1 over a class set."""
        return fuse_features(c, present_classes(c)) if c.ndim == 3 else c

    def class_tokens(self, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Class sets e (B, k, D) -> one token per class (B, k, h), and which are classes (B, k)."""
        z = self.class_embed((e - self.class_mean) / self.class_std) + self.slot[:e.shape[1]]
        return z, present_classes(e)

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
    def fit_text_norm(self, c: torch.Tensor, eps: float = 1e-6) -> None:
        """Set the condition's standardisation from the training tasks' conditions: their text vectors
        v_c (T, D), or their class sets (T, k, D), whose classes also set the class tokens' own."""
        v_c = self.pooled(c)
        self.text_mean.copy_(v_c.mean(0))
        self.text_std.copy_(v_c.std(0).clamp_min(eps))
        if self.classes:
            rows = c[present_classes(c)]  # (classes in all tasks, D)
            self.class_mean.copy_(rows.mean(0))
            self.class_std.copy_(rows.std(0).clamp_min(eps))

    def drop_text(self, c: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
        """Replace each task's condition c (B, D) or (B, k, D) by the null text vector (every class of a
        set) with probability p (CFG training)."""
        if p <= 0:
            return c
        drop = torch.rand(c.shape[0], *[1] * (c.ndim - 1), generator=generator, device=c.device) < p
        return torch.where(drop, self.null_text.expand_as(c), c)

    def condition(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Check shapes; embed t (B,) and the pooled condition v_c (B, D) -> (t_tok, c_tok), each (B, h)."""
        wanted = f"(B, k <= {self.classes}, {self.text_dim}) class embeddings" if self.classes else f"v_c (B, {self.text_dim})"
        fits = c.ndim == 3 and 1 <= c.shape[1] <= self.classes if self.classes else c.ndim == 2
        if x.shape[1:] != (self.num_tokens, self.block_size) or not fits or c.shape[-1] != self.text_dim:
            raise ValueError(f"{type(self).__name__} expects x (B, {self.num_tokens}, {self.block_size}) and {wanted}; "
                             f"got x {tuple(x.shape)}, condition {tuple(c.shape)}")
        return self.t_embed(timestep_embedding(t, 256)), self.c_embed((self.pooled(c) - self.text_mean) / self.text_std)


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
