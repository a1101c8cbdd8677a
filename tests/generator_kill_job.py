"""Generator training runs that SIGKILL themselves at chosen points, for the generator kill test.

    python tests/generator_kill_job.py ZOO ROOT count           train ROOT/reference to the end; print the
                                                                number of file events it made
    python tests/generator_kill_job.py ZOO ROOT kill POINTS     for each "name:mode:n" of POINTS (comma-
                                                                separated, in order), fork a child that
                                                                trains ROOT/name and kills itself; print
                                                                [name, exit signal] per child as JSON

A kill point is `event:N` (just before the N-th file event) or `step:S` (right after training step S).
File events are the os calls that atomic writes, checkpoint rotation and clean-up make (mkdir,
fsync, chmod, replace, unlink), so the kill points fall between and inside every file write of
train_generator and Trainer.save_checkpoint: faults injected from outside, no hook in the library.
The children are forked from one warm process (torch imported, one thread), so a point costs a
fraction of a second instead of a Python start.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import torch

from t2wlib.generator.from_zoo import train_generator
from t2wlib.generator.trainer import Trainer
from t2wlib.pipeline.config import generator_config
from t2wlib.pipeline.profiles import get_profile
from t2wlib.zoo.model_zoo import load_zoo

FILE_EVENTS = ("mkdir", "fsync", "chmod", "replace", "unlink")


def profile():
    """12 steps (32 seen tasks, batches of 8, 3 epochs), a checkpoint every 3, all three losses."""
    return get_profile("smoke", block_size=8, gen_epochs=3, gen_batch_size=8, checkpoint_every=3)


def train(zoo_dir, out):
    zoo = load_zoo(zoo_dir)
    return train_generator(out, zoo, generator_config(profile(), zoo, "prompt", 5), progress=False)


def count_file_events(kill_at: int | None = None) -> list[int]:
    """Count (and at `kill_at`, die just before) the os calls of FILE_EVENTS in this process."""
    counter = [0]
    def counting(original):
        def counted(*args, **kwargs):
            counter[0] += 1
            if counter[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(*args, **kwargs)
        return counted

    for name in FILE_EVENTS:
        setattr(os, name, counting(getattr(os, name)))
    return counter


def kill_after_step(stop: int) -> None:
    step = Trainer.train_step

    def step_then_kill(self):
        record = step(self)
        if self.step == stop:
            os.kill(os.getpid(), signal.SIGKILL)
        return record
    Trainer.train_step = step_then_kill


def forked_signal(work) -> int:
    """Run `work()` in a forked child (which exits without cleanup); the signal that ended it (0: none)."""
    pid = os.fork()
    if pid == 0:
        try:
            work()
        finally:
            os._exit(0)
    status = os.waitpid(pid, 0)[1]
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0


def killed_child(zoo, out: Path, mode: str, point: int) -> int:
    """Fork a child that trains into `out` with a kill at `point`; the signal that ended it (0: none)."""
    def work():
        if mode == "event":
            count_file_events(kill_at=point)
        else:
            kill_after_step(point)
        train_generator(out, zoo, generator_config(profile(), zoo, "prompt", 5), progress=False)
    return forked_signal(work)


if __name__ == "__main__":
    torch.set_num_threads(1)  # before any parallel work, so forking is safe; the test resumes with one thread too
    zoo_dir, root, command = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    zoo = load_zoo(zoo_dir)
    # One full run first, so that torch's lazy imports (and their files) are done before counting or forking.
    train_generator(root / f"warm-up-{command}", zoo, generator_config(profile(), zoo, "prompt", 5), progress=False)
    if command == "count":
        events = count_file_events()
        train_generator(root / "reference", zoo, generator_config(profile(), zoo, "prompt", 5), progress=False)
        print(events[0])
    else:
        results = []
        for spec in sys.argv[4].split(","):  # in order: a name given twice is killed, resumed and killed again
            name, mode, point = spec.split(":")
            results.append([name, killed_child(zoo, root / name, mode, int(point))])
        print(json.dumps(results))
