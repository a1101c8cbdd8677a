"""Sub-task sampling: distinct, in range, split reproducibly, impossible requests refused early."""

from __future__ import annotations

import pytest

from t2wlib.data.subtasks import count_tasks, sample_tasks


def test_tasks_are_distinct_sorted_and_in_range():
    ts = sample_tasks(20, 300, (3, 6), seed=1)
    assert len(set(ts.classes)) == 300
    assert all(3 <= len(t) <= 6 and list(t) == sorted(set(t)) and max(t) < 20 for t in ts.classes)
    assert {len(t) for t in ts.classes} == {3, 4, 5, 6}


def test_split_is_disjoint_reproducible_and_80_20():
    a, b = sample_tasks(20, 300, (3, 6), seed=1), sample_tasks(20, 300, (3, 6), seed=1)
    assert a == b and a != sample_tasks(20, 300, (3, 6), seed=2)
    seen, unseen = set(a.ids("seen")), set(a.ids("unseen"))
    assert not seen & unseen and len(seen) + len(unseen) == 300 and len(unseen) == 60
    assert not {a.classes[i] for i in seen} & {a.classes[i] for i in unseen}


def test_every_distinct_task_can_be_drawn():
    n = count_tasks(10, 2, 9)
    assert n == 1012
    ts = sample_tasks(10, n, (2, 9), seed=0)
    assert len(set(ts.classes)) == n


def test_held_out_classes_never_appear_in_seen_or_unseen_tasks():
    ts = sample_tasks(10, 600, (2, 5), seed=3, held_out_classes=2)
    assert len(ts.held_out) == 2
    for t, split in zip(ts.classes, ts.split):
        assert (split == "heldout") == bool(set(t) & set(ts.held_out))
    assert ts.ids("seen") and ts.ids("unseen") and ts.ids("heldout")


def test_padded_class_ids():
    ts = sample_tasks(10, 5, (2, 4), seed=0)
    p = ts.padded([0, 1])
    assert p.shape == (2, max(len(ts.classes[0]), len(ts.classes[1])))
    assert [int(c) for c in p[0] if c >= 0] == list(ts.classes[0])


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_classes=10, num_tasks=5, k_range=(2, 11)), "impossible for 10 classes"),
    (dict(num_classes=10, num_tasks=1013, k_range=(2, 9)), "only 1012 distinct tasks"),
    (dict(num_classes=10, num_tasks=5, k_range=(1, 3)), "k_min"),
    (dict(num_classes=10, num_tasks=5, k_range=(2, 3), unseen_fraction=1.0), "unseen_fraction"),
    (dict(num_classes=10, num_tasks=5, k_range=(2, 3), held_out_classes=9), "held_out_classes"),
])
def test_impossible_requests_fail_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sample_tasks(seed=0, **kwargs)
