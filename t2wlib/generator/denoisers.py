"""The denoisers by name, as `GeneratorConfig.dit` names them: a DiT size of `dit.DIT_SIZES`, or
"mlp-film", the proposal's MLP with FiLM conditioning (`mlp_denoiser.py`). Both take the same
inputs (block tokens x_t (B, N, s), time t (B,), text v_c (B, D)) and return (B, N, s)."""

from __future__ import annotations

from .denoiser import Denoiser
from .dit import DIT_SIZES, WeightDiT
from .mlp_denoiser import FiLMMLP

MLP_FILM = "mlp-film"


def build_denoiser(name: str, num_tokens: int, block_size: int, text_dim: int, text_path: bool = False,
                   classes: int = 0) -> Denoiser:
    """A fresh denoiser by name, for `num_tokens` blocks of `block_size` weights and text of `text_dim`,
    with the linear text -> x0 path when `text_path`, conditioned on sets of up to `classes` class
    embeddings when that is > 0 (a DiT only: the MLP has no tokens to add them to) (denoiser.py)."""
    if name == MLP_FILM:
        if classes:
            raise ValueError(f"denoiser {MLP_FILM!r} takes the pooled v_c only; a class-set condition needs a DiT: "
                             f"{', '.join(DIT_SIZES)}")
        return FiLMMLP(num_tokens, block_size, text_dim, text_path=text_path)
    if name not in DIT_SIZES:
        raise KeyError(f"unknown denoiser {name!r}; available: {', '.join([*DIT_SIZES, MLP_FILM])}")
    return WeightDiT(num_tokens, block_size, text_dim, DIT_SIZES[name], text_path, classes)
