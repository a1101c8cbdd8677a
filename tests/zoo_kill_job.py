"""Zoo builds that SIGKILL themselves at every file event, for the zoo kill test (as generator_kill_job.py
does for generator training: the same file events, counted from outside the library).

    python tests/zoo_kill_job.py ROOT count     build ROOT/reference to the end; print its number of file events
    python tests/zoo_kill_job.py ROOT kill N    for each n in 1..N fork a child that builds ROOT/event<n> and
                                                kills itself just before its n-th file event; print the signals
                                                that ended the children as JSON
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from t2wlib.heads.training import HeadTrainConfig

sys.path.insert(0, str(Path(__file__).parent))
import zoo_job  # noqa: E402
from generator_kill_job import count_file_events, forked_signal  # noqa: E402

# Two shards, one epoch per stage: every kind of file the build writes, in a fraction of a second.
SMALL = dict(num_tasks=8, shard_size=4, stage1=HeadTrainConfig(epochs=1, lr=1e-2, batch_size=8),
             stage2=HeadTrainConfig(epochs=1, lr=1e-2, batch_size=8),
             universal=HeadTrainConfig(epochs=1, lr=1e-2, batch_size=16))


def build(directory: Path) -> None:
    zoo_job.build(directory, **SMALL)


def killed_child(directory: Path, point: int) -> int:
    """Fork a child that builds `directory` and dies just before file event `point`; the signal that ended it."""
    def work():
        count_file_events(kill_at=point)
        build(directory)
    return forked_signal(work)


if __name__ == "__main__":
    torch.set_num_threads(1)  # before any parallel work, so forking is safe; the test resumes with one thread too
    root, command = Path(sys.argv[1]), sys.argv[2]
    build(root / f"warm-up-{command}")  # torch's lazy imports (and their files) done before counting or forking
    if command == "count":
        events = count_file_events()
        build(root / "reference")
        print(events[0])
    else:
        print(json.dumps([killed_child(root / f"event{n}", n) for n in range(1, int(sys.argv[3]) + 1)]))
