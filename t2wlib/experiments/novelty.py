"""The novelty check (03_evaluate, 10_diffusion_vs_regression): does a method copy the zoo? For each
head, the cosine of its weights to the nearest seen head (by weights), and how often its predictions
agree with that nearest head's and with the trained head's of the same task, against the same
numbers for the trained heads themselves (`novelty_reference`)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from ..data.features import FeatureSet
from ..heads.adapter import task_predictions
from ..methods import registry
from ..zoo.model_zoo import Zoo


def nn_normalize(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x.double(), dim=-1)


def _agreement(a: torch.Tensor, b: torch.Tensor, in_task: torch.Tensor) -> torch.Tensor:
    return ((a == b) & in_task).sum(1) / in_task.sum(1)


def _nearest_seen(zoo: Zoo, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine of each head's update θ - θ0* (Q, P) to its nearest seen-zoo update, and that seen head."""
    seen = zoo.tasks.ids("seen")
    cos = nn_normalize(theta - zoo.stage1) @ nn_normalize(zoo.theta[seen] - zoo.stage1).T  # (Q, S)
    best = cos.max(1)
    return best.values, zoo.theta[seen][best.indices]


@dataclass(frozen=True)
class NoveltyReference:
    """What `novelty` measures a method against on tasks `ids`, computed once per split and shared
    by every method and seed: the trained heads' predictions (len(ids), N), and per task their
    nearest-seen cosine and agreement with *their* nearest seen head."""

    ids: list[int]
    trained_predictions: torch.Tensor
    nn_cos_trained: torch.Tensor
    trained_agree_nearest: torch.Tensor


def novelty_reference(zoo: Zoo, test: FeatureSet, ids: list[int]) -> NoveltyReference:
    """The trained heads' side of `novelty` for tasks `ids`."""
    cos_tr, near_tr = _nearest_seen(zoo, zoo.theta[ids])
    classes, emb = zoo.tasks.padded(ids), zoo.task_text["class_emb/prompt"]
    trained, in_task = task_predictions(zoo.theta[ids], test.X, test.y, emb, classes, zoo.spec)
    near, _ = task_predictions(near_tr, test.X, test.y, emb, classes, zoo.spec)
    return NoveltyReference(list(ids), trained, cos_tr, _agreement(trained, near, in_task))


def novelty(zoo: Zoo, theta: torch.Tensor, test: FeatureSet, ids: list[int],
            reference: NoveltyReference | None = None) -> pd.DataFrame:
    """The memorisation check for heads θ (len(ids), P) generated for zoo tasks `ids`, one row per task.

    Every zoo head is fine-tuned from the same θ0*, so raw cosines all sit near 1; the cosines here
    are between *updates* θ - θ0*. nn_cos_generated: cosine of the generated update to the nearest
    seen-zoo update; nn_cos_trained: the same for the task's trained head (how close an honest new
    solution comes to the zoo). agree_nearest: fraction of the task's test images on which the
    generated head predicts as that nearest seen head does; agree_trained: as the trained head
    does; trained_agree_nearest: the trained head vs *its* nearest seen head (the reference). A
    generator that copies has nn_cos_generated ≈ 1 and agree_nearest ≈ 1 above the references.
    reference: `novelty_reference(zoo, test, ids)`, when scoring several methods on the same ids."""
    ref = novelty_reference(zoo, test, ids) if reference is None else reference
    if ref.ids != list(ids):
        raise ValueError("the novelty reference was computed for other tasks than `ids`")
    cos_gen, near_gen = _nearest_seen(zoo, theta)
    classes, emb = zoo.tasks.padded(ids), zoo.task_text["class_emb/prompt"]
    gen, in_task = task_predictions(theta, test.X, test.y, emb, classes, zoo.spec)
    near, _ = task_predictions(near_gen, test.X, test.y, emb, classes, zoo.spec)
    return pd.DataFrame({"task": ids, "nn_cos_generated": cos_gen.numpy(), "nn_cos_trained": ref.nn_cos_trained.numpy(),
                         "agree_nearest": _agreement(gen, near, in_task).numpy(),
                         "agree_trained": _agreement(gen, ref.trained_predictions, in_task).numpy(),
                         "trained_agree_nearest": ref.trained_agree_nearest.numpy()})


def novelty_labels(variants) -> list[str]:
    """The methods the novelty table scores: every method of the registry that reads the task text
    (only those could copy a seen head by its text), under each text variant."""
    return [m.label(v) for m in registry.METHODS if m.reads_text for v in variants]


def novelty_by_method(zoos: dict[str, Zoo], tests: dict[str, FeatureSet], heads: dict, methods, split: str = "unseen"):
    """`novelty` of every method in `methods` on every dataset's `split` tasks, averaged over
    tasks and seeds: one row per (dataset, method). heads: keyed (dataset, split, method, seed), as
    `evaluate_methods` returns them. The trained heads' reference is computed once per dataset, and a
    seed-free method's heads (the same under every seed) are scored once."""
    rows, done = [], set()
    for name, z in zoos.items():
        ids = z.tasks.ids(split)
        reference = novelty_reference(z, tests[name], ids)
        for (dataset, part, method, _), theta in heads.items():
            if dataset != name or part != split or method not in methods:
                continue
            if not registry.method_of(method).seeded and (dataset, method) in done:
                continue
            done.add((dataset, method))
            rows.append(novelty(z, theta, tests[name], ids, reference).assign(dataset=name, method=method))
    return (pd.concat(rows).groupby(["dataset", "method"], sort=False).mean(numeric_only=True)
            .drop(columns=["task"]).reset_index())
