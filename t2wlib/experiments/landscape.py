"""2-D loss landscapes around a trained head (paper App. C, Alg. 3, Figure 5; after Li et al., 2018).

Directions, for a head trained from θ_init to θ* (= θ_final):
  δ1 ∝ θ_final - θ_init (the optimisation trajectory), δ2 ~ N(0, I) (a random direction);
  both normalised layer-wise first (each layer's block of the direction scaled to the norm of that
  layer in θ*, so that layers of different scale move alike, as Li et al.'s filter normalisation),
  then δ1 scaled to unit L2 norm (eq. 28) and δ2 to δ1's norm (Alg. 3, step 5).
The grid L(α, β) = L(θ* + α δ1 + β δ2) (eq. 30) is evaluated for all grid points at once: every
point is one head of a stacked (G, P) tensor, scored by the batched head forward in chunks.
`landscape_around` runs the whole Figure 5 experiment for one initialisation: train, grid, statistics.
"""

from __future__ import annotations

import torch

from ..core.tensor_cache import TensorCache
from ..data.features import FeatureSet
from ..heads.adapter import HeadSpec, head_logits, task_accuracy, unflatten
from ..heads.training import HeadTrainConfig, train_heads


def _layerwise(direction: torch.Tensor, reference: torch.Tensor, spec: HeadSpec) -> torch.Tensor:
    d, ref = unflatten(direction.clone(), spec), unflatten(reference, spec)
    return torch.cat([(d[k] * (ref[k].norm() / d[k].norm().clamp_min(1e-12))).flatten() for k in spec.shapes])


def directions(theta_init: torch.Tensor, theta_final: torch.Tensor, spec: HeadSpec, seed: int = 0):
    """δ1, δ2 (P,) for the landscape around theta_final (see the module docstring)."""
    g = torch.Generator().manual_seed(seed)
    d1 = _layerwise((theta_final - theta_init).double(), theta_final.double(), spec)
    d2 = _layerwise(torch.randn(theta_final.shape, generator=g, dtype=torch.float64), theta_final.double(), spec)
    d1 = d1 / d1.norm()
    return d1, d2 * (d1.norm() / d2.norm())


@torch.no_grad()
def loss_grid(theta_star: torch.Tensor, d1: torch.Tensor, d2: torch.Tensor, alphas: torch.Tensor,
              betas: torch.Tensor, x: torch.Tensor, labels: torch.Tensor, class_emb: torch.Tensor,
              spec: HeadSpec, chunk: int = 256) -> torch.Tensor:
    """Mean cross-entropy Z (len(alphas), len(betas)) of θ* + α δ1 + β δ2 on samples x (n, F) with
    local labels (n,) into the task's class embeddings class_emb (K, D)."""
    a, b = torch.meshgrid(alphas.double(), betas.double(), indexing="ij")
    heads = (theta_star.double() + a.reshape(-1, 1) * d1 + b.reshape(-1, 1) * d2).float()  # (G, P)
    losses = []
    for s in range(0, len(heads), chunk):
        logits = head_logits(heads[s:s + chunk], x, class_emb, spec)  # (h, n, K)
        target = labels.expand(logits.shape[0], -1)
        losses.append(torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none").mean(1))
    return torch.cat(losses).view(len(alphas), len(betas))



def landscape_around(theta0: torch.Tensor, classes: torch.Tensor, train: FeatureSet, test: FeatureSet,
                     class_emb: torch.Tensor, spec: HeadSpec, cfg: HeadTrainConfig, alphas: torch.Tensor,
                     betas: torch.Tensor, seed: int, cache: TensorCache | None = None,
                     key: dict | None = None) -> tuple[torch.Tensor, dict]:
    """Train a head from theta0 (P,) on the task `classes` (K,), then the loss grid Z (len(alphas),
    len(betas)) around the trained head θ* (cached under `key` when a cache is given) and its
    statistics: test accuracy, the loss at θ*, the grid's range, the share of the grid below twice
    its minimum (how wide the basin is), and the length of the path θ0 -> θ*."""
    theta_star = train_heads(theta0, train.X, train.y, class_emb, classes[None], [seed], cfg, spec, cosine=True)[0][0]
    d1, d2 = directions(theta0, theta_star, spec, seed)
    keep = torch.isin(train.y, classes)
    x, labels = train.X[keep], torch.searchsorted(classes, train.y[keep])  # the task's samples, local labels

    def grid(a, b):
        return loss_grid(theta_star, d1, d2, a, b, x, labels, class_emb[classes], spec)

    if cache is None:
        Z = grid(alphas, betas)
    else:
        Z = cache.get_or_compute("landscape", {**key, "train": cfg.__dict__, "grid": [len(alphas), len(betas)]},
                                 lambda: {"Z": grid(alphas, betas)})["Z"]
    zero = torch.zeros(1)
    stats = {"test_accuracy": float(task_accuracy(theta_star[None], test.X, test.y, class_emb, classes[None], spec)[0]),
             "loss_at_solution": float(grid(zero, zero)[0, 0]), "grid_min": float(Z.min()), "grid_max": float(Z.max()),
             "frac_below_2x_solution": float((Z < 2 * Z.min()).float().mean()),
             "trajectory_length": float((theta_star - theta0).norm())}
    return Z, stats
