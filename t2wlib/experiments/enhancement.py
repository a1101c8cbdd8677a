"""Enhancement (paper §4.6, Figure 6): a partly trained head is noised to diffusion step t and
denoised by T2W conditioned on its task's text, i.e. projected towards the generator's manifold of
trained heads for that task. t = 0 leaves the head unchanged; t = N ignores it (plain generation).
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch

from ..data.features import FeatureSet
from ..generator.t2w import T2WGenerator
from ..heads.adapter import task_accuracy
from ..heads.training import train_heads
from ..zoo.model_zoo import Zoo


@torch.no_grad()
def enhance(gen: T2WGenerator, theta: torch.Tensor, v_c: torch.Tensor, t: int, steps: int = 20,
            seed: int = 0) -> torch.Tensor:
    """Heads θ (B, P) noised to step t (1 ≤ t ≤ N: q(x_t | x_0) at index t - 1), then denoised by
    DDIM over min(steps, t) steps conditioned on v_c (B, D); t = 0 returns θ unchanged."""
    N = gen.diffusion.num_steps
    if not 0 <= t <= N:
        raise ValueError(f"enhancement step t must be in [0, {N}], got {t}")
    if t == 0:
        return theta.clone()
    return gen.sample(v_c, steps=min(steps, t), seed=seed, start=theta, t_start=t - 1).to(theta.dtype)


def enhancement_scores(zoo: Zoo, train: FeatureSet, test: FeatureSet, gen: T2WGenerator, ids: list[int],
                       steps_t: list[int], fraction: float = 0.5, ddim_steps: int = 20, seed: int = 0) -> pd.DataFrame:
    """Figure 6 for one dataset: the zoo tasks `ids` retrained as the zoo trains them (stage 2 from
    θ0*, the same shuffling seeds) but stopped after `fraction` of the epochs, then enhanced at every
    t in steps_t. One row per (task, t): accuracy before, after, and of the fully trained zoo head."""
    cfg = zoo.config.stage2
    half = dataclasses.replace(cfg, epochs=max(1, round(cfg.epochs * fraction)))
    emb, classes = zoo.task_text["class_emb/prompt"], zoo.tasks.padded(ids)
    theta, _ = train_heads(zoo.stage1, train.X, train.y, emb, classes, [zoo.config.task_seed(i) for i in ids], half, zoo.spec)
    before = task_accuracy(theta, test.X, test.y, emb, classes, zoo.spec)
    v_c = zoo.task_condition("prompt", ids, gen.config.condition)
    rows = []
    for t in steps_t:
        after = task_accuracy(enhance(gen, theta, v_c, t, ddim_steps, seed), test.X, test.y, emb, classes, zoo.spec)
        rows += [{"task": i, "t": t, "epochs_trained": half.epochs, "acc_before": float(b), "acc_after": float(a),
                  "acc_trained": float(zoo.test_accuracy[i])} for i, b, a in zip(ids, before, after)]
    return pd.DataFrame(rows)
