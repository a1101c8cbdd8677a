"""Weight tokenizer (paper §3.1, §4.1): heads θ (T, P) <-> normalised blocks (T, N, block_size).

Layer-wise chunking: each layer of the flat layout (W1, b1, W2, b2; see heads/adapter.py) is cut into
blocks of `block_size` consecutive values, its last block zero-padded, so no block mixes layers.
Normalisation, with statistics from the seen zoo only:
  "minmax"   (paper): per block b, lo_b / hi_b over all its values in the zoo; x -> 2 (x - lo) / (hi - lo) - 1.
  "standard" (the proposal's variant): per parameter j, x -> (x - mu_j) / sigma_j, with sigma_j
             floored at STD_FLOOR x the median sigma of its layer. The floor matters for L_sym: the
             symmetry moves a value between parameters, and in token space it is rescaled by
             sigma_from / sigma_to; a parameter the zoo never changes (a feature that is always 0 in
             digits: sigma = 0) made that ratio ~1e10 and L_sym 1e18 from the first step.
Both are affine per value, so decode(encode(θ)) = θ up to rounding, and the hidden-unit symmetry
acts on tokens as decode -> permute -> encode (`permute`); on noise-like tensors (no offset) only
the scale part applies (`linear=True`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..heads.adapter import HeadSpec, permute_hidden

MODES = ("minmax", "standard")
STD_FLOOR = 0.1


def block_layout(spec: HeadSpec, block_size: int) -> torch.Tensor:
    """index (N, block_size): position in θ of each token entry, -1 for padding."""
    if block_size < 1:
        raise ValueError(f"block_size must be positive, got {block_size}")
    rows, start = [], 0
    for shape in spec.shapes.values():
        n = int(torch.Size(shape).numel())
        blocks = -(-n // block_size)
        idx = torch.full((blocks * block_size,), -1, dtype=torch.int64)
        idx[:n] = torch.arange(start, start + n)
        rows.append(idx.view(blocks, block_size))
        start += n
    return torch.cat(rows)


def floored_std(theta: torch.Tensor, spec: HeadSpec) -> torch.Tensor:
    """Per-parameter σ (P,) of heads θ (T, P), each floored at STD_FLOOR x its layer's median σ."""
    std, start = theta.double().std(0), 0
    for shape in spec.shapes.values():
        n = int(torch.Size(shape).numel())
        std[start:start + n] = std[start:start + n].clamp_min(STD_FLOOR * float(std[start:start + n].median()))
        start += n
    return std.clamp_min(1e-12)


@dataclass
class WeightTokenizer:
    """Fitted tokenizer: layout plus per-entry scale and offset, x_token = (x - offset) / scale."""

    spec: HeadSpec
    block_size: int
    mode: str
    index: torch.Tensor  # (N, block_size) int64, -1 = padding
    offset: torch.Tensor  # (N, block_size)
    scale: torch.Tensor  # (N, block_size), > 0

    @property
    def num_tokens(self) -> int:
        return self.index.shape[0]

    @property
    def mask(self) -> torch.Tensor:
        """(N, block_size) bool: True for real parameters, False for padding."""
        return self.index >= 0

    @classmethod
    def fit(cls, theta: torch.Tensor, spec: HeadSpec, block_size: int, mode: str = "minmax") -> WeightTokenizer:
        """Statistics from θ (T, P), the seen zoo."""
        if mode not in MODES:
            raise ValueError(f"unknown tokenizer mode {mode!r}; allowed: {', '.join(MODES)}")
        if theta.ndim != 2 or theta.shape[1] != spec.num_params or theta.shape[0] < 2:
            raise ValueError(f"fit needs θ of shape (T >= 2, {spec.num_params}), got {tuple(theta.shape)}")
        index = block_layout(spec, block_size)
        mask = index >= 0
        x = theta.double()[:, index.clamp_min(0)]  # (T, N, block)
        if mode == "minmax":
            lo = x.masked_fill(~mask, float("inf")).amin(dim=(0, 2))  # (N,)
            hi = x.masked_fill(~mask, float("-inf")).amax(dim=(0, 2))
            half = ((hi - lo) / 2).clamp_min(1e-12)  # a constant block keeps a unit-free scale
            offset = ((hi + lo) / 2).unsqueeze(1).expand_as(index)
            scale = half.unsqueeze(1).expand_as(index)
        else:
            offset, scale = x.mean(0), floored_std(theta, spec)[index.clamp_min(0)]
        offset, scale = offset.where(mask, 0.0), scale.where(mask, 1.0)
        return cls(spec, block_size, mode, index, offset.contiguous(), scale.contiguous())

    def encode(self, theta: torch.Tensor) -> torch.Tensor:
        """θ (..., P) -> tokens (..., N, block_size), padding 0. Computed in float64, returned in θ's dtype."""
        x = theta.double()[..., self.index.clamp_min(0)]
        tokens = ((x - self.offset) / self.scale).where(self.mask, 0.0)
        return tokens.to(theta.dtype)

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (..., N, block_size) -> θ (..., P); padding entries are ignored."""
        return self._scatter(tokens.double() * self.scale + self.offset).to(tokens.dtype)

    def permute(self, tokens: torch.Tensor, perm: torch.Tensor, linear: bool = False) -> torch.Tensor:
        """The hidden-unit permutation g acting on tokens (..., N, block): g.x for weights, or only
        its linear part for noise/ε-like tensors (`linear=True`: offsets do not apply)."""
        if linear:
            theta = self._scatter(tokens.double() * self.scale)
            return (self._gather(permute_hidden(theta, perm, self.spec)) / self.scale).where(self.mask, 0.0).to(tokens.dtype)
        return self.encode(permute_hidden(self.decode(tokens), perm, self.spec))

    def _scatter(self, x: torch.Tensor) -> torch.Tensor:
        """(..., N, block) -> (..., P), dropping padding."""
        out = torch.zeros(*x.shape[:-2], self.spec.num_params, dtype=x.dtype, device=x.device)
        out[..., self.index[self.mask]] = x[..., self.mask]
        return out

    def _gather(self, theta: torch.Tensor) -> torch.Tensor:
        """(..., P) -> (..., N, block), padding holds arbitrary values (mask it)."""
        return theta[..., self.index.clamp_min(0)]

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors for a checkpoint (with `config()` for the rest)."""
        return {"index": self.index, "offset": self.offset, "scale": self.scale}

    def config(self) -> dict:
        return {"spec": self.spec.to_json(), "block_size": self.block_size, "mode": self.mode}

    @classmethod
    def from_state(cls, config: dict, state: dict[str, torch.Tensor]) -> WeightTokenizer:
        return cls(HeadSpec.from_json(config["spec"]), config["block_size"], config["mode"], state["index"],
                   state["offset"].double(), state["scale"].double())
