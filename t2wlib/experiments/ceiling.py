"""What limits a generator that works in the compact token space: the projection limit.

The adopted generator emits the coordinates of a head on the top K principal directions of the seen
zoo (`generator/pca_tokenizer.py`), so the best head it can give a task is the task's trained head
projected on those K directions. `projection_curve` measures that limit against K: the accuracy of
validation tasks' trained heads projected on the top K directions of the generator's training heads,
for a range of K, beside the trained heads themselves. Where the curve is still rising at the profile's
K, more components would raise the ceiling; where it is flat, the generator, not the space, is short.
`noise_floor` measures how far training itself is from one answer: the same tasks fine-tuned again
from their θ0* with other shuffling seeds, their accuracy and their distance to the zoo's heads. A
generator cannot be expected to land closer to a trained head than another training run does.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch

from ..data.features import FeatureSet
from ..generator.pca_tokenizer import PrincipalTokenizer
from ..heads.training import train_heads
from ..zoo.model_zoo import Zoo
from .scoring import head_scores


def projected_heads(tokenizer: PrincipalTokenizer, theta: torch.Tensor, components: int) -> torch.Tensor:
    """Heads θ (T, P) projected on the top `components` directions of a fitted compact tokenizer, in weight space."""
    if not 1 <= components <= tokenizer.components:
        raise ValueError(f"{components} components: allowed 1 to {tokenizer.components} (the fitted directions)")
    basis = tokenizer.basis[:components].double()
    x = (theta.double() - tokenizer.mean) / tokenizer.std
    return ((x @ basis.T @ basis) * tokenizer.std + tokenizer.mean).float()


def projection_curve(zoo: Zoo, test: FeatureSet, train_ids: list[int], val_ids: list[int],
                     components: list[int]) -> pd.DataFrame:
    """Mean test accuracy of the trained heads of tasks `val_ids` projected on the top K principal
    directions of the heads of `train_ids`, one row per K in `components` (each within the rank the
    training heads span), and a last row with K = every weight (the trained heads themselves)."""
    tokenizer = PrincipalTokenizer.fit(zoo.theta[train_ids], zoo.spec, block_size=1, components=max(components))
    trained = float(zoo.test_accuracy[val_ids].mean())
    rows = [{"components": k, "accuracy": float(head_scores(zoo, projected_heads(tokenizer, zoo.theta[val_ids], k),
                                                             test, val_ids).accuracy.mean())}
            for k in sorted(set(components))]
    rows.append({"components": zoo.spec.num_params, "accuracy": trained})
    return pd.DataFrame(rows).assign(of_trained=lambda d: d.accuracy / trained, tasks=len(val_ids))


def retrained_heads(zoo: Zoo, train: FeatureSet, ids: list[int], seed_shift: int) -> torch.Tensor:
    """Tasks `ids` fine-tuned again (stage 2, as the zoo did) from their own θ0*, with the shuffling seeds
    of a zoo whose seed is shifted by `seed_shift` (0: the zoo's own seeds) -> heads (len(ids), P)."""
    other = dataclasses.replace(zoo.config, seed=zoo.config.seed + seed_shift)
    theta, _ = train_heads(zoo.starts[zoo.start[ids]], train.X, train.y, zoo.task_text["class_emb/prompt"],
                           zoo.tasks.padded(ids), [other.task_seed(i) for i in ids], zoo.config.stage2, zoo.spec)
    return theta


def noise_floor(zoo: Zoo, train: FeatureSet, test: FeatureSet, ids: list[int], seed_shift: int = 1) -> dict:
    """The trained heads' own spread on tasks `ids`: re-trained with shifted seeds (`retrained_heads`),
    their mean test accuracy beside the zoo heads', the mean absolute accuracy difference per task, and
    the weight distance between the two runs (MSE, and relative to the zoo head's update θ - θ0*)."""
    again = retrained_heads(zoo, train, ids, seed_shift)
    theta, theta0 = zoo.theta[ids], zoo.starts[zoo.start[ids]]
    scores = head_scores(zoo, again, test, ids)
    return {"tasks": len(ids), "seed_shift": seed_shift, "zoo_accuracy": float(zoo.test_accuracy[ids].mean()),
            "retrained_accuracy": float(scores.accuracy.mean()),
            "mean_abs_accuracy_difference": float((scores.accuracy - zoo.test_accuracy[ids].numpy()).abs().mean()),
            "weight_mse": float(((again - theta) ** 2).mean()),
            "distance_over_update": float(((again - theta) ** 2).sum(1).div((theta - theta0).pow(2).sum(1)).sqrt().mean())}
