"""Scoring heads from any method (generated, retrieved, predicted) against the trained heads of the
same zoo tasks: accuracy on each task's classes and weight MSE per task (Table 1, Table 2, notebooks
04-07), and the tables' summaries (mean ± sd over seeds, share of the trained ceiling)."""

from __future__ import annotations

import pandas as pd
import torch

from ..data.features import FeatureSet
from ..heads.adapter import task_class_hits
from ..zoo.model_zoo import Zoo


def head_scores(zoo: Zoo, theta: torch.Tensor, test: FeatureSet, ids: list[int], per_class: bool = False) -> pd.DataFrame:
    """Per-task scores of heads θ (len(ids), P) for zoo tasks `ids`: test accuracy on the task (the
    zoo's protocol: the "prompt" class embeddings, argmax over the task's classes) and the weight
    MSE to the task's trained head, one row per task. With `per_class`, also the task's classes and,
    class by class, its correct test samples and test samples (space-separated integers, in the task's
    class order): what the bootstrap intervals of `intervals.py` resample."""
    padded = zoo.tasks.padded(ids)
    correct, samples = task_class_hits(theta, test.X, test.y, zoo.task_text["class_emb/prompt"], padded, zoo.spec)
    mse = ((theta - zoo.theta[ids]) ** 2).mean(1)
    scores = pd.DataFrame({"task": ids, "k": [len(zoo.tasks.classes[i]) for i in ids],
                           "accuracy": (correct.sum(1) / samples.sum(1)).numpy(), "mse": mse.numpy()})
    if per_class:
        def joined(counts: torch.Tensor) -> list[str]:
            return [" ".join(map(str, row[:len(zoo.tasks.classes[i])])) for i, row in zip(ids, counts.tolist(), strict=True)]
        scores = scores.assign(classes=joined(padded), class_correct=joined(correct), class_samples=joined(samples))
    return scores


def summarise(scores: pd.DataFrame, by: list[str], ceiling: str | None = "Trained (ceiling)") -> pd.DataFrame:
    """Mean ± std over seeds of per-seed task means. scores: one row per (…by, seed, task) with
    accuracy and mse; `by` names the grouping columns besides the seed. With `ceiling` (a value of
    the "method" column), each row also gets its mean accuracy as a fraction of that method's."""
    per_seed = scores.groupby([*by, "seed"], sort=False).agg(
        accuracy=("accuracy", "mean"), mse=("mse", "mean"), tasks=("task", "size")).reset_index()
    out = per_seed.groupby(by, sort=False).agg(
        accuracy_mean=("accuracy", "mean"), accuracy_std=("accuracy", "std"), mse_mean=("mse", "mean"),
        mse_std=("mse", "std"), seeds=("seed", "nunique"), tasks=("tasks", "max")).reset_index()
    if ceiling is not None:
        keys = [b for b in by if b != "method"]
        ref = out[out.method == ceiling].set_index(keys)["accuracy_mean"].rename("ceiling")
        out["of_ceiling"] = out.accuracy_mean / out.join(ref, on=keys)["ceiling"]
    return out


def mean_pm(df: pd.DataFrame, col: str, scale: float = 100, digits: int = 1) -> pd.Series:
    """"mean ± std" strings from summarise's `<col>_mean` and `<col>_std` columns (std 0 if one seed)."""
    mean, std = df[f"{col}_mean"] * scale, df[f"{col}_std"].fillna(0) * scale
    return mean.map(f"{{:.{digits}f}}".format) + " ± " + std.map(f"{{:.{digits}f}}".format)


def generated_heads_report(zoo: Zoo, theta: torch.Tensor, test: FeatureSet, ids: list[int]) -> dict:
    """Generated heads θ (len(ids), P) for zoo tasks `ids` against the trained heads of the same
    tasks: mean test accuracy of both, the Universal Model's, and the weight MSE."""
    scores = head_scores(zoo, theta, test, ids)
    trained = float(zoo.test_accuracy[ids].mean())
    return {"dataset": zoo.source.get("dataset"), "tasks": len(ids), "generated_mean": float(scores.accuracy.mean()),
            "trained_mean": trained, "universal_mean": float(zoo.universal_accuracy[ids].mean()),
            "generated_over_trained": float(scores.accuracy.mean()) / trained, "weight_mse": float(scores.mse.mean())}
