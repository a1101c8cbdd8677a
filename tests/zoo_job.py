"""A small synthetic zoo build, importable by tests and runnable as a script (kill/resume, torchrun).

    python tests/zoo_job.py OUT_DIR          (under torchrun: initialises gloo and splits the shards)
"""

from __future__ import annotations

import os
import sys

import torch

from t2wlib.data.features import FeatureSet
from t2wlib.heads.training import HeadTrainConfig
from t2wlib.zoo.model_zoo import ZooConfig, build_zoo

CLASSES = [f"class {i}" for i in range(6)]


def synthetic_data(seed: int = 0):
    """Features with class structure (class mean + noise), F = 16, and unit text embeddings, D = 8."""
    g = torch.Generator().manual_seed(seed)
    means = 2 * torch.randn(len(CLASSES), 16, generator=g)

    def split(n_per_class):
        y = torch.arange(len(CLASSES)).repeat_interleave(n_per_class)
        X = means[y] + torch.randn(len(y), 16, generator=g)
        return FeatureSet("synthetic", "train", CLASSES, X, y, torch.arange(len(y)))

    emb = torch.nn.functional.normalize(torch.randn(len(CLASSES), 8, generator=g), dim=-1)
    desc = torch.nn.functional.normalize(torch.randn(len(CLASSES), 8, generator=g), dim=-1)
    return split(30), split(10), {"prompt": emb, "description": desc}


def config(**overrides) -> ZooConfig:
    head = HeadTrainConfig(epochs=3, lr=1e-2, batch_size=8)
    base = dict(num_tasks=40, k_range=(2, 4), hidden=3, stage1=head, stage2=head,
                universal=HeadTrainConfig(epochs=5, lr=1e-2, batch_size=16), seed=7, shard_size=4)
    return ZooConfig(**{**base, **overrides})


def build(directory, **overrides):
    train, test, emb = synthetic_data()
    texts = {"prompt": [f"A photo of {c}" for c in CLASSES], "description": [f"{c}, a thing" for c in CLASSES]}
    return build_zoo(directory, config(**overrides), train, test, emb,
                     source={"dataset": "synthetic", "class_texts": texts}, progress=False)


def linear_map_zoo(directory, noise: float = 0.05, seed: int = 0):
    """The built zoo with its heads replaced by a known function of the text: θ_i = b + A v_i + noise,
    v_i the task's text vector (A (P, D), b (P,) and the noise seeded). A generator that learns the text
    -> weights map beats the text-blind mean head on unseen tasks; one that ignores the text cannot."""
    from t2wlib.zoo.model_zoo import load_zoo

    build(directory)
    zoo, g = load_zoo(directory), torch.Generator().manual_seed(seed)
    v = zoo.task_text["v_c/prompt"]  # (T, D)
    P = zoo.spec.num_params
    A, b = 0.5 * torch.randn(P, v.shape[1], generator=g), 0.3 * torch.randn(P, generator=g)
    return zoo.with_heads(b + v @ A.T + noise * torch.randn(len(v), P, generator=g), "linear-map")


if __name__ == "__main__":
    if "RANK" in os.environ:
        torch.distributed.init_process_group("gloo")
    build(sys.argv[1])
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
