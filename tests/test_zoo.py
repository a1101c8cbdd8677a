"""The model zoo: build, verified load, tamper detection, kill-and-resume, torchrun shards, export."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.numpy import load_file as load_numpy

from t2wlib.core.files import CorruptArtifactError
from t2wlib.heads.adapter import task_accuracy
from t2wlib.zoo.export import export_pairs
from t2wlib.zoo.model_zoo import load_zoo

sys.path.insert(0, str(Path(__file__).parent))
import zoo_job  # noqa: E402

JOB = Path(__file__).parent / "zoo_job.py"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted single-process build."""
    directory = tmp_path_factory.mktemp("zoo") / "reference"
    zoo_job.build(directory)
    return load_zoo(directory)


def test_zoo_contents(reference):
    z = reference
    T = 40
    assert z.theta.shape == (T, z.spec.num_params) and z.test_accuracy.shape == (T,)
    train, test, emb = zoo_job.synthetic_data()
    # Stored accuracies are those of the stored heads.
    recomputed = task_accuracy(z.theta, test.X, test.y, emb["prompt"], z.tasks.padded(), z.spec)
    torch.testing.assert_close(recomputed, z.test_accuracy)
    assert z.test_accuracy.mean() > 0.9 and z.test_accuracy.mean() >= z.universal_accuracy.mean()
    assert not torch.equal(z.theta[0], z.stage1)  # fine-tuned away from the stage-1 adapter
    assert z.task_text["v_c/prompt"].shape == (T, 8) and z.task_text["v_c/description"].shape == (T, 8)
    table = z.table()
    assert list(table.split) == list(z.tasks.split) and (table.k == table.classes.map(len)).all()
    manifest = json.loads((z.directory / "manifest.json").read_text())
    assert manifest["train_seconds"] > 0 and len(manifest["shards"]) == 10
    stats = json.loads((z.directory / "weight_stats.json").read_text())
    assert stats["W1"]["numel_per_head"] == 3 * 16


def test_tampered_shard_is_rejected_naming_the_file(reference, tmp_path):
    import shutil

    copy = tmp_path / "zoo"
    shutil.copytree(reference.directory, copy)
    shard = copy / "shards" / "shard_00003.safetensors"
    raw = bytearray(shard.read_bytes())
    raw[-5] ^= 0x01
    shard.write_bytes(bytes(raw))
    with pytest.raises(CorruptArtifactError, match="shard_00003.safetensors"):
        load_zoo(copy)
    # Re-signing the sidecar does not help: the manifest holds the checksum too.
    meta_path = shard.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    from t2wlib.core.files import sha256_file

    meta["sha256"] = sha256_file(shard)
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CorruptArtifactError, match="shard_00003.safetensors.*manifest"):
        load_zoo(copy)


def test_a_build_killed_at_every_file_event_resumes_to_the_identical_zoo(tmp_path):
    """Every mkdir, fsync, chmod, replace and unlink of a (two-shard) build is a kill point
    (zoo_kill_job.py); each killed build, resumed here, equals the uninterrupted one bit for bit
    and leaves no temp file."""
    import zoo_kill_job

    run = subprocess.run([sys.executable, str(JOB.parent / "zoo_kill_job.py"), str(tmp_path), "count"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    events = int(run.stdout.split()[-1])
    assert events >= 20
    run = subprocess.run([sys.executable, str(JOB.parent / "zoo_kill_job.py"), str(tmp_path), "kill", str(events)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout.splitlines()[-1]) == [signal.SIGKILL] * events  # each died at its point
    reference = load_zoo(tmp_path / "reference")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the job built the reference
    try:
        for n in range(1, events + 1):
            directory = tmp_path / f"event{n}"
            zoo_kill_job.build(directory)
            assert not list(directory.rglob(".*.tmp")), n
            resumed = load_zoo(directory)
            assert torch.equal(resumed.theta, reference.theta), n
            assert torch.equal(resumed.test_accuracy, reference.test_accuracy), n
            assert torch.equal(resumed.universal, reference.universal), n
            assert resumed.tasks == reference.tasks, n
    finally:
        torch.set_num_threads(threads)


def test_two_builds_of_one_zoo_at_once_wait_for_each_other_and_equal_a_single_build(reference, tmp_path):
    """Two processes start the same build in one folder: the second waits for the folder's lock, then
    finds the zoo finished; the zoo is a single build's, bit for bit."""
    directory = tmp_path / "twice"
    jobs = [subprocess.Popen([sys.executable, str(JOB), str(directory)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errors = [job.communicate(timeout=300)[1] for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0], errors
    assert sum("in use by another zoo build; waiting" in e for e in errors) == 1, errors
    both = load_zoo(directory)
    assert torch.equal(both.theta, reference.theta) and torch.equal(both.test_accuracy, reference.test_accuracy)


def test_a_finished_zoo_built_again_writes_nothing(reference):
    """Building a finished zoo again checks its definition and touches no file (so it works on a
    read-only disk); a different definition is still refused."""
    def files():
        return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in reference.directory.rglob("*")}

    before = files()
    zoo_job.build(reference.directory)
    assert files() == before


def test_torchrun_ranks_split_the_shards(reference, tmp_path):
    directory = tmp_path / "ranks"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          str(JOB), str(directory)], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    ranked = load_zoo(directory)
    torch.testing.assert_close(ranked.theta, reference.theta)
    assert ranked.tasks == reference.tasks


def test_rebuild_with_another_config_is_refused(reference):
    with pytest.raises(ValueError, match="different configuration"):
        zoo_job.build(reference.directory, seed=8)


def test_impossible_request_fails_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="only 50 distinct tasks"):
        zoo_job.build(tmp_path / "never", num_tasks=1000)
    assert not (tmp_path / "never").exists()


def test_export_loads_without_t2wlib(reference, tmp_path):
    out = export_pairs(reference, tmp_path / "export")
    pairs = load_numpy(str(out / "pairs.safetensors"))
    assert pairs["theta"].shape == (40, reference.spec.num_params) and pairs["v_c_prompt"].shape == (40, 8)
    assert set(pairs["split"].tolist()) <= {0, 1, 2}
    tasks = [json.loads(line) for line in (out / "tasks.jsonl").read_text().splitlines()]
    assert len(tasks) == 40 and tasks[0]["prompts"][0].startswith("A photo of")
    assert tasks[3]["class_names"] == [zoo_job.CLASSES[c] for c in tasks[3]["classes"]]
    readme = (out / "README.md").read_text()
    assert f"P = {reference.spec.num_params}" in readme and "W1 (r x F)" in readme
    # exported again (01_zoo re-run): nothing rewritten, so a read-only artifacts folder can be used again
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.iterdir()}
    export_pairs(reference, out)
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.iterdir()} == before


def test_zoos_of_the_same_data_share_stage1_and_the_universal_model_through_the_cache(reference, tmp_path,
                                                                                      monkeypatch):
    """With a cache, a second zoo of the same data (here: a held-out-classes zoo) loads θ0* and the
    Universal Model instead of training them, and they equal the cacheless build's; other data or
    another seed trains anew."""
    from t2wlib.core.tensor_cache import TensorCache
    from t2wlib.zoo import model_zoo as zoo_module

    train, test, emb = zoo_job.synthetic_data()
    cache = TensorCache(tmp_path / "cache")
    from_scratch = []
    real = zoo_module.train_heads

    def counting(theta0, X, y, class_emb, task_classes, *args, **kwargs):
        if task_classes.shape == (1, len(zoo_job.CLASSES)):  # one head on every class: stage 1 or the Universal Model
            from_scratch.append(len(X))
        return real(theta0, X, y, class_emb, task_classes, *args, **kwargs)

    monkeypatch.setattr(zoo_module, "train_heads", counting)
    first = zoo_module.build_zoo(tmp_path / "a", zoo_job.config(), train, test, emb, {}, progress=False, cache=cache)
    assert len(from_scratch) == 2 and load_zoo(first.parent).stage1.equal(reference.stage1)
    held = zoo_module.build_zoo(tmp_path / "b", zoo_job.config(held_out_classes=1, num_tasks=20), train, test, emb, {},
                                progress=False, cache=cache)
    assert len(from_scratch) == 2  # both loaded
    held_zoo = load_zoo(held.parent)
    assert held_zoo.stage1.equal(reference.stage1) and held_zoo.universal.equal(reference.universal)
    other = zoo_job.config(seed=8)
    zoo_module.build_zoo(tmp_path / "c", other, train, test, emb, {}, progress=False, cache=cache)
    assert len(from_scratch) == 4
