"""Where heads lie among a zoo's solutions (10_diffusion_vs_regression): permutation alignment to one
reference, distance to the nearest zoo head, the θ0* basin a head belongs to, and how much several
heads for one text differ (weight distance and the overlap of their mistakes).

A CLIP adapter's r hidden units can be permuted without changing its function
(`head.permute_hidden`), so heads are compared in a canonical frame: each is permuted to match a
reference head by Git Re-Basin weight matching (`fusion.weight_matching`). Distances are RMS over
the P weights, so they read on the scale of one weight.
"""

from __future__ import annotations

import itertools

import torch

from ..heads.adapter import HeadSpec, permute_hidden, task_predictions
from .fusion import weight_matching


def align_to(theta: torch.Tensor, reference: torch.Tensor, spec: HeadSpec) -> torch.Tensor:
    """Heads theta (N, P), each permuted to best match `reference` (P,) -> (N, P)."""
    perms = torch.stack([weight_matching(reference, th, spec) for th in theta]) if len(theta) else \
        torch.empty(0, spec.hidden, dtype=torch.int64)
    return permute_hidden(theta, perms, spec)


def rms_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """RMS weight distance between every row of a (A, P) and of b (B, P) -> (A, B)."""
    return torch.cdist(a.double(), b.double()) / a.shape[1] ** 0.5


def nearest_distance(theta: torch.Tensor, bank: torch.Tensor, exclude_self: bool = False) -> torch.Tensor:
    """RMS distance (N,) from each head theta (N, P) to its nearest head in bank (B, P); with
    exclude_self (theta is bank), a head's distance to itself does not count."""
    d = rms_distance(theta, bank)
    if exclude_self:
        d.fill_diagonal_(float("inf"))
    return d.min(1).values


def basin(theta: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
    """The start (N,) whose θ0* (starts (M, P)) each head theta (N, P) is nearest to, unaligned:
    fine-tuning moves a head little from the θ0* it began at, and a permutation would not make a
    head of one basin a member of another."""
    return rms_distance(theta, starts).argmin(1)


def mispredictions(theta: torch.Tensor, test, class_emb: torch.Tensor, classes: list[int],
                   spec: HeadSpec) -> torch.Tensor:
    """Which of one task's test images each head theta (S, P) gets wrong -> (S, n) bool, n = the
    task's images in `test` (a FeatureSet), the same images for every head."""
    task = torch.tensor(classes).expand(len(theta), -1)
    pred, in_task = task_predictions(theta, test.X, test.y, class_emb, task, spec)
    return (pred != test.y)[:, in_task[0]]


def iou(wrong_a: torch.Tensor, wrong_b: torch.Tensor) -> float:
    """Intersection over union of two heads' misprediction sets (bool (n,) each); 1 when neither
    errs (they agree everywhere)."""
    union = int((wrong_a | wrong_b).sum())
    return 1.0 if union == 0 else int((wrong_a & wrong_b).sum()) / union


def sample_spread(aligned: torch.Tensor, wrong: torch.Tensor) -> dict[str, float]:
    """How much S >= 2 heads for one text differ: mean pairwise RMS distance of the heads, aligned to
    one reference (`align_to`), aligned (S, P), and mean pairwise IoU of their misprediction sets
    (wrong (S, n))."""
    pairs = list(itertools.combinations(range(len(aligned)), 2))
    if not pairs:
        raise ValueError("the spread of samples needs at least 2 heads per text")
    d = rms_distance(aligned, aligned)
    return {"pairwise_distance": float(sum(d[i, j] for i, j in pairs) / len(pairs)),
            "pairwise_iou": sum(iou(wrong[i], wrong[j]) for i, j in pairs) / len(pairs)}
