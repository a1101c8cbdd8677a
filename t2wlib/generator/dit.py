"""The T2W denoiser: a mask-free diffusion transformer over weight-block tokens (paper §3.1-3.2).

Input x (B, N, s): N normalised weight blocks of size s (tokenizer.py). Each block has its own linear
map to the hidden size h (eq. 5: π^i), plus a learned position embedding; the output side mirrors
it with a dedicated map back to s per block.

"Prior attention", the mechanism the paper names but does not specify, is implemented here as:
  1. the task text vector v_c and the timestep are embedded as two *prior tokens* prepended to the
     N block tokens, so every layer's (mask-free) self-attention lets each block attend to the task
     and the noise level, and lets the task token gather evidence from all blocks;
  2. their sum also modulates every block through adaLN-Zero (DiT's conditioning: per-layer shift,
     scale and gate from the condition, the gates initialised to zero so each block starts as the
     identity).
With `classes` > 0 the task's classes are prior tokens as well, one each (denoiser.py), between the
two above and the blocks; the attention skips the zero rows that pad a smaller task.
Classifier-free guidance (an option no public weight generator offers): a learned null text vector
replaces v_c with probability `text_dropout` in training (`drop_text`); `denoiser.guided` mixes the
conditional and unconditional predictions at sampling.
Sizes live in `DIT_SIZES` by name; `denoisers.build_denoiser` builds one (or the MLP + FiLM
alternative) from its name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .denoiser import Denoiser


@dataclass(frozen=True)
class DiTConfig:
    """Transformer size: hidden width h, depth (blocks), attention heads, MLP expansion."""

    hidden: int
    depth: int
    heads: int
    mlp_ratio: float = 4.0


DIT_SIZES = {
    # Trains on 2 CPU cores within the cpu profile's budget.
    "cpu-small": DiTConfig(hidden=128, depth=4, heads=4),
    # Wider and deeper than cpu-small: the "larger model" point of scripts/scaling_study.py.
    "cpu-base": DiTConfig(hidden=192, depth=6, heads=6),
    # Between smoke and cpu: for tests and quick experiments.
    "tiny": DiTConfig(hidden=32, depth=2, heads=2),
    # The paper's token width, h = 1024 (§4.1); depth and heads follow DiT-L.
    "paper": DiTConfig(hidden=1024, depth=24, heads=16),
}


def _modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class DiTBlock(nn.Module):
    """Pre-LN transformer block with adaLN-Zero conditioning (attention is mask-free)."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        h = cfg.hidden
        self.norm1 = nn.LayerNorm(h, elementwise_affine=False, eps=1e-6)
        self.attn = nn.MultiheadAttention(h, cfg.heads, batch_first=True)
        self.norm2 = nn.LayerNorm(h, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(h, int(h * cfg.mlp_ratio)), nn.GELU(approximate="tanh"),
                                 nn.Linear(int(h * cfg.mlp_ratio), h))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(h, 6 * h))
        nn.init.zeros_(self.ada[1].weight)
        nn.init.zeros_(self.ada[1].bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, L, h), cond (B, h) -> (B, L, h); `skip` (B, L) bool marks tokens no query attends to."""
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(cond).chunk(6, dim=1)
        y = _modulate(self.norm1(x), shift1, scale1)
        x = x + gate1.unsqueeze(1) * self.attn(y, y, y, key_padding_mask=skip, need_weights=False)[0]
        return x + gate2.unsqueeze(1) * self.mlp(_modulate(self.norm2(x), shift2, scale2))


class WeightDiT(Denoiser):
    """ε (or x0) predictor for weight tokens: (x_t (B, N, s), t (B,), v_c (B, D) or class embeddings
    (B, k, D)) -> (B, N, s)."""

    def __init__(self, num_tokens: int, block_size: int, text_dim: int, cfg: DiTConfig, text_path: bool = False,
                 classes: int = 0):
        super().__init__(num_tokens, block_size, text_dim, cfg.hidden, text_path, classes)
        N, s, h = num_tokens, block_size, cfg.hidden
        self.cfg = cfg
        # eq. 5: a dedicated linear map per block, stored as one (N, s, h) tensor (a batched einsum).
        self.in_weight = nn.Parameter(torch.randn(N, s, h) / math.sqrt(s))
        self.in_bias = nn.Parameter(torch.zeros(N, h))
        self.pos = nn.Parameter(torch.randn(N + 2, h) * 0.02)  # 2 prior tokens + N blocks
        self.blocks = nn.ModuleList(DiTBlock(cfg) for _ in range(cfg.depth))
        self.norm_out = nn.LayerNorm(h, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.Sequential(nn.SiLU(), nn.Linear(h, 2 * h))
        nn.init.zeros_(self.ada_out[1].weight)
        nn.init.zeros_(self.ada_out[1].bias)
        # Output maps start at zero (adaLN-Zero's spirit): the untrained model predicts 0.
        self.out_weight = nn.Parameter(torch.zeros(N, h, s))
        self.out_bias = nn.Parameter(torch.zeros(N, s))

    def network(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        t_tok, c_tok = self.condition(x, t, c)  # (B, h) each
        tokens = torch.einsum("bns,nsh->bnh", x, self.in_weight) + self.in_bias  # (B, N, h)
        z = torch.cat([c_tok.unsqueeze(1), t_tok.unsqueeze(1), tokens], dim=1) + self.pos  # (B, N + 2, h)
        skip = None
        if self.classes:  # (B, 2 + k + N, h), the padding rows skipped
            class_tok, present = self.class_tokens(c)
            z = torch.cat([z[:, :2], class_tok, z[:, 2:]], dim=1)
            skip = torch.cat([torch.zeros_like(z[:, :2, 0], dtype=torch.bool), ~present,
                              torch.zeros_like(z[:, :self.num_tokens, 0], dtype=torch.bool)], dim=1)
        cond = t_tok + c_tok
        for block in self.blocks:
            z = block(z, cond, skip)
        shift, scale = self.ada_out(cond).chunk(2, dim=1)
        z = _modulate(self.norm_out(z[:, -self.num_tokens:]), shift, scale)  # drop the prior tokens: (B, N, h)
        return torch.einsum("bnh,nhs->bns", z, self.out_weight) + self.out_bias


