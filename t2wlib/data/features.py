"""Frozen-backbone features, computed once per (dataset, split, backbone, preprocessing, subset).

The backbone never runs per epoch or per task (docs/ARCHITECTURE.md §7): every later stage reads X (N, F).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import torch
from tqdm.std import tqdm  # text bars: tqdm.auto wants ipywidgets in a kernel, and warns without them

from ..core.tensor_cache import TensorCache
from ..encoders.backbones import Backbone
from .datasets import balanced_indices, load_split
from .image_split import ImageSplit


@dataclass
class FeatureSet:
    """Backbone features of one (sub-sampled) split: X (N, F), labels y (N,), and where they came from."""

    dataset: str
    split: str
    class_names: list[str]
    X: torch.Tensor  # (N, F) float32
    y: torch.Tensor  # (N,) int64
    index: torch.Tensor  # (N,) int64: row i is image index[i] of load_split(dataset, split)


# no_grad, not inference_mode: the features feed autograd later (head training), which refuses
# to save inference tensors.
@torch.no_grad()
def extract_features(images: ImageSplit, backbone: Backbone, image_size: int, batch_size: int = 64,
                     device: str = "cpu", progress: bool = True) -> torch.Tensor:
    """Run the frozen backbone over every image: -> (N, F) float32 on the CPU.

    Array datasets are preprocessed a batch at a time as tensors; file datasets image by image
    through a DataLoader (same transform)."""
    preprocess = backbone.preprocess(image_size)
    if images.array is not None:
        batches = (preprocess(images.uint8_batch(s, s + batch_size)) for s in range(0, len(images), batch_size))
    else:
        loader = torch.utils.data.DataLoader(replace(images, transform=preprocess), batch_size=batch_size)
        batches = (x for x, _ in loader)
    total = -(-len(images) // batch_size)
    out = [backbone.trunk(x.to(device)).float().cpu()
           for x in tqdm(batches, total=total, desc=f"features {images.dataset}/{images.split}", unit="batch",
                         disable=not progress)]
    return torch.cat(out) if out else torch.empty(0, backbone.feature_dim)


def dataset_features(dataset: str, split: str, backbone: Backbone, cache: TensorCache, *, image_size: int,
                     per_class: int | None, data_seed: int, data_root: str | os.PathLike | None = None,
                     batch_size: int = 64, device: str = "cpu", progress: bool = True) -> FeatureSet:
    """Features of a stratified subset (`per_class` images per class, seeded) of a split, cached."""
    full = load_split(dataset, split, data_root)
    index = balanced_indices(full.labels, per_class, data_seed)
    images = full.subset(index)
    key = {
        "dataset": dataset, "split": split, "backbone": backbone.name, "weights": os.path.basename(backbone.weights),
        "preprocess": backbone.preprocess_id(image_size), "per_class": per_class, "data_seed": data_seed,
        "data": images.fingerprint(),
    }

    def compute():
        X = extract_features(images, backbone, image_size, batch_size, device, progress)
        return {"X": X, "y": torch.from_numpy(images.labels), "index": torch.from_numpy(index)}

    t = cache.get_or_compute("features", key, compute, info={"n": len(images), "classes": full.class_names})
    return FeatureSet(dataset, split, full.class_names, t["X"], t["y"], t["index"])


