"""The weight tokenizers by mode, as `GeneratorConfig.tokenizer` names them: block tokens of the
head's own weights ("minmax", the paper's; "standard", the proposal's: tokenizer.py) or the compact
space of the seen zoo's principal components ("pca-global", "pca": pca_tokenizer.py). Both kinds map heads θ
(..., P) to tokens (..., N, s) and back, with the same methods."""

from __future__ import annotations

import torch

from ..heads.adapter import HeadSpec
from .pca_tokenizer import PCA_MODES, PrincipalTokenizer
from .tokenizer import MODES, WeightTokenizer

TOKENIZER_MODES = (*MODES, *PCA_MODES)
Tokenizer = WeightTokenizer | PrincipalTokenizer


def fit_tokenizer(theta: torch.Tensor, spec: HeadSpec, block_size: int, mode: str, components: int = 0) -> Tokenizer:
    """A tokenizer fitted on the seen heads θ (T, P); `components` (K) only for the principal-component modes."""
    if mode in PCA_MODES:
        return PrincipalTokenizer.fit(theta, spec, block_size, components, mode)
    if mode not in MODES:
        raise ValueError(f"unknown tokenizer mode {mode!r}; allowed: {', '.join(TOKENIZER_MODES)}")
    return WeightTokenizer.fit(theta, spec, block_size, mode)


def tokenizer_from_state(config: dict, state: dict[str, torch.Tensor]) -> Tokenizer:
    """A fitted tokenizer from its `config()` and `state_dict()`."""
    if config.get("mode") not in TOKENIZER_MODES:
        raise ValueError(f"unknown tokenizer mode {config.get('mode')!r}; allowed: {', '.join(TOKENIZER_MODES)}")
    return (PrincipalTokenizer if config["mode"] in PCA_MODES else WeightTokenizer).from_state(config, state)
