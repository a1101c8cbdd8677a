"""Confidence intervals for accuracy differences between methods scored on the same zoo tasks: a paired
bootstrap that resamples tasks and classes (Owen's pigeonhole bootstrap for crossed factors).

The tasks of a zoo share classes (and each class its test images): two tasks holding "cat" are not
independent draws, so a bootstrap over tasks, or a standard error over them, overstates certainty.
A task's accuracy is a sum over its classes (the correct samples of each class over the task's
samples, `heads.adapter.task_class_hits`), so the difference of two methods on a task splits into
cells, one per (task, class). A draw picks the tasks with replacement (W_t copies of task t; a task's
rows under every seed move together) and, independently, the classes (V_c copies of class c), and
weighs cell (t, c) by W_t V_c: a class drawn twice counts twice in every task that holds it. The
statistic is the weighted share of correct samples of method a minus method b over the weighted
samples, which with every weight 1 is the mean over (seed, task) rows of the accuracy difference
(pooled seeds, paired on the same seed and task). The interval is the percentile interval of the
draws. Resampling both factors counts their interaction twice, so the interval errs wide, never narrow.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RESAMPLES = 2000
LEVEL = 0.95
FACTORS = ("task", "class")  # what a draw resamples; ("task",) is the bootstrap that ignores shared classes


def parse_counts(column: pd.Series) -> np.ndarray:
    """A column of space-separated integers per row (score tables' "classes", "class_correct" and
    "class_samples") -> (rows, K) int64, -1 padded."""
    rows = [np.array(text.split(), dtype=np.int64) for text in column]
    out = np.full((len(rows), max(map(len, rows), default=0)), -1, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out


def paired_difference(correct_a: np.ndarray, correct_b: np.ndarray, samples: np.ndarray, classes: np.ndarray,
                      tasks: np.ndarray, factors: tuple[str, ...] = FACTORS, resamples: int = RESAMPLES,
                      level: float = LEVEL, seed: int = 0) -> dict:
    """Mean accuracy difference a - b over rows, with its bootstrap interval: {"difference", "low", "high"}.

    Each row is one task under one seed: correct_a, correct_b (R, K) the correct samples of each of its
    classes under the two methods, samples (R, K) the class's samples, classes (R, K) the class ids (-1
    pads a shorter task), tasks (R,) the task id (rows of one task under several seeds share it)."""
    shapes = {a.shape for a in (correct_a, correct_b, samples, classes)}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2 or len(tasks) != len(classes):
        raise ValueError(f"paired scores need (rows, classes) counts and one task id per row: got shapes "
                         f"{[a.shape for a in (correct_a, correct_b, samples, classes)]} and {len(tasks)} task ids")
    if not 0 < level < 1:
        raise ValueError(f"interval level {level}: allowed strictly between 0 and 1")
    if not set(factors) <= set(FACTORS) or not factors:
        raise ValueError(f"bootstrap factors {factors}: allowed a non-empty subset of {FACTORS}")
    valid = classes >= 0
    per_row = np.where(valid, samples, 0).sum(1, keepdims=True).astype(float)  # (R, 1) the task's samples
    if (per_row == 0).any():
        raise ValueError("a row has no test samples: its accuracy is undefined")
    diff = np.where(valid, correct_a - correct_b, 0) / per_row  # (R, K): sums to each row's accuracy difference
    share = np.where(valid, samples, 0) / per_row  # (R, K): sums to 1 per row
    task_ids, task_of_row = np.unique(tasks, return_inverse=True)
    class_ids, class_of_cell = np.unique(classes[valid], return_inverse=True)
    rng = np.random.default_rng(seed)

    def draw_counts(units: int, factor: str) -> np.ndarray:  # (resamples, units) copies of each unit
        if factor not in factors:
            return np.ones((resamples, units))
        return rng.multinomial(units, np.full(units, 1 / units), resamples).astype(float)

    # Cells as dense (R, classes) matrices, so a draw's weighted sums are two matrix products.
    rows_of_cell = np.nonzero(valid)[0]
    dense_diff, dense_share = (np.zeros((len(classes), len(class_ids))) for _ in range(2))
    dense_diff[rows_of_cell, class_of_cell] = diff[valid]
    dense_share[rows_of_cell, class_of_cell] = share[valid]
    task_w = draw_counts(len(task_ids), "task")[:, task_of_row]  # (B, R)
    class_w = draw_counts(len(class_ids), "class")  # (B, classes)
    total = (task_w * (class_w @ dense_share.T)).sum(1)
    kept = total > 0  # a draw that holds none of these cells says nothing about them
    draws = (task_w * (class_w @ dense_diff.T)).sum(1)[kept] / total[kept]
    tail = (1 - level) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return {"difference": float(diff.sum(1).mean()), "low": float(low), "high": float(high)}


def method_differences(scores: pd.DataFrame, pairs: list[tuple[str, str]], by: tuple[str, ...] = ("dataset", "split"),
                       factors: tuple[str, ...] = FACTORS, resamples: int = RESAMPLES, level: float = LEVEL) -> pd.DataFrame:
    """Accuracy differences (percentage points) between method pairs, with pigeonhole-bootstrap intervals.

    scores: one row per (…by, method, seed, task) with the columns "classes", "class_correct" and
    "class_samples" (`scoring.head_scores(..., per_class=True)`, as Table 1's per-task file has them);
    pairs: (method, compared with) labels. Returns one row per group of `by` and pair scored in it: the
    difference, its interval, whether the interval excludes 0, and the (seed, task) rows it pools."""
    rows = []
    for group, part in scores.groupby(list(by), sort=False):
        keys = dict(zip(by, group, strict=True))
        for method, other in pairs:
            a = part[part.method == method].set_index(["seed", "task"]).sort_index()
            b = part[part.method == other].set_index(["seed", "task"]).sort_index()
            if a.empty or b.empty:
                continue
            if not a.index.equals(b.index) or not a.classes.equals(b.classes):
                raise ValueError(f"{method} and {other} are scored on different (seed, task) rows in {keys}")
            found = paired_difference(parse_counts(a.class_correct), parse_counts(b.class_correct),
                                      parse_counts(a.class_samples), parse_counts(a.classes),
                                      a.index.get_level_values("task").to_numpy(), factors, resamples, level)
            rows.append({**keys, "method": method, "compared_with": other,
                         **{f"{k}_pt": round(100 * v, 2) for k, v in found.items()},
                         "excludes_0": found["low"] > 0 or found["high"] < 0, "rows": len(a)})
    return pd.DataFrame(rows)
