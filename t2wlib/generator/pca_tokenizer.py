"""The compact token space: the seen zoo's principal components, cut into tokens.

A head θ (P,) is standardised per parameter (the "standard" tokenizer's mean and floored σ), projected
on the top K principal directions of the seen heads, and scaled, in one of two modes:
  * "pca-global": every coordinate divided by one scale, the root mean square of the K coordinates'
    standard deviations over the seen zoo, so the coordinates average unit variance and keep the
    zoo's proportions (the leading directions large, the trailing ones small);
  * "pca": each coordinate divided by its own standard deviation (whitened), so every one has unit
    variance and the denoiser's loss weighs the trailing directions, mostly the zoo's task-to-task
    noise on a small zoo, as much as the leading ones.
The K coordinates are cut into ceil(K / block_size) tokens of block_size, the last one zero-padded.

Why: the heads' task-to-task variation lives in far fewer directions than P; block tokens spend most of
a denoiser's parameters on per-block input and output maps (N x s x h) for directions the zoo never
uses, while here a token narrower than the denoiser's width can carry all of its coordinates through
it. What it costs is the variation outside the top K directions: decode(encode(θ)) is θ's projection,
not θ (figures/<profile>/convergence.md reports how trained heads score projected).

Same interface as tokenizer.WeightTokenizer (fit, encode, decode, permute, mask, state), so the
trainer, the losses and the sampler take either.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..heads.adapter import HeadSpec, permute_hidden
from .tokenizer import floored_std

WHITENED_MODE = "pca"
GLOBAL_MODE = "pca-global"
PCA_MODES = (GLOBAL_MODE, WHITENED_MODE)


@dataclass
class PrincipalTokenizer:
    """Fitted compact tokenizer: x_token = ((θ - mean) / std) @ basis.T / component_std, in tokens
    (component_std is one value repeated in "pca-global" mode)."""

    spec: HeadSpec
    block_size: int
    mean: torch.Tensor  # (P,) float64
    std: torch.Tensor  # (P,) float64, > 0
    basis: torch.Tensor  # (K, P) float32, orthonormal rows: the principal directions, largest first
    component_std: torch.Tensor  # (K,) float64, > 0: the coordinates' divisors
    mode: str = GLOBAL_MODE

    @property
    def components(self) -> int:
        return self.basis.shape[0]

    @property
    def num_tokens(self) -> int:
        return -(-self.components // self.block_size)

    @property
    def mask(self) -> torch.Tensor:
        """(N, block_size) bool: True for real coordinates, False for the last token's padding."""
        return (torch.arange(self.num_tokens * self.block_size) < self.components).view(self.num_tokens, self.block_size)

    @classmethod
    def fit(cls, theta: torch.Tensor, spec: HeadSpec, block_size: int, components: int,
            mode: str = GLOBAL_MODE) -> PrincipalTokenizer:
        """Statistics and directions from θ (T, P), the seen zoo, scaled as `mode` says. The directions come from the
        eigendecomposition of the (T, T) Gram matrix of the standardised heads, which for T << P
        costs a fraction of an SVD of the (T, P) matrix."""
        if theta.ndim != 2 or theta.shape[1] != spec.num_params or theta.shape[0] < 2:
            raise ValueError(f"fit needs θ of shape (T >= 2, {spec.num_params}), got {tuple(theta.shape)}")
        if block_size < 1:
            raise ValueError(f"block_size must be positive, got {block_size}")
        if mode not in PCA_MODES:
            raise ValueError(f"unknown principal-component mode {mode!r}; allowed: {', '.join(PCA_MODES)}")
        rank = min(theta.shape[0] - 1, spec.num_params)
        if not 1 <= components <= rank:
            raise ValueError(f"{components} principal components asked for; allowed: 1 to {rank} "
                             f"(the {theta.shape[0]} seen heads span at most {rank} directions)")
        mean, std = theta.double().mean(0), floored_std(theta, spec)
        x = (theta.double() - mean) / std  # (T, P)
        evals, evecs = torch.linalg.eigh(x @ x.T)  # ascending
        evals, evecs = evals.flip(0)[:components].clamp_min(1e-12), evecs.flip(1)[:, :components]
        singular = evals.sqrt()  # (K,)
        basis = (evecs.T @ x) / singular.unsqueeze(1)  # (K, P), orthonormal rows
        component_std = singular / (len(theta) - 1) ** 0.5  # (K,): each coordinate's σ over the zoo
        if mode == GLOBAL_MODE:
            component_std = torch.full_like(component_std, float(component_std.pow(2).mean().sqrt()))
        return cls(spec, block_size, mean, std, basis.float().contiguous(), component_std, mode)

    def _coordinates(self, theta: torch.Tensor, offset: bool = True) -> torch.Tensor:
        """(..., P) -> unit-variance coordinates (..., K), float64."""
        x = (theta.double() - self.mean) if offset else theta.double()
        return (x / self.std) @ self.basis.double().T / self.component_std

    def _tokens(self, coords: torch.Tensor) -> torch.Tensor:
        pad = self.num_tokens * self.block_size - self.components
        return torch.nn.functional.pad(coords, (0, pad)).view(*coords.shape[:-1], self.num_tokens, self.block_size)

    def _heads(self, tokens: torch.Tensor, offset: bool = True) -> torch.Tensor:
        """tokens (..., N, s) -> θ (..., P) float64; padding ignored."""
        coords = tokens.double().flatten(-2)[..., :self.components] * self.component_std
        x = (coords @ self.basis.double()) * self.std
        return x + self.mean if offset else x

    def encode(self, theta: torch.Tensor) -> torch.Tensor:
        """θ (..., P) -> tokens (..., N, block_size), padding 0, in θ's dtype."""
        return self._tokens(self._coordinates(theta)).to(theta.dtype)

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (..., N, block_size) -> θ (..., P), the projection of the encoded head."""
        return self._heads(tokens).to(tokens.dtype)

    def permute(self, tokens: torch.Tensor, perm: torch.Tensor, linear: bool = False) -> torch.Tensor:
        """The hidden-unit permutation g on tokens, through θ: decode, permute, encode (projected back
        on the K directions, which g need not preserve); `linear=True` for noise/ε-like tensors."""
        theta = permute_hidden(self._heads(tokens, offset=not linear), perm, self.spec)
        return self._tokens(self._coordinates(theta, offset=not linear)).to(tokens.dtype)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean, "std": self.std, "basis": self.basis, "component_std": self.component_std}

    def config(self) -> dict:
        return {"spec": self.spec.to_json(), "block_size": self.block_size, "mode": self.mode,
                "components": self.components}

    @classmethod
    def from_state(cls, config: dict, state: dict[str, torch.Tensor]) -> PrincipalTokenizer:
        if config["mode"] not in PCA_MODES:
            raise ValueError(f"unknown principal-component mode {config['mode']!r}; allowed: {', '.join(PCA_MODES)}")
        tok = cls(HeadSpec.from_json(config["spec"]), config["block_size"], state["mean"].double(),
                  state["std"].double(), state["basis"].float(), state["component_std"].double(), config["mode"])
        expected = (config["components"], tok.spec.num_params)
        if tuple(tok.basis.shape) != expected or tok.mean.shape != tok.std.shape or len(tok.component_std) != expected[0]:
            raise ValueError(f"PCA tokenizer state does not fit its config: basis {tuple(tok.basis.shape)}, "
                             f"expected {expected}")
        return tok
