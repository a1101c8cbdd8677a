"""What limits a generator that works in the compact token space: the projection limit.

The adopted generator emits the coordinates of a head on the top K principal directions of the seen
zoo (`generator/pca_tokenizer.py`), so the best head it can give a task is the task's trained head
projected on those K directions. `projection_curve` measures that limit against K: the accuracy of
validation tasks' trained heads projected on the top K directions of the generator's training heads,
for a range of K, beside the trained heads themselves. Where the curve is still rising at the profile's
K, more components would raise the ceiling; where it is flat, the generator, not the space, is short.
"""

from __future__ import annotations

import pandas as pd
import torch

from ..data.features import FeatureSet
from ..generator.pca_tokenizer import PrincipalTokenizer
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
