"""Evaluation: sanity checks of cached features (linear probe) and, later, of generated heads."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .features import FeatureSet


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
