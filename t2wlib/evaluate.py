"""Evaluation: the linear probe of cached features, zoo summaries, and the scoring of heads from any
method (generated, retrieved, predicted) against the trained heads of the same tasks: accuracy,
weight MSE (Table 1, Table 2), novelty (memorisation check) and denoising trajectories (Figure 3)."""

from __future__ import annotations


from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .cache import read_json_checked
from .features import FeatureSet
from .head import task_accuracy, task_predictions
from .zoo import Zoo


# The paper's regime (100-256 classes, r = 16): features neither trivial nor hopeless, and one head
# for all classes capacity-limited, so that task heads gain over it (01_zoo, scripts/emoji_regime.py).
REGIME_PROBE = (0.55, 0.85)  # linear-probe accuracy on all classes
REGIME_GAP = 0.05  # trained task heads minus the Universal Model, on seen tasks


def in_paper_regime(linear_probe_accuracy, trained_minus_universal):
    """Whether a dataset (scalars) or each dataset (pandas Series) is in the paper's regime."""
    lo, hi = REGIME_PROBE
    return (linear_probe_accuracy >= lo) & (linear_probe_accuracy <= hi) & (trained_minus_universal >= REGIME_GAP)


def linear_probe(train: FeatureSet, test: FeatureSet, seed: int = 0, C: float = 0.1) -> dict:
    """Multinomial logistic regression on standardised features: is the frozen backbone informative?

    Returns train/test accuracy, the majority-class baseline and the sizes; C is the inverse L2
    strength (0.1: features are 1280-dimensional and the training sets small)."""
    if train.class_names != test.class_names:
        raise ValueError("train and test feature sets have different classes")
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000, random_state=seed))
    clf.fit(train.X.numpy(), train.y.numpy())
    majority = np.bincount(test.y.numpy()).max() / len(test.y)
    return {
        "dataset": train.dataset,
        "n_train": len(train.y), "n_test": len(test.y), "classes": len(train.class_names),
        "train_accuracy": float(clf.score(train.X.numpy(), train.y.numpy())),
        "test_accuracy": float(clf.score(test.X.numpy(), test.y.numpy())),
        "majority_baseline": float(majority),
    }


def zoo_summary(zoo: Zoo) -> pd.DataFrame:
    """One row per task split of a zoo: mean/std test accuracy of the trained heads and of the
    Universal Model on the same tasks, chance level, and the zoo's training compute."""
    df = zoo.table()
    train_s = read_json_checked(zoo.directory / "manifest.json", "zoo manifest")["train_seconds"]
    rows = []
    for split, g in df.groupby("split", sort=False):
        rows.append({"dataset": zoo.source.get("dataset"), "split": split, "tasks": len(g), "mean_k": g.k.mean(),
                     "trained_mean": g.test_accuracy.mean(), "trained_std": g.test_accuracy.std(),
                     "universal_mean": g.universal_accuracy.mean(), "universal_std": g.universal_accuracy.std(),
                     "trained_minus_universal": (g.test_accuracy - g.universal_accuracy).mean(),
                     "chance": (1 / g.k).mean(), "zoo_train_seconds": train_s})
    return pd.DataFrame(rows)


def head_scores(zoo: Zoo, theta: torch.Tensor, test: FeatureSet, ids: list[int]) -> pd.DataFrame:
    """Per-task scores of heads θ (len(ids), P) for zoo tasks `ids`: test accuracy on the task (the
    zoo's protocol: the "prompt" class embeddings, argmax over the task's classes) and the weight
    MSE to the task's trained head, one row per task."""
    acc = task_accuracy(theta, test.X, test.y, zoo.task_text["class_emb/prompt"], zoo.tasks.padded(ids), zoo.spec)
    mse = ((theta - zoo.theta[ids]) ** 2).mean(1)
    return pd.DataFrame({"task": ids, "k": [len(zoo.tasks.classes[i]) for i in ids],
                         "accuracy": acc.numpy(), "mse": mse.numpy()})


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


def trajectory_accuracy(trajectory: list[tuple[int, torch.Tensor]], zoo: Zoo, test: FeatureSet,
                        ids: list[int], stride: int = 1) -> pd.DataFrame:
    """Figure 3: accuracy of the decoded x0-estimate at recorded sampling steps. trajectory:
    [(t, θ̂ (len(ids), P))] as T2WGenerator.sample(record=True) returns it; scored at the first
    step, every `stride`-th and the last. One row per (step, task); `step` counts sampling steps
    done (1 = first), t is the diffusion time it denoised from."""
    if stride < 1:
        raise ValueError(f"trajectory stride {stride} must be at least 1")
    steps = [s for s in range(len(trajectory)) if s == 0 or (s + 1) % stride == 0 or s == len(trajectory) - 1]
    theta = torch.cat([trajectory[s][1] for s in steps])  # (S · Q, P), step-major
    repeat = [i for _ in steps for i in ids]
    acc = task_accuracy(theta, test.X, test.y, zoo.task_text["class_emb/prompt"], zoo.tasks.padded(repeat), zoo.spec)
    return pd.DataFrame({"step": [s + 1 for s in steps for _ in ids],
                         "t": [trajectory[s][0] for s in steps for _ in ids], "task": repeat, "accuracy": acc.numpy()})


def generated_heads_report(zoo: Zoo, theta: torch.Tensor, test: FeatureSet, ids: list[int]) -> dict:
    """Generated heads θ (len(ids), P) for zoo tasks `ids` against the trained heads of the same
    tasks: mean test accuracy of both, the Universal Model's, and the weight MSE."""
    scores = head_scores(zoo, theta, test, ids)
    trained = float(zoo.test_accuracy[ids].mean())
    return {"dataset": zoo.source.get("dataset"), "tasks": len(ids), "generated_mean": float(scores.accuracy.mean()),
            "trained_mean": trained, "universal_mean": float(zoo.universal_accuracy[ids].mean()),
            "generated_over_trained": float(scores.accuracy.mean()) / trained, "weight_mse": float(scores.mse.mean())}
