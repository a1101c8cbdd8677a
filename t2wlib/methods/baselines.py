"""Baselines that map a task text vector v_c to head weights without diffusion (03_evaluate):

* **retrieval**: the seen-zoo head whose task text vector is nearest by cosine similarity (also the
  memorisation reference of the novelty check: a generator that only copies does no better);
* **hypernetwork**: an MLP v_c -> θ trained by MSE on the same seen zoo, in the same token space,
  with the same optimiser, schedule, epochs and batch size as the generator (the proposal's
  baseline: is the diffusion model's stochastic generation worth it over direct regression?), and
  optionally through the task loss as well (`TaskLossTerm`: the generated head's cross-entropy on its
  seen task's training samples, Text-to-LoRA's objective);
* **ridge**: a linear map v_c -> θ in closed form (`generator/ridge.py`, where the denoiser's linear
  text path starts from it too): the least a learned text -> weights map should beat;
* **memorisation** (Zeng et al.'s weight_memorization baselines, 10_diffusion_vs_regression): the
  nearest seen head plus Gaussian noise, and the average of the nearest seen heads;
* **class identity**: no text at all, θ = b + the mean of one learned vector u_c per class of the task,
  fitted by ridge on the seen tasks (`class_identity_heads`): what recombining seen classes alone gives,
  so how much of the "unseen tasks" split a generator can pass without reading its text.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from ..core.files import CorruptArtifactError, canonical_json
from ..core.sealed import load_sealed, save_sealed
from ..core.tensor_cache import CacheCorruptionWarning
from ..generator.ridge import fit_ridge
from ..generator.tokenizers import Tokenizer
from ..generator.trainer import TrainConfig, batch_rows, lr_factor, warmup_steps
from ..heads.adapter import TaskLossTerm, check_task_loss, task_membership


def nearest_tasks(query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Index into keys (K, D) of the most cosine-similar row for each query (Q, D) -> (Q,)."""
    return (nn.functional.normalize(query, dim=1) @ nn.functional.normalize(keys, dim=1).T).argmax(1)


def retrieve_heads(v_query: torch.Tensor, v_seen: torch.Tensor, theta_seen: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Retrieval baseline: for each query text vector (Q, D) the seen head (Q, P) of the nearest
    seen task (v_seen (S, D), theta_seen (S, P)), and that task's index into the seen set (Q,)."""
    idx = nearest_tasks(v_query, v_seen)
    return theta_seen[idx], idx


def noisy_heads(theta: torch.Tensor, sigma: torch.Tensor, samples: int, seed: int) -> torch.Tensor:
    """`samples` copies of each head theta (Q, P) plus Gaussian noise of per-weight scale sigma
    (P,) -> (Q, samples, P); seeded, so a rerun draws the same heads."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn((len(theta), samples, theta.shape[1]), generator=g, dtype=theta.dtype)
    return theta.unsqueeze(1) + noise * sigma


def average_nearest_heads(v_query: torch.Tensor, v_seen: torch.Tensor, theta_seen: torch.Tensor,
                          n: int) -> torch.Tensor:
    """The mean of the seen heads (S, P) of the n seen texts (S, D) most cosine-similar to each query
    (Q, D) -> (Q, P)."""
    if not 1 <= n <= len(v_seen):
        raise ValueError(f"average of the {n} nearest seen heads: allowed 1 to {len(v_seen)} (the seen heads)")
    sim = nn.functional.normalize(v_query, dim=1) @ nn.functional.normalize(v_seen, dim=1).T
    return theta_seen[sim.topk(n, dim=1).indices].mean(1)


def class_identity_heads(task_classes: torch.Tensor, seen_classes: torch.Tensor, theta_seen: torch.Tensor,
                         num_classes: int) -> torch.Tensor:
    """Heads (T, P) for tasks of class ids `task_classes` (T, K, -1 padded) from the classes they hold
    alone: ridge regression from class membership (1/k at each of a task's k classes) to the seen heads
    theta_seen (S, P) of tasks `seen_classes` (S, K'), the strength chosen on held-back seen tasks as for
    text ridge. A class no seen task holds has no vector of its own: a task's mean runs over its classes
    that have one (over all of them when it has none), the only mean the fit determines, as membership
    rows sum to 1 and so fix the class vectors up to a shared shift only."""
    seen = task_membership(seen_classes, num_classes).double()
    known = seen.sum(0) > 0
    ridge = fit_ridge(seen[:, known] / seen.sum(1, keepdim=True), theta_seen)
    query = task_membership(task_classes, num_classes).double()[:, known]
    query[query.sum(1) == 0] = 1.0
    return ridge(query / query.sum(1, keepdim=True))


# Hidden width of the hypernetwork's two layers, 256 for the pipeline's time budget: its last layer
# (hidden x N s outputs) sets its step time (what the width costs in accuracy:
# figures/cpu/hypernetwork_width.md, from scripts/hypernetwork_width.py).
HYPERNETWORK_HIDDEN = 256


class HyperNetwork(nn.Module):
    """v_c (B, D) -> weight tokens (B, N, s): standardised input, two hidden SiLU layers."""

    def __init__(self, text_dim: int, num_tokens: int, block_size: int, hidden: int = HYPERNETWORK_HIDDEN):
        super().__init__()
        self.num_tokens, self.block_size = num_tokens, block_size
        self.register_buffer("text_mean", torch.zeros(text_dim))
        self.register_buffer("text_std", torch.ones(text_dim))
        self.net = nn.Sequential(nn.Linear(text_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, num_tokens * block_size))

    def forward(self, v_c: torch.Tensor) -> torch.Tensor:
        return self.net((v_c - self.text_mean) / self.text_std).view(-1, self.num_tokens, self.block_size)


def train_hypernetwork(directory: str | Path, theta_seen: torch.Tensor, v_seen: torch.Tensor,
                       tokenizer: Tokenizer, cfg: TrainConfig, hidden: int = HYPERNETWORK_HIDDEN,
                       task_loss: TaskLossTerm | None = None) -> HyperNetwork:
    """Fit (or load, if `directory` holds a finished one of the same config) a hypernetwork on the
    seen zoo: heads theta_seen (S, P), text vectors v_seen (S, D). Masked MSE in token space, plus
    cfg.lambda_task x `task_loss` when that is > 0; Adam at cfg.lr with cfg's warmup + cosine schedule,
    epochs, batch size, clipping and seed; `hidden` units per layer."""
    directory = Path(directory)
    torch.manual_seed(cfg.seed)
    model = HyperNetwork(v_seen.shape[1], tokenizer.num_tokens, tokenizer.block_size, hidden)
    meta = {"format": "t2w-hypernetwork/2", "hidden": hidden, "train": cfg.record(), "tokenizer": tokenizer.config(),
            "tasks": len(theta_seen)}
    check_task_loss(cfg.lambda_task, task_loss, len(theta_seen), "seen heads")
    if cfg.lambda_task > 0:
        meta["task_loss"] = task_loss.describe()
    draws = torch.Generator().manual_seed(cfg.seed)  # the task samples each step sees
    weights, definition = directory / "hypernetwork.safetensors", {"definition": canonical_json(meta)}
    if weights.exists():
        try:
            state, found = load_sealed(weights, "hypernetwork")
            if found == definition:
                model.load_state_dict(state)
                return model.eval()
        except CorruptArtifactError as err:
            warnings.warn(f"retraining: {err}", CacheCorruptionWarning, stacklevel=2)
    model.text_mean.copy_(v_seen.mean(0))
    model.text_std.copy_(v_seen.std(0).clamp_min(1e-6))
    x0, mask = tokenizer.encode(theta_seen).float(), tokenizer.mask
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=True)  # the generator's optimiser (generator/trainer.py)
    steps_per_epoch = len(x0) // cfg.batch_size
    total = cfg.epochs * steps_per_epoch
    warmup = warmup_steps(cfg, steps_per_epoch, total)
    for step in range(total):
        rows = batch_rows(step, len(x0), cfg.batch_size, cfg.seed)
        for group in opt.param_groups:
            group["lr"] = cfg.lr * lr_factor(step, warmup, total)
        tokens = model(v_seen[rows].float())
        loss = (((tokens - x0[rows]) ** 2) * mask).sum() / (mask.sum() * len(rows))
        if cfg.lambda_task > 0:
            loss = loss + cfg.lambda_task * task_loss(tokenizer.decode(tokens * mask), rows, draws)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
    save_sealed(weights, model.state_dict(), definition)
    return model.eval()


@torch.no_grad()
def hypernetwork_heads(model: HyperNetwork, v_c: torch.Tensor, tokenizer: Tokenizer) -> torch.Tensor:
    """Heads θ (B, P) predicted for text vectors v_c (B, D)."""
    return tokenizer.decode(model(v_c.float()) * tokenizer.mask)
