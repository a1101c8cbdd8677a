"""Training many CLIP-adapter heads at once as one batched tensor program (docs/ARCHITECTURE.md §7).

Every head has its own task: its own training samples (rows of a shared feature matrix X), its own
classes and class embeddings, and its own shuffling seed. Heads step in lockstep: at global step s
each head takes the s-th minibatch of its own schedule, or sits idle once its schedule is done.
Adam is applied per head with a per-head step count and idle heads untouched, so the result
equals training each head alone with `torch.optim.Adam` (`train_head_loop`, the reference).
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable

import torch
import torch.nn.functional as Fn
from tqdm.auto import tqdm

from .head import CLIPAdapter, HeadSpec, head_logits


@dataclass(frozen=True)
class HeadTrainConfig:
    """Optimisation of a head: Adam at a constant learning rate, minibatches reshuffled per epoch."""

    epochs: int
    lr: float
    batch_size: int
    betas: tuple[float, float] = (0.9, 0.999)  # torch.optim.Adam's defaults
    eps: float = 1e-8

    def __post_init__(self):
        if self.epochs < 0 or self.lr <= 0 or self.batch_size < 1:
            raise ValueError(f"invalid head training config {self}")


def schedule(n: int, cfg: HeadTrainConfig, seed: int) -> torch.Tensor:
    """Minibatch indices of one task, (epochs * ceil(n / B), B), a fresh permutation per epoch,
    the last batch of an epoch padded with -1."""
    g = torch.Generator().manual_seed(seed)
    per_epoch = -(-n // cfg.batch_size)
    out = torch.full((cfg.epochs, per_epoch * cfg.batch_size), -1, dtype=torch.int64)
    for e in range(cfg.epochs):
        out[e, :n] = torch.randperm(n, generator=g)
    return out.reshape(cfg.epochs * per_epoch, cfg.batch_size)


def _task_loss(theta, X, rows, labels, valid, class_emb, class_valid, spec):
    """Mean cross-entropy per head: theta (H, P), X (N, F) with rows (H, B) each head's samples,
    labels (H, B) local class ids, valid (H, B), class_emb (H, K, D), class_valid (H, K) -> (H,)."""
    logits = head_logits(theta, X, class_emb, spec, rows=rows)  # (H, B, K)
    logits = logits.masked_fill(~class_valid.unsqueeze(1), float("-inf"))
    ce = Fn.cross_entropy(logits.transpose(1, 2), labels.clamp_min(0), reduction="none")  # (H, B)
    return (ce * valid).sum(1) / valid.sum(1).clamp_min(1)


def train_heads(theta0: torch.Tensor, X: torch.Tensor, y: torch.Tensor, class_emb: torch.Tensor,
                task_classes: torch.Tensor, seeds: list[int], cfg: HeadTrainConfig, spec: HeadSpec,
                progress: bool = False, cosine: bool = False,
                on_epoch: Callable[[int, torch.Tensor], None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Train H heads at once.

    theta0 (H, P) or (P,) start weights; X (N, F), y (N,) the training split; class_emb (C, D);
    task_classes (H, K) class ids per task, -1 padded; seeds: one shuffling seed per task.
    Head i trains on the rows of X whose label is in its task, with logits over its task's classes.
    Returns theta (H, P) and the mean training loss per head and epoch (H, epochs).
    cosine: decay each head's learning rate from cfg.lr to 0 over its own steps (cosine), instead of
    the zoo's constant rate. on_epoch(e, theta): called after each global epoch e = 1..epochs (the
    step at which the longest schedule finishes its e-th epoch), e.g. for learning curves.
    """
    H, K = task_classes.shape
    device = X.device
    theta = (theta0.expand(H, -1) if theta0.ndim == 1 else theta0).detach().clone().to(device)
    class_valid = task_classes >= 0  # (H, K)
    task_emb = class_emb[task_classes.clamp_min(0)] * class_valid.unsqueeze(-1)  # (H, K, D)
    local = torch.full((H, class_emb.shape[0]), -1, dtype=torch.int64)  # global class id -> local
    for i, row in enumerate(task_classes):
        local[i, row[row >= 0]] = torch.arange(int((row >= 0).sum()))
    # Per task: the rows of X it trains on, and its minibatch schedule over them.
    rows = [torch.nonzero(local[i, y] >= 0).squeeze(1) for i in range(H)]
    sched = [schedule(len(r), cfg, seed) for r, seed in zip(rows, seeds)]
    steps = torch.tensor([len(s) for s in sched])
    S = int(steps.max()) if H else 0
    per_epoch = (steps // max(cfg.epochs, 1)).clamp_min(1)
    # (H, S, B) indices into X, -1 for padding and for idle steps.
    idx = torch.full((H, S, cfg.batch_size), -1, dtype=torch.int64)
    for i, (r, s) in enumerate(zip(rows, sched)):
        idx[i, :len(s)] = torch.where(s >= 0, r[s.clamp_min(0)], -1)
    idx, local, task_emb, class_valid = (t.to(device) for t in (idx, local, task_emb, class_valid))
    heads = torch.arange(H, device=device).unsqueeze(1)

    m, v = torch.zeros_like(theta), torch.zeros_like(theta)
    t = torch.zeros(H, 1, device=device)
    b1, b2 = cfg.betas
    loss_sum = torch.zeros(H, max(cfg.epochs, 1), device=device)
    longest_epoch = max(1, S // max(cfg.epochs, 1))  # steps per epoch of the longest schedule (on_epoch)
    for s in tqdm(range(S), desc="heads", unit="step", disable=not progress):
        batch = idx[:, s]  # (H, B)
        valid = batch >= 0
        active = valid.any(1, keepdim=True)  # (H, 1): heads with a minibatch at this step
        rows = batch.clamp_min(0)  # (H, B) rows of X
        labels = local[heads, y[rows]]  # (H, B)
        theta.requires_grad_(True)
        loss = _task_loss(theta, X, rows, labels, valid.float(), task_emb, class_valid, spec)  # (H,)
        (grad,) = torch.autograd.grad(loss.sum(), theta)  # head i's gradient is that of its own loss
        with torch.no_grad():
            theta = theta.detach()
            t += active.float()
            m = torch.where(active, b1 * m + (1 - b1) * grad, m)
            v = torch.where(active, b2 * v + (1 - b2) * grad * grad, v)
            bc1, bc2 = 1 - b1 ** t.clamp_min(1), 1 - b2 ** t.clamp_min(1)
            lr = cfg.lr * (0.5 * (1 + torch.cos(torch.pi * (t - 1) / steps.to(device).unsqueeze(1))) if cosine else 1)
            update = (lr / bc1) * m / (v.sqrt() / bc2.sqrt() + cfg.eps)
            theta = torch.where(active, theta - update, theta)
            epoch = torch.div(torch.full((H,), s, device=device), per_epoch.to(device), rounding_mode="floor")
            live = active.squeeze(1) & (epoch < cfg.epochs)
            loss_sum[heads.squeeze(1)[live], epoch[live].long()] += loss.detach()[live]
        if on_epoch is not None and (s + 1) % longest_epoch == 0:
            on_epoch((s + 1) // longest_epoch, theta)
    return theta.detach(), loss_sum / per_epoch.to(device).unsqueeze(1)


def train_head_loop(theta0: torch.Tensor, X: torch.Tensor, y: torch.Tensor, class_emb: torch.Tensor,
                    classes: list[int], seed: int, cfg: HeadTrainConfig, spec: HeadSpec) -> torch.Tensor:
    """Reference: one head, one task, nn.Module + torch.optim.Adam, same minibatch schedule."""
    head = CLIPAdapter.from_flat(theta0, spec)
    classes_t = torch.tensor(classes)
    rows = torch.nonzero(torch.isin(y, classes_t)).squeeze(1)
    local = {c: i for i, c in enumerate(classes)}
    emb = class_emb[classes_t]
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    for batch in schedule(len(rows), cfg, seed):
        sel = rows[batch[batch >= 0]]
        target = torch.tensor([local[int(c)] for c in y[sel]])
        loss = Fn.cross_entropy(head.logits(X[sel], emb), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return head.flat()
