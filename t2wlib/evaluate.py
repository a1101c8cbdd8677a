"""Evaluation: sanity checks of cached features (linear probe) and, later, of generated heads."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .features import FeatureSet
from .head import task_accuracy
from .zoo import Zoo


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
    train_s = json.loads((zoo.directory / "manifest.json").read_text())["train_seconds"]
    rows = []
    for split, g in df.groupby("split", sort=False):
        rows.append({"dataset": zoo.source.get("dataset"), "split": split, "tasks": len(g), "mean_k": g.k.mean(),
                     "trained_mean": g.test_accuracy.mean(), "trained_std": g.test_accuracy.std(),
                     "universal_mean": g.universal_accuracy.mean(), "universal_std": g.universal_accuracy.std(),
                     "trained_minus_universal": (g.test_accuracy - g.universal_accuracy).mean(),
                     "chance": (1 / g.k).mean(), "zoo_train_seconds": train_s})
    return pd.DataFrame(rows)


def generated_heads_report(zoo: Zoo, theta: torch.Tensor, test: FeatureSet, ids: list[int]) -> dict:
    """Generated heads θ (len(ids), P) for zoo tasks `ids` against the trained heads of the same
    tasks: mean test accuracy of both, the Universal Model's, and the weight MSE."""
    classes = zoo.tasks.padded(ids)
    acc = task_accuracy(theta, test.X, test.y, zoo.task_text["class_emb/prompt"], classes, zoo.spec)
    return {"dataset": zoo.source.get("dataset"), "tasks": len(ids), "generated_mean": float(acc.mean()),
            "trained_mean": float(zoo.test_accuracy[ids].mean()), "universal_mean": float(zoo.universal_accuracy[ids].mean()),
            "generated_over_trained": float(acc.mean() / zoo.test_accuracy[ids].mean()),
            "weight_mse": float(((theta - zoo.theta[ids]) ** 2).mean())}
