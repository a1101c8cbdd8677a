"""The proposal's alternative denoiser: an MLP over the whole flattened token vector, conditioned on
(timestep, task text) by FiLM, for the ablation "DiT vs MLP + FiLM" (04_ablation).

x (B, N, s) is flattened to (B, N·s), mapped to the width h, passed through residual blocks
LayerNorm -> FiLM (per-feature scale and shift from the condition) -> Linear -> SiLU -> Linear, and
mapped back. No attention and no per-block maps: the comparison isolates the transformer's
contribution. As in the DiT, the output map starts at zero (the untrained model predicts 0) and the
condition is t_tok + c_tok from the shared `Denoiser` embeddings.
"""

from __future__ import annotations

import torch
from torch import nn

from .denoiser import Denoiser


class FiLMBlock(nn.Module):
    """Residual MLP block with FiLM conditioning: x (B, h), cond (B, h) -> (B, h)."""

    def __init__(self, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False)
        self.film = nn.Linear(hidden, 2 * hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.SiLU(), nn.Linear(2 * hidden, hidden))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(cond).chunk(2, dim=1)
        return x + self.mlp(self.norm(x) * (1 + scale) + shift)


class FiLMMLP(Denoiser):
    """ε (or x0) predictor: (x_t (B, N, s), t (B,), v_c (B, D)) -> (B, N, s), an MLP with FiLM."""

    def __init__(self, num_tokens: int, block_size: int, text_dim: int, hidden: int = 512, depth: int = 4,
                 text_path: bool = False):
        super().__init__(num_tokens, block_size, text_dim, hidden, text_path)
        width = num_tokens * block_size
        self.inp = nn.Linear(width, hidden)
        self.blocks = nn.ModuleList(FiLMBlock(hidden) for _ in range(depth))
        self.norm_out = nn.LayerNorm(hidden, elementwise_affine=False)
        self.out = nn.Linear(hidden, width)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def network(self, x: torch.Tensor, t: torch.Tensor, v_c: torch.Tensor) -> torch.Tensor:
        t_tok, c_tok = self.condition(x, t, v_c)
        cond = nn.functional.silu(t_tok + c_tok)  # (B, h)
        z = self.inp(x.flatten(1))  # (B, h)
        for block in self.blocks:
            z = block(z, cond)
        return self.out(self.norm_out(z)).view_as(x)
