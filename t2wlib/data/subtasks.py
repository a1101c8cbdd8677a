"""Sub-tasks of a base dataset (paper §4.1, App. B.3): distinct class subsets and their split.

A task is a sorted tuple of k class ids, k ~ U{k_min, k_max} (paper: U{8, 32}, 12,000 tasks per
dataset), no task twice. The split is at task level: `unseen_fraction` of the tasks (paper: 20 %)
never reach the generator. With `held_out_classes` = h > 0, h classes are drawn first and every
task containing one of them is put in a third split, "heldout", so that generalisation to unseen
*classes* can be measured; seen/unseen then divide the remaining tasks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

SPLITS = ("seen", "unseen", "heldout")


@dataclass(frozen=True)
class TaskSet:
    """Tasks (sorted class-id tuples), the split of each, and the held-out classes."""

    classes: tuple[tuple[int, ...], ...]
    split: tuple[str, ...]
    held_out: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.classes)

    def ids(self, split: str) -> list[int]:
        if split not in SPLITS:
            raise ValueError(f"unknown task split {split!r}; allowed: {', '.join(SPLITS)}")
        return [i for i, s in enumerate(self.split) if s == split]

    def padded(self, ids: list[int] | None = None) -> torch.Tensor:
        """Class ids of tasks `ids` (default all) as (T, k_max) int64, padded with -1."""
        rows = [self.classes[i] for i in (range(len(self)) if ids is None else ids)]
        out = torch.full((len(rows), max(map(len, rows), default=0)), -1, dtype=torch.int64)
        for i, row in enumerate(rows):
            out[i, :len(row)] = torch.tensor(row)
        return out

    def to_json(self) -> dict:
        return {"classes": [list(c) for c in self.classes], "split": list(self.split), "held_out": list(self.held_out)}

    @classmethod
    def from_json(cls, d: dict) -> TaskSet:
        return cls(tuple(tuple(c) for c in d["classes"]), tuple(d["split"]), tuple(d["held_out"]))


def count_tasks(num_classes: int, k_min: int, k_max: int) -> int:
    """Number of distinct class subsets with k_min <= k <= k_max."""
    return sum(math.comb(num_classes, k) for k in range(k_min, k_max + 1))


def sample_tasks(num_classes: int, num_tasks: int, k_range: tuple[int, int], seed: int,
                 unseen_fraction: float = 0.2, held_out_classes: int = 0) -> TaskSet:
    """Draw `num_tasks` distinct tasks: k uniform over the sizes that still have unused subsets,
    then a uniform subset of that size. Fails before any work when the request is impossible."""
    k_min, k_max = k_range
    if not 2 <= k_min <= k_max <= num_classes:
        raise ValueError(f"k range {k_range} impossible for {num_classes} classes: need 2 <= k_min <= k_max <= {num_classes}")
    available = count_tasks(num_classes, k_min, k_max)
    if not 1 <= num_tasks <= available:
        raise ValueError(f"{num_tasks} tasks requested, but only {available} distinct tasks exist with "
                         f"k in [{k_min}, {k_max}] for {num_classes} classes")
    if not 0.0 <= unseen_fraction < 1.0:
        raise ValueError(f"unseen_fraction must be in [0, 1), got {unseen_fraction}")
    if not 0 <= held_out_classes <= num_classes - k_min:
        raise ValueError(f"held_out_classes={held_out_classes} leaves fewer than k_min={k_min} classes for seen tasks")
    rng = np.random.default_rng(seed)
    held_out = tuple(sorted(int(c) for c in rng.choice(num_classes, held_out_classes, replace=False)))
    used: dict[int, set[tuple[int, ...]]] = {k: set() for k in range(k_min, k_max + 1)}
    sizes, tasks = list(used), []
    while len(tasks) < num_tasks:
        k = int(rng.choice(sizes))
        task = tuple(sorted(int(c) for c in rng.choice(num_classes, k, replace=False)))
        if task not in used[k]:
            used[k].add(task)
            tasks.append(task)
        if len(used[k]) == math.comb(num_classes, k):
            sizes.remove(k)  # every subset of this size is taken
    split = ["heldout" if set(t) & set(held_out) else "seen" for t in tasks]
    rest = [i for i, s in enumerate(split) if s == "seen"]
    for i in rng.permutation(rest)[:round(unseen_fraction * len(rest))]:
        split[i] = "unseen"
    if "seen" not in split:
        raise ValueError("no seen task left: lower held_out_classes or unseen_fraction")
    return TaskSet(tuple(tasks), tuple(split), held_out)
