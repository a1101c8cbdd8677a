"""Training many CLIP-adapter heads at once as one batched tensor program (docs/ARCHITECTURE.md §7).

Every head has its own task: its own training samples (rows of a shared feature matrix X), its own
classes and class embeddings, and its own shuffling seed. Heads step in lockstep: at global step s
each head takes the s-th minibatch of its own schedule, or sits idle once its schedule is done.
Adam is applied per head with a per-head step count and idle heads untouched, so the result
equals training each head alone with `torch.optim.Adam` (`train_head_loop`, the reference).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as Fn
from tqdm.std import tqdm  # text bars: tqdm.auto wants ipywidgets in a kernel, and warns without them

from .adapter import CLIPAdapter, HeadSpec, params_logits, unflatten


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


def _task_loss(params, X, rows, labels, valid, class_emb, class_valid):
    """Mean cross-entropy per head: params {W1, b1, W2, b2} of H heads, X (N, F) with rows (H, B) each
    head's samples, labels (H, B) local class ids, valid (H, B), class_emb (H, K, D), class_valid (H, K) -> (H,)."""
    logits = params_logits(params, X, class_emb, rows=rows)  # (H, B, K)
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
    theta0 = theta0.expand(H, -1) if theta0.ndim == 1 else theta0
    class_valid = task_classes >= 0  # (H, K)
    local = torch.full((H, class_emb.shape[0]), -1, dtype=torch.int64)  # global class id -> local
    for i, row in enumerate(task_classes):
        local[i, row[row >= 0]] = torch.arange(int((row >= 0).sum()))
    # Per task: the rows of X it trains on, and its minibatch schedule over them.
    rows = [torch.nonzero(local[i, y] >= 0).squeeze(1) for i in range(H)]
    sched = [schedule(len(r), cfg, seed) for r, seed in zip(rows, seeds)]
    steps = torch.tensor([len(s) for s in sched], dtype=torch.int64)
    # Heads ordered by schedule length, longest first: at global step s the heads still training
    # are a prefix [:n_s], so every step works on contiguous slices of the active heads only, and
    # they all share one Adam step count t = s + 1 (scalar bias corrections).
    order = torch.argsort(steps, descending=True, stable=True)
    unorder = torch.argsort(order)
    steps = steps[order]
    active_count = [int(n) for n in (steps.unsqueeze(0) > torch.arange(int(steps[0]) if H else 0).unsqueeze(1)).sum(1)]
    S = len(active_count)
    per_epoch = (steps // max(cfg.epochs, 1)).clamp_min(1)
    # (H, S, B) indices into X, -1 for padding and for idle steps.
    idx = torch.full((H, S, cfg.batch_size), -1, dtype=torch.int64)
    for i, (r, s) in enumerate(zip(rows, sched)):
        idx[i, :len(s)] = torch.where(s >= 0, r[s.clamp_min(0)], -1)
    task_emb = class_emb[task_classes.clamp_min(0)] * class_valid.unsqueeze(-1)  # (H, K, D)
    idx, local, task_emb, class_valid = (t[order].to(device) for t in (idx, local, task_emb, class_valid))
    theta = theta0[order].detach().clone().to(device)
    heads = torch.arange(H, device=device).unsqueeze(1)
    lr_scale = None
    if cosine:  # (H, S): head h's cosine factor at its step t = s + 1 of steps[h]
        lr_scale = 0.5 * (1 + torch.cos(torch.pi * torch.arange(S).unsqueeze(0) / steps.unsqueeze(1))).to(device)

    m, v = torch.zeros_like(theta), torch.zeros_like(theta)
    b1, b2 = cfg.betas
    loss_sum = torch.zeros(H, max(cfg.epochs, 1), device=device)
    epoch_of = torch.div(torch.arange(S).unsqueeze(0), per_epoch.unsqueeze(1), rounding_mode="floor").to(device)  # (H, S)
    longest_epoch = max(1, S // max(cfg.epochs, 1))  # steps per epoch of the longest schedule (on_epoch)
    for s in tqdm(range(S), desc="heads", unit="step", disable=not progress):
        n = active_count[s]
        batch = idx[:n, s]  # (n, B)
        valid = batch >= 0
        batch_rows = batch.clamp_min(0)  # (n, B) rows of X
        labels = local[heads[:n], y[batch_rows]]  # (n, B)
        # The parameters as separate leaves: autograd then returns each one's gradient as is, where
        # views of one flat leaf would have it scatter them into a zeroed (n, P) buffer.
        live = {k: w.detach().requires_grad_(True) for k, w in unflatten(theta[:n], spec).items()}
        loss = _task_loss(live, X, batch_rows, labels, valid.float(), task_emb[:n], class_valid[:n])  # (n,)
        # head i's gradient is that of its own loss; flattened back to (n, P) in unflatten's order
        grad = torch.cat([g.reshape(n, -1) for g in torch.autograd.grad(loss.sum(), list(live.values()))], dim=1)
        with torch.no_grad():
            # torch.optim.Adam's update, in place on the active prefix.
            t = s + 1
            bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
            m[:n].mul_(b1).add_(grad, alpha=1 - b1)
            v[:n].mul_(b2).addcmul_(grad, grad, value=1 - b2)
            denom = v[:n].sqrt().div_(bc2 ** 0.5).add_(cfg.eps)
            if lr_scale is None:
                theta[:n].addcdiv_(m[:n], denom, value=-cfg.lr / bc1)
            else:
                theta[:n].sub_(m[:n] / denom * (lr_scale[:n, s:s + 1] * (cfg.lr / bc1)))
            epoch = epoch_of[:n, s]
            counted = epoch < cfg.epochs
            loss_sum[heads[:n, 0][counted], epoch[counted]] += loss.detach()[counted]
        if on_epoch is not None and (s + 1) % longest_epoch == 0:
            on_epoch((s + 1) // longest_epoch, theta[unorder])
    unordered = unorder.to(device)
    return theta[unordered], (loss_sum / per_epoch.to(device).unsqueeze(1))[unordered]


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
