"""Initialisation (paper §4.5, Table 4; the proposal's sample-then-fine-tune metrics): heads started
from T2W's generated weights, from the classic schemes, or from a Reptile meta-learned init, then
trained identically.

Schemes (biases 0; W1 is (r, F), W2 is (D, r), fan_in / fan_out as torch.nn.init computes them):
  xavier-uniform   U(-a, a), a = sqrt(6 / (fan_in + fan_out))
  xavier-normal    N(0, 2 / (fan_in + fan_out))
  kaiming-uniform  U(-a, a), a = sqrt(6 / fan_in)         (gain sqrt(2), ReLU)
  kaiming-normal   N(0, 2 / fan_in)
  uniform-0.1      U(-0.1, 0.1)
  normal-0.01      N(0, 0.01²): the paper's "N(0, 0.01)", read as a standard deviation of 0.01
Reptile (Nichol et al., 2018): from θ, fine-tune a batch of seen zoo tasks for one epoch each, move θ
a step ε towards their mean; repeat. A learned init with the zoo's data, the baseline that a
generated init has to beat to be worth a diffusion model.
"""

from __future__ import annotations

import math

import pandas as pd
import torch

from ..data.features import FeatureSet
from ..heads.adapter import HeadSpec, flatten, task_accuracy, task_loss
from ..heads.training import HeadTrainConfig, train_heads

SCHEMES = ("xavier-uniform", "xavier-normal", "kaiming-uniform", "kaiming-normal", "uniform-0.1", "normal-0.01")


def _init_matrix(w: torch.Tensor, scheme: str, g: torch.Generator) -> torch.Tensor:
    fan_out, fan_in = w.shape
    if scheme == "xavier-uniform":
        bound = math.sqrt(6 / (fan_in + fan_out))
        return torch.empty_like(w).uniform_(-bound, bound, generator=g)
    if scheme == "xavier-normal":
        return torch.empty_like(w).normal_(0, math.sqrt(2 / (fan_in + fan_out)), generator=g)
    if scheme == "kaiming-uniform":
        bound = math.sqrt(6 / fan_in)
        return torch.empty_like(w).uniform_(-bound, bound, generator=g)
    if scheme == "kaiming-normal":
        return torch.empty_like(w).normal_(0, math.sqrt(2 / fan_in), generator=g)
    if scheme == "uniform-0.1":
        return torch.empty_like(w).uniform_(-0.1, 0.1, generator=g)
    if scheme == "normal-0.01":
        return torch.empty_like(w).normal_(0, 0.01, generator=g)
    raise KeyError(f"unknown init scheme {scheme!r}; available: {', '.join(SCHEMES)}")


def init_heads(scheme: str, n: int, spec: HeadSpec, seed: int = 0) -> torch.Tensor:
    """n heads (n, P) initialised by `scheme` (one of SCHEMES), biases zero."""
    g = torch.Generator().manual_seed(seed)
    F, r, D = spec.feature_dim, spec.hidden, spec.embed_dim
    W1 = torch.stack([_init_matrix(torch.empty(r, F), scheme, g) for _ in range(n)])
    W2 = torch.stack([_init_matrix(torch.empty(D, r), scheme, g) for _ in range(n)])
    return flatten({"W1": W1, "b1": torch.zeros(n, r), "W2": W2, "b2": torch.zeros(n, D)}, spec)


def reptile(theta0: torch.Tensor, train: FeatureSet, class_emb: torch.Tensor, task_classes: torch.Tensor,
            spec: HeadSpec, inner: HeadTrainConfig, iterations: int, meta_batch: int, epsilon: float = 1.0,
            seed: int = 0) -> torch.Tensor:
    """Reptile over the tasks task_classes (T, K), from theta0 (P,): each iteration fine-tunes
    `meta_batch` random tasks for `inner` (batched), then θ += ε_i (mean of the tuned heads - θ), with
    ε_i decaying linearly from ε to 0. Returns the meta-learned init (P,)."""
    g = torch.Generator().manual_seed(seed)
    theta = theta0.detach().clone()
    for i in range(iterations):
        pick = torch.randperm(len(task_classes), generator=g)[:meta_batch]
        tuned, _ = train_heads(theta, train.X, train.y, class_emb, task_classes[pick],
                               [seed * 100_003 + i * meta_batch + j for j in range(len(pick))], inner, spec)
        theta = theta + epsilon * (1 - i / iterations) * (tuned.mean(0) - theta)
    return theta


def few_shot(train: FeatureSet, shots: int, seed: int) -> FeatureSet:
    """The first `shots` examples per class after a seeded shuffle (all of a class if it has fewer)."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(train.y), generator=g)
    keep = torch.cat([order[train.y[order] == c][:shots] for c in train.y.unique()]).sort().values
    return FeatureSet(train.dataset, f"{train.split}-{shots}shot", train.class_names, train.X[keep], train.y[keep],
                      train.index[keep])


def train_from_inits(inits: dict[str, torch.Tensor], train: FeatureSet, test: FeatureSet, class_emb: torch.Tensor,
                     task_classes: torch.Tensor, spec: HeadSpec, cfg: HeadTrainConfig, seed: int = 0) -> pd.DataFrame:
    """Every init (name -> heads (n, P), one per task of task_classes (n, K)) trained identically
    (`cfg`, cosine learning rate, the same shuffling seeds per task), all in one batched run. One row
    per (init, task, epoch), epoch 0 the init itself: test accuracy and test loss (cross-entropy over
    the task's classes)."""
    names, n = list(inits), len(task_classes)
    theta0 = torch.cat([inits[name] for name in names])  # (len(names) * n, P)
    classes = task_classes.repeat(len(names), 1)
    rows = []

    def record(epoch: int, theta: torch.Tensor) -> None:
        acc = task_accuracy(theta, test.X, test.y, class_emb, classes, spec)
        loss = task_loss(theta, test.X, test.y, class_emb, classes, spec)
        rows.extend({"init": names[h // n], "task": h % n, "epoch": epoch, "test_accuracy": float(acc[h]),
                     "test_loss": float(loss[h])} for h in range(len(theta)))

    record(0, theta0)
    train_heads(theta0, train.X, train.y, class_emb, classes, [seed * 7919 + h % n for h in range(len(theta0))],
                cfg, spec, cosine=True, on_epoch=record)
    return pd.DataFrame(rows)


def summarise_inits(curves: pd.DataFrame, trained_accuracy: torch.Tensor, few: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """Table 4 with the proposal's metrics, one row per init: final test loss and accuracy (mean ±
    std over tasks), accuracy at the init (epoch 0), epochs to reach 90 % of each task's fully
    trained zoo-head accuracy (mean over the tasks that reach it, and the fraction that do), and
    final accuracy after training on K examples per class for each K in `few`."""
    last = curves.epoch.max()
    target = 0.9 * trained_accuracy.numpy()  # (n,) per task
    reached = curves[curves.test_accuracy.to_numpy() >= target[curves.task.to_numpy()]]
    first = reached.groupby(["init", "task"]).epoch.min()
    rows = []
    for name, g in curves.groupby("init", sort=False):
        end, start = g[g.epoch == last], g[g.epoch == 0]
        hit = first.loc[name] if name in first.index.get_level_values(0) else pd.Series(dtype=float)
        row = {"init": name, "acc_at_init": start.test_accuracy.mean(), "test_loss": end.test_loss.mean(),
               "test_loss_std": end.test_loss.std(), "test_accuracy": end.test_accuracy.mean(),
               "test_accuracy_std": end.test_accuracy.std(), "epochs_to_90pct": hit.mean(),
               "reached_90pct": len(hit) / g.task.nunique()}
        for k, df in few.items():
            row[f"acc_{k}_shot"] = df[(df.init == name) & (df.epoch == df.epoch.max())].test_accuracy.mean()
        rows.append(row)
    return pd.DataFrame(rows)
