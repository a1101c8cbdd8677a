"""Model fusion (paper §4.4, Table 3): one head for the union of two disjoint tasks A and B.

* plain averaging: 0.5 θ_A + 0.5 θ_B;
* Git Re-Basin weight matching (Ainsworth et al., 2023) for the one hidden layer of a CLIP adapter:
  the hidden-unit permutation P of B that maximises Σ_i <unit_i(A), unit_P(i)(B)>, where a unit's
  weights are its W1 row, b1 entry and W2 column; a linear assignment problem, solved exactly with
  scipy's `linear_sum_assignment`. Then 0.5 θ_A + 0.5 P·θ_B;
* T2W: a head generated from the text vector of the combined class list (02_train's generator).
Every head is scored on A's classes, on B's (a CLIP adapter scores any class list through its text
embeddings, so model A can be scored on B) and on the union.
"""

from __future__ import annotations

import pandas as pd
import torch
from scipy.optimize import linear_sum_assignment

from ..heads.adapter import HeadSpec, permute_hidden, task_accuracy, unflatten
from ..heads.training import train_heads


def unit_similarity(theta_a: torch.Tensor, theta_b: torch.Tensor, spec: HeadSpec) -> torch.Tensor:
    """(r, r) inner products between the hidden units of two heads (P,): entry (i, j) compares unit i
    of A with unit j of B over all the weights attached to a unit."""
    a, b = unflatten(theta_a.double(), spec), unflatten(theta_b.double(), spec)
    return a["W1"] @ b["W1"].T + torch.outer(a["b1"], b["b1"]) + a["W2"].T @ b["W2"]


def weight_matching(theta_a: torch.Tensor, theta_b: torch.Tensor, spec: HeadSpec) -> torch.Tensor:
    """The permutation perm (r,) that aligns B to A: permute_hidden(theta_b, perm) puts B's unit
    perm[i] in position i, maximising the summed similarity to A's units."""
    rows, cols = linear_sum_assignment(unit_similarity(theta_a, theta_b, spec).numpy(), maximize=True)
    return torch.as_tensor(cols[rows.argsort()], dtype=torch.int64)


def average(theta_a: torch.Tensor, theta_b: torch.Tensor) -> torch.Tensor:
    """Plain weight averaging of two heads (P,)."""
    return 0.5 * (theta_a + theta_b)


def rebasin_average(theta_a: torch.Tensor, theta_b: torch.Tensor, spec: HeadSpec) -> torch.Tensor:
    """Git Re-Basin: align B's hidden units to A's by weight matching, then average."""
    return average(theta_a, permute_hidden(theta_b, weight_matching(theta_a, theta_b, spec), spec))


def disjoint_pairs(num_classes: int, k: int, pairs: int, seed: int) -> list[tuple[list[int], list[int]]]:
    """`pairs` seeded draws of two disjoint k-class tasks (A, B) from num_classes classes."""
    if not 1 <= k <= num_classes // 2:
        raise ValueError(f"two disjoint tasks of k={k} classes need 1 <= k <= {num_classes // 2} (num_classes // 2)")
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(pairs):
        c = torch.randperm(num_classes, generator=g)[:2 * k].tolist()
        out.append((sorted(c[:k]), sorted(c[k:])))
    return out


def fusion_scores(zoo, train, test, generator, pairs: list[tuple[list[int], list[int]]], ddim_steps: int,
                  seed: int) -> pd.DataFrame:
    """Table 3 for one dataset: heads A and B trained as the zoo trains its heads (stage 2 from θ0*),
    fused by plain averaging, by Git Re-Basin and by T2W from the combined class texts; accuracy of
    every head on A's classes, on B's, and their mean, one row per (pair, method)."""
    emb = zoo.task_text["class_emb/prompt"]
    A, B = (torch.tensor([p[i] for p in pairs]) for i in (0, 1))  # (n, k) each
    n = len(pairs)
    theta, _ = train_heads(zoo.stage1, train.X, train.y, emb, torch.cat([A, B]),
                           [seed * 7919 + i for i in range(2 * n)], zoo.config.stage2, zoo.spec)
    theta_a, theta_b = theta[:n], theta[n:]
    union = torch.cat([A, B], dim=1)
    heads = {"Model A": theta_a, "Model B": theta_b,
             "Weight averaging": average(theta_a, theta_b),
             "Git Re-Basin": torch.stack([rebasin_average(a, b, zoo.spec) for a, b in zip(theta_a, theta_b)]),
             "T2W (combined text)": generator.sample(generator.condition_of(emb[union]), steps=ddim_steps, seed=seed)}
    rows = []
    for method, th in heads.items():
        acc_a = task_accuracy(th, test.X, test.y, emb, A, zoo.spec)
        acc_b = task_accuracy(th, test.X, test.y, emb, B, zoo.spec)
        acc_union = task_accuracy(th, test.X, test.y, emb, union, zoo.spec)
        rows += [{"pair": i, "method": method, "acc_A": float(a), "acc_B": float(b), "mean": float(a + b) / 2,
                  "acc_union": float(u)} for i, (a, b, u) in enumerate(zip(acc_a, acc_b, acc_union))]
    return pd.DataFrame(rows)
