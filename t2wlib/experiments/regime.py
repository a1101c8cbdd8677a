"""Is a dataset in the paper's regime (01_zoo)? The linear probe of its cached features on all
classes, and the zoo's summary: how much the task heads gain over the Universal Model. T2W can only
matter where a task head beats one head for all classes by a margin."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..core.files import read_json_checked
from ..data.features import FeatureSet
from ..zoo.model_zoo import Zoo

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


# A probe that beats the majority class by less than this cannot tell the classes apart: noise, one
# colour everywhere, or a broken backbone load. No head can be learned from such features.
SEPARABLE_MARGIN = 0.3


class InseparableDataError(ValueError):
    """A dataset whose backbone features do not separate its classes (linear_probe)."""


def check_separable(probe: dict) -> None:
    """InseparableDataError in one line when a `linear_probe` record scores less than SEPARABLE_MARGIN
    above its majority-class baseline: the run stops before any zoo is trained on such data."""
    if probe["test_accuracy"] < probe["majority_baseline"] + SEPARABLE_MARGIN:
        raise InseparableDataError(
            f"dataset {probe['dataset']}: a linear probe on its backbone features scores "
            f"{100 * probe['test_accuracy']:.1f} % on its test images (majority class {100 * probe['majority_baseline']:.1f} "
            f"%, needed: {100 * SEPARABLE_MARGIN:.0f} points more), so its classes cannot be told apart and no head "
            "can be learned; check that the images show their classes")


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
