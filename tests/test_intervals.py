"""The class-resampling paired bootstrap (experiments/intervals.py) and the class-identity baseline
(methods/baselines.py): intervals that keep their coverage when tasks share classes, where a bootstrap
over tasks does not; and a text-free baseline that recovers heads made of per-class parts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from t2wlib.data.subtasks import TaskSet
from t2wlib.experiments.intervals import method_differences, paired_difference, parse_counts
from t2wlib.methods.baselines import class_identity_heads

SAMPLES = 100  # test samples per class


def shared_class_tasks(rng, num_classes=40, num_tasks=200, k=4) -> np.ndarray:
    """(num_tasks, k) class ids: tasks of k classes drawn from num_classes, so they share classes."""
    return np.stack([np.sort(rng.choice(num_classes, k, replace=False)) for _ in range(num_tasks)])


def counts(rng, classes, class_effect, task_sd=0.02, base=0.6):
    """Correct samples per (task, class) of a method whose accuracy on class c of task t is
    base + class_effect[c] + a task effect: (tasks, k) integers out of SAMPLES."""
    task_effect = rng.normal(0, task_sd, (len(classes), 1))
    return np.clip(np.rint(SAMPLES * (base + class_effect[classes] + task_effect)), 0, SAMPLES).astype(np.int64)


def test_intervals_keep_their_coverage_when_tasks_share_classes():
    """Method a's edge on a class is drawn around 0 for each class: an experiment's mean difference is off 0
    by its 40 classes' draw, which resampling tasks cannot see. Over 60 experiments the task x class interval
    holds 0 at least 85 % of the time; the task-only interval (tasks treated as independent) far less often."""
    rng = np.random.default_rng(0)
    covered = {("task", "class"): 0, ("task",): 0}
    for experiment in range(60):
        classes = shared_class_tasks(rng)
        a = counts(rng, classes, rng.normal(0, 0.08, 40))
        b = counts(rng, classes, np.zeros(40))
        samples = np.full(classes.shape, SAMPLES)
        for factors in covered:
            found = paired_difference(a, b, samples, classes, np.arange(len(classes)), factors, resamples=500,
                                      seed=experiment)
            covered[factors] += found["low"] <= 0 <= found["high"]
    assert covered["task", "class"] >= 51
    assert covered["task",] <= 40


def test_a_real_difference_is_found_its_sign_kept_and_seeds_pair_with_their_task():
    rng = np.random.default_rng(1)
    classes = shared_class_tasks(rng)
    b = counts(rng, classes, rng.normal(0, 0.05, 40))
    a = b + 3  # 3 more correct samples of every class: +3 pt on every task
    samples = np.full(classes.shape, SAMPLES)
    found = paired_difference(a, b, samples, classes, np.arange(len(classes)))
    assert found["difference"] == pytest.approx(0.03) and found["low"] == pytest.approx(0.03)
    noisy = a + rng.integers(-2, 3, a.shape)
    found = paired_difference(noisy, b, samples, classes, np.arange(len(classes)))
    assert 0 < found["low"] < found["difference"] < found["high"]
    assert paired_difference(b, noisy, samples, classes, np.arange(len(classes)))["high"] < 0
    # Two seeds of the same tasks: the rows of a task move together, so the interval is that of one seed's
    # rows, not a narrower one from counting each task twice.
    twice = paired_difference(np.concatenate([noisy, noisy]), np.concatenate([b, b]), np.concatenate([samples, samples]),
                              np.concatenate([classes, classes]), np.tile(np.arange(len(classes)), 2))
    assert twice["high"] - twice["low"] == pytest.approx(found["high"] - found["low"], rel=0.15)
    # Unequal class sizes: the difference is of task accuracies (correct over the task's samples).
    sizes = rng.integers(5, 20, classes.shape)
    found = paired_difference(np.minimum(a, sizes), np.zeros_like(a), sizes, classes, np.arange(len(classes)))
    assert found["difference"] == pytest.approx((np.minimum(a, sizes).sum(1) / sizes.sum(1)).mean())


def test_method_differences_reads_the_score_tables_columns_pairs_rows_and_refuses_unpaired_ones():
    rng = np.random.default_rng(2)
    classes = shared_class_tasks(rng, num_tasks=30)

    def joined(row):
        return " ".join(map(str, row))

    rows = [{"dataset": "d", "split": "unseen", "method": m, "seed": s, "task": t, "classes": joined(classes[t]),
             "class_correct": joined([5 + 2 * (m == "A")] * 4), "class_samples": joined([10] * 4)}
            for m in ("A", "B") for s in (1, 2) for t in range(30)]
    scores = pd.DataFrame(rows).sample(frac=1, random_state=0)  # row order must not matter
    assert np.array_equal(parse_counts(scores.classes.iloc[:2]), np.stack([classes[t] for t in scores.task.iloc[:2]]))
    table = method_differences(scores, [("A", "B"), ("A", "missing")], resamples=200)
    assert len(table) == 1  # a pair with a method not scored here is left out
    row = table.iloc[0]
    assert (row.method, row.compared_with, row.rows) == ("A", "B", 60)
    assert row.difference_pt == pytest.approx(20) and row.low_pt == pytest.approx(20) and row.excludes_0
    with pytest.raises(ValueError, match="different \\(seed, task\\) rows"):
        method_differences(scores.drop(scores.index[0]), [("A", "B")])
    with pytest.raises(ValueError, match="interval level 1.5"):
        paired_difference(*(np.ones((3, 2), int),) * 4, np.arange(3), level=1.5)
    with pytest.raises(ValueError, match="bootstrap factors \\('seed',\\)"):
        paired_difference(*(np.ones((3, 2), int),) * 4, np.arange(3), factors=("seed",))
    with pytest.raises(ValueError, match="one task id per row"):
        paired_difference(*(np.ones((3, 2), int),) * 4, np.arange(2))


def test_class_identity_recovers_heads_made_of_per_class_parts_and_knows_nothing_of_new_classes():
    rng = np.random.default_rng(4)
    num_classes, params = 12, 5
    parts = torch.tensor(rng.normal(0, 1, (num_classes, params)))
    parts[-1] = 0  # class 11 is in no seen task: its part cannot be learned
    bias = torch.tensor(rng.normal(0, 1, params))
    seen = [tuple(sorted(rng.choice(11, rng.integers(2, 5), replace=False))) for _ in range(300)]
    new = [(0, 3), (2, 5, 7), (4, 11)]

    def heads(tasks):
        return torch.stack([bias + parts[list(t)].mean(0) for t in tasks])

    def padded(tasks):  # (T, K) class ids, -1 padded, as TaskSet.padded gives them
        return TaskSet(tuple(tasks), ("seen",) * len(tasks), ()).padded()

    found = class_identity_heads(padded(new), padded(seen), heads(seen), num_classes).double()
    assert torch.allclose(found[:2], heads(new[:2]), atol=1e-3)
    # A task with a class never seen is its seen classes' mean: b + u_4, what the fit determines of it.
    assert torch.allclose(found[2], bias + parts[4], atol=1e-3)
    unknown = class_identity_heads(padded([(11,)]), padded(seen), heads(seen), num_classes).double()
    assert torch.allclose(unknown[0], bias + parts[:11].mean(0), atol=1e-3)  # no seen class: the mean class
