"""Crash consistency of generator training: a trainer SIGKILLed at every file event of its run (and
after chosen steps) resumes to the same bits as an uninterrupted run, leaving no temp files."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from t2wlib.core.locks import FolderBusyError, FolderLock
from t2wlib.core.sealed import load_sealed
from t2wlib.generator.trainer import KEEP_CHECKPOINTS, checkpoint_files

sys.path.insert(0, str(Path(__file__).parent))
import generator_kill_job as job  # noqa: E402
import zoo_job  # noqa: E402

JOB = Path(__file__).parent / "generator_kill_job.py"
STEP_KILLS = (1, 2, 4, 5, 8, 11)  # between checkpoints (every 3 steps of 12)


@pytest.fixture(scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the killed subprocesses, so that both compute the same bits
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, one_thread):
    root = tmp_path_factory.mktemp("kill")
    zoo_job.build(root / "zoo")
    run = subprocess.run([sys.executable, str(JOB), str(root / "zoo"), str(root), "count"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return root, int(run.stdout.split()[-1])


def _state(directory: Path) -> dict[str, torch.Tensor]:
    """Everything a finished run leaves: EMA weights, the last checkpoint (model, EMA, discriminator,
    both optimisers), and the loss curve."""
    ema = load_sealed(directory / "ema.safetensors", "ema")[0]
    ckpt, meta = load_sealed(checkpoint_files(directory)[0], "checkpoint")
    curves = [json.loads(line) for line in (directory / "curves.jsonl").read_text().splitlines()]
    assert [r["step"] for r in curves] == list(range(1, len(curves) + 1)) == list(range(1, int(meta["step"]) + 1))
    loss = torch.tensor([[r[k] for k in sorted(r)] for r in curves], dtype=torch.float64)
    return {**{f"ema/{k}": v for k, v in ema.items()}, **{f"ckpt/{k}": v for k, v in ckpt.items()}, "curves": loss}


def _kill(root: Path, points: list[tuple[str, str, int]]) -> list[tuple[str, int]]:
    """Run every (name, mode, point) in order in one warm subprocess that forks a child per point;
    (name, the signal the child died of) per point."""
    spec = ",".join(f"{name}:{mode}:{point}" for name, mode, point in points)
    run = subprocess.run([sys.executable, str(JOB), str(root / "zoo"), str(root), "kill", spec],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return [tuple(r) for r in json.loads(run.stdout.splitlines()[-1])]


def test_killed_at_every_file_event_and_between_steps_resumes_bit_identically(reference):
    root, events = reference
    expected = _state(root / "reference")
    points = [(f"event{n}", "event", n) for n in range(1, events + 1)] + [(f"step{s}", "step", s) for s in STEP_KILLS]
    assert len(points) >= 20
    killed = _kill(root, points)
    assert killed == [(name, signal.SIGKILL) for name, _, _ in points]  # each really died, at its point
    for name, _, _ in points:
        directory = root / name
        assert len(checkpoint_files(directory)) <= KEEP_CHECKPOINTS + 1  # + 1: killed before pruning
        job.train(root / "zoo", directory)  # resume in this process
        assert not list(directory.glob(".*.tmp")), name  # no temp file survives the resume
        assert len(checkpoint_files(directory)) <= KEEP_CHECKPOINTS
        got = _state(directory)
        assert got.keys() == expected.keys(), name
        for key in expected:
            assert torch.equal(got[key], expected[key]), (name, key)


def test_repeated_kills_still_resume_bit_identically(reference):
    root, events = reference
    points = [("repeated", "event", events // 3)] * 3  # killed, resumed, killed again (later: it resumed), ...
    assert _kill(root, points) == [("repeated", signal.SIGKILL)] * 3
    job.train(root / "zoo", root / "repeated")
    got, expected = _state(root / "repeated"), _state(root / "reference")
    assert all(torch.equal(got[k], expected[k]) for k in expected)


def test_a_corrupted_latest_checkpoint_falls_back_to_the_one_before(reference):
    import shutil
    import warnings

    root, _ = reference
    copy = root / "fallback"
    assert _kill(root, [("fallback", "step", 8)]) == [("fallback", signal.SIGKILL)]  # checkpoints 6, 3 remain
    latest = checkpoint_files(copy)[0]
    raw = bytearray(latest.read_bytes())
    raw[-3] ^= 0x10
    latest.write_bytes(bytes(raw))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        job.train(root / "zoo", copy)
    assert any("fails its checksum" in str(w.message) and "falling back" in str(w.message) for w in caught)
    got, expected = _state(copy), _state(root / "reference")
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    shutil.rmtree(copy)


def test_a_second_trainer_on_the_same_folder_is_refused(reference, tmp_path):
    root, _ = reference
    with FolderLock(tmp_path / "gen", "generator trainer"):
        with pytest.raises(FolderBusyError, match="in use by another generator trainer"):
            job.train(root / "zoo", tmp_path / "gen")
    job.train(root / "zoo", tmp_path / "gen")  # the lock is gone with its holder
    assert len((tmp_path / "gen" / "curves.jsonl").read_text().splitlines()) == 12
