"""Generator training: exact resume, DDP ranks in agreement, and a real end-to-end overfit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from t2wlib.generator.trainer import TrainConfig, lr_factor
from t2wlib.heads.adapter import task_accuracy
from t2wlib.zoo.model_zoo import load_zoo

sys.path.insert(0, str(Path(__file__).parent))
import train_job  # noqa: E402
import zoo_job  # noqa: E402


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    directory = tmp_path_factory.mktemp("gen") / "zoo"
    zoo_job.build(directory)
    return load_zoo(directory)


def test_lr_schedule_warms_up_then_decays():
    assert lr_factor(0, 4, 20) == 0.25 and lr_factor(3, 4, 20) == 1.0
    assert lr_factor(12, 4, 20) == pytest.approx(0.5) and lr_factor(20, 4, 20) == pytest.approx(0.0)


def test_a_field_added_later_is_recorded_only_when_set():
    plain, with_task = TrainConfig(epochs=3), TrainConfig(epochs=3, lambda_task=0.5)
    assert "lambda_task" not in plain.record() and with_task.record()["lambda_task"] == 0.5
    assert "lambda_sym" in TrainConfig(epochs=3, lambda_sym=0.1).record()  # older fields always are
    assert TrainConfig(**plain.record()) == plain and TrainConfig(**with_task.record()) == with_task


def test_warmup_is_the_papers_epochs_at_most_a_tenth_of_the_run(zoo, tmp_path):
    *_, short = train_job.setup(tmp_path / "short", zoo, dict(epochs=6, batch_size=8))  # 5 of 6 epochs uncapped
    assert short.warmup_steps == max(1, short.total_steps // 10) < 5 * short.steps_per_epoch
    *_, long = train_job.setup(tmp_path / "long", zoo, dict(epochs=60, batch_size=8))
    assert long.warmup_steps == 5 * long.steps_per_epoch


def test_resumed_training_equals_uninterrupted(zoo, tmp_path):
    cfg = dict(epochs=3, batch_size=8, checkpoint_every=4, warmup_epochs=1)
    *_, full = train_job.setup(tmp_path / "full", zoo, cfg)
    full.fit(progress=False)
    *_, first = train_job.setup(tmp_path / "split", zoo, cfg)
    first.fit(max_steps=7, progress=False)  # stops mid-epoch, between checkpoints
    _, resumed_model, _, resumed = train_job.setup(tmp_path / "split", zoo, cfg, seed=123)  # fresh init, then resume
    curves = resumed.fit(progress=False)
    assert resumed.step == full.step == 15
    for a, b in zip(resumed_model.parameters(), full.model.parameters()):
        assert torch.equal(a, b)  # bit for bit, not within a tolerance
    assert [r["loss"] for r in curves] == [r["loss"] for r in full.curves()]
    assert [r["step"] for r in curves] == list(range(1, 16))


def test_checkpoint_of_another_config_is_refused(zoo, tmp_path):
    *_, t = train_job.setup(tmp_path / "run", zoo, dict(epochs=1, batch_size=8))
    t.fit(progress=False)
    *_, other = train_job.setup(tmp_path / "run", zoo, dict(epochs=1, batch_size=8, lr=1e-3))
    with pytest.raises(ValueError, match="another training config"):
        other.fit(progress=False)


def test_torchrun_ranks_hold_identical_weights(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          str(Path(__file__).parent / "train_job.py"), str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "rank0.sha").read_text() == (tmp_path / "rank1.sha").read_text()


def test_generator_overfits_a_four_task_zoo(zoo, tmp_path):
    """Trained on 4 tasks, the generator's heads for those tasks' texts reach their targets' accuracy."""
    ids = [0, 1, 2, 3]
    small = type(zoo)(**{**zoo.__dict__, "theta": zoo.theta[ids],
                         "task_text": {k: (v[ids] if k.startswith("v_c") else v) for k, v in zoo.task_text.items()}})
    tok, model, diffusion, trainer = train_job.setup(tmp_path, small, dict(
        epochs=1500, batch_size=4, lambda_adv=0.0, lambda_sym=0.0, warmup_epochs=10, checkpoint_every=10**9,
        ema_decay=0.0, lr=2e-3))
    for _ in range(trainer.total_steps):
        trainer.train_step()
    model.eval()
    noise = torch.randn(4, tok.num_tokens, 8, generator=torch.Generator().manual_seed(0))
    tokens = diffusion.ddim_sample_loop(model, noise.shape, steps=20, noise=noise,
                                        model_kwargs={"v_c": small.task_text["v_c/prompt"]})
    theta = tok.decode(tokens * tok.mask)
    _, test, emb = zoo_job.synthetic_data()
    classes = zoo.tasks.padded(ids)
    generated = task_accuracy(theta, test.X, test.y, emb["prompt"], classes, zoo.spec)
    target = zoo.test_accuracy[ids]
    assert (generated >= target - 0.05).all(), (generated, target)
    # And close in weight space: at least 2x closer than the best text-blind answer (the mean head).
    mean_head_mse = ((small.theta.mean(0) - small.theta) ** 2).mean()
    assert ((theta - small.theta) ** 2).mean() < 0.5 * mean_head_mse
