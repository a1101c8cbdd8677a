"""Generator speed and sampler quality, side by side in one run, on a trained `cpu` generator.

Measures: training throughput (samples/s) of the profile's DiT with all three losses and with L_diff
only, against the hypernetwork baseline's (the same batch; Table 1 trains one per generator), and
with L_diff only at 1x, 2x and 4x the profile's batch (the larger-batch lever), the
share of this machine's fp32 GEMM rate that the L_diff-only step reaches (its FLOPs counted by
torch's FlopCounterMode, the GEMM rate timed on a 2048² matmul), and the wall time the profile's
budget takes at that rate; time
to generate 100 unseen-task heads with DDPM-1000 and DDIM at 50, 20 and 10 steps and the mean
unseen-task accuracy of each; the latency of one head for a new class list once the model is loaded,
and of one `t2w generate` command end to end. Prints a table and saves
benchmarks/results/bench_generate.json, one entry per dataset (`emoji`: the paper's regime, r = 16,
k 8-32; `fashion-mnist`: 10 classes, r = 2).

    .venv/bin/python benchmarks/bench_generate.py [--profile cpu] [--dataset emoji] [--heads 100] [--artifacts DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from t2wlib.classifier import text_to_classifier
from t2wlib.core.files import update_json_entry
from t2wlib.core.tensor_cache import TensorCache
from t2wlib.data.datasets import dataset_identity
from t2wlib.encoders.backbones import load_backbone
from t2wlib.encoders.text import load_text_encoder
from t2wlib.experiments import table2
from t2wlib.experiments.scoring import generated_heads_report
from t2wlib.generator.t2w import T2WGenerator
from t2wlib.generator.tokenizers import Tokenizer
from t2wlib.generator.trainer import TrainConfig, Trainer
from t2wlib.methods.baselines import train_hypernetwork
from t2wlib.pipeline import provenance
from t2wlib.pipeline.config import generator_path, profile_features, zoo_path
from t2wlib.pipeline.profiles import get_profile
from t2wlib.zoo.model_zoo import load_zoo

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "results" / "bench_generate.json"


def scratch_trainer(gen: T2WGenerator, zoo, lambdas: tuple[float, float], sym_batch: int | None,
                    batch_size: int = TrainConfig.batch_size) -> Trainer:
    """A Trainer on the zoo's seen tasks over a scratch copy of the generator's model."""
    import copy

    seen = zoo.tasks.ids("seen")
    tok: Tokenizer = gen.tokenizer
    cfg = TrainConfig(epochs=1, batch_size=batch_size, lambda_sym=lambdas[0], lambda_adv=lambdas[1], sym_batch=sym_batch)
    return Trainer(copy.deepcopy(gen.model).train(), gen.diffusion, tok, tok.encode(zoo.theta[seen]).float(),
                   zoo.task_text["v_c/prompt"][seen], cfg, tempfile.mkdtemp())


def training_throughput(gen: T2WGenerator, zoo, lambdas: tuple[float, float], sym_batch: int | None,
                        steps: int = 20, batch_size: int = TrainConfig.batch_size) -> float:
    """Samples per second of Trainer.train_step on the zoo's seen tasks (a scratch copy of the model)."""
    trainer = scratch_trainer(gen, zoo, lambdas, sym_batch, batch_size)
    trainer.train_step()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    return steps * trainer.cfg.batch_size / (time.perf_counter() - start)


def step_flops(gen: T2WGenerator, zoo) -> float:
    """FLOPs of one L_diff-only training step (forward and backward), as torch counts them."""
    from torch.utils.flop_counter import FlopCounterMode

    trainer = scratch_trainer(gen, zoo, (0.0, 0.0), None)
    with FlopCounterMode(display=False) as counter:
        trainer.train_step()
    return float(counter.get_total_flops())


def gemm_flops_per_s(n: int = 2048, repeats: int = 10) -> float:
    """This machine's fp32 matmul rate: the best of `repeats` n x n products, in FLOP/s."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best


def hypernetwork_throughput(zoo, tok: Tokenizer) -> float:
    """Samples per second of one epoch of train_hypernetwork on the zoo's seen tasks, writing its
    weights included (into a scratch folder), as Table 1 trains it."""
    seen = zoo.tasks.ids("seen")
    cfg = TrainConfig(epochs=1)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        train_hypernetwork(tmp, zoo.theta[seen], zoo.task_text["v_c/prompt"][seen], tok, cfg)
        seconds = time.perf_counter() - start
    return (len(seen) // cfg.batch_size) * cfg.batch_size / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--dataset", default="emoji")
    parser.add_argument("--heads", type=int, default=100)
    parser.add_argument("--artifacts", default=str(REPO / "artifacts"), help="where `make run` left the zoo and generator")
    args = parser.parse_args()
    profile = get_profile(args.profile)
    artifacts = Path(args.artifacts)
    data_root = artifacts / "data"  # where the pipeline keeps rendered datasets (emoji)
    zoo = load_zoo(zoo_path(artifacts, profile, dataset_identity(args.dataset, data_root)))
    directory = generator_path(artifacts, profile, zoo, "prompt", profile.seeds[0])
    gen = T2WGenerator.load(directory)
    backbone = load_backbone(profile.backbone)
    test = profile_features(profile, args.dataset, "test", backbone, TensorCache(artifacts / "cache"), data_root)
    ids = zoo.tasks.ids("unseen")[:args.heads]
    v_c = zoo.task_text["v_c/prompt"][ids]

    # The paper's three losses (Table 2's full row: L_sym on the profile's sym_batch) against L_diff
    # alone, whatever the profile itself trains with.
    # L_diff alone at the training batch and at 2x and 4x it (the larger-batch lever), measured once each.
    batch = TrainConfig.batch_size
    by_batch = {b: training_throughput(gen, zoo, (0.0, 0.0), None, batch_size=b) for b in (batch, 2 * batch, 4 * batch)}
    throughput = {"all losses": training_throughput(gen, zoo, (table2.SYM, table2.ADV), profile.sym_batch),
                  "L_diff only": by_batch[batch],
                  "hypernetwork": hypernetwork_throughput(zoo, gen.tokenizer)}
    flops, gemm = step_flops(gen, zoo), gemm_flops_per_s()
    steps_per_s = throughput["L_diff only"] / batch
    budget = profile.gen_steps or profile.gen_epochs * (len(zoo.tasks.ids("seen")) // profile.gen_batch_size)
    samplers = {}
    for name, kwargs in (("DDPM-1000", {"sampler": "ddpm"}), ("DDIM-50", {"steps": 50}), ("DDIM-20", {"steps": 20}),
                         ("DDIM-10", {"steps": 10})):
        start = time.perf_counter()
        theta = gen.sample(v_c, seed=0, **kwargs)
        seconds = time.perf_counter() - start
        report = generated_heads_report(zoo, theta, test, ids)
        samplers[name] = {"seconds": round(seconds, 2), "accuracy": round(report["generated_mean"], 4),
                          "weight_mse": report["weight_mse"]}
    ddpm = samplers["DDPM-1000"]
    for s in samplers.values():
        s["speedup_vs_ddpm"] = round(ddpm["seconds"] / s["seconds"], 1)
        s["accuracy_minus_ddpm_pt"] = round(100 * (s["accuracy"] - ddpm["accuracy"]), 2)

    encoder = load_text_encoder(gen.config.text_encoder)
    classes = zoo.class_names[:3]
    text_to_classifier(gen, encoder, classes, steps=profile.ddim_steps)  # warm-up
    start = time.perf_counter()
    text_to_classifier(gen, encoder, classes, steps=profile.ddim_steps, seed=1)
    one_head = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "t2wlib.pipeline.cli", "generate", "--generator", str(directory), "--classes",
                        ",".join(classes), "--out", f"{tmp}/head.safetensors"], check=True, capture_output=True)
        command = time.perf_counter() - start

    result = {"benchmark": "bench_generate", "profile": args.profile, "dataset": args.dataset, "heads": len(ids),
              "dit": profile.dit, "tokens": gen.tokenizer.num_tokens, "block_size": gen.tokenizer.block_size,
              "training_samples_per_s": {k: round(v, 1) for k, v in throughput.items()},
              "l_diff_samples_per_s_by_batch": {str(b): round(v, 1) for b, v in by_batch.items()},
              "dit_over_hypernetwork_speed": round(throughput["L_diff only"] / throughput["hypernetwork"], 2),
              "train_step_gflop": round(flops / 1e9, 3), "gemm_gflop_per_s": round(gemm / 1e9, 1),
              "fraction_of_gemm": round(flops * steps_per_s / gemm, 3),
              "budget_steps": budget, "budget_wall_s": round(budget / steps_per_s, 1),
              "samplers": samplers, "trained_mean": round(float(zoo.test_accuracy[ids].mean()), 4),
              "one_head_after_load_s": round(one_head, 3), "t2w_generate_command_s": round(command, 2),
              "machine": provenance.machine(), "commit": provenance.git_commit(),
              "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    print(f"{args.dataset}, {args.profile} generator ({profile.dit}), {len(ids)} unseen tasks")
    print("training samples/s:", ", ".join(f"{k} {v:.1f}" for k, v in throughput.items()))
    print("L_diff samples/s by batch size:", ", ".join(f"{b} {v:.1f}" for b, v in by_batch.items()))
    print(f"L_diff step: {flops / 1e9:.3f} GFLOP, {result['fraction_of_gemm']:.1%} of fp32 GEMM ({gemm / 1e9:.0f} "
          f"GFLOP/s); the profile's {budget} steps: {result['budget_wall_s']:.0f} s")
    print(f"{'sampler':<12}{'seconds':>9}{'accuracy':>10}{'vs DDPM':>9}{'Δ acc (pt)':>12}")
    for name, s in samplers.items():
        print(f"{name:<12}{s['seconds']:>9.2f}{s['accuracy']:>10.4f}{s['speedup_vs_ddpm']:>8.1f}x{s['accuracy_minus_ddpm_pt']:>12.2f}")
    print(f"trained heads on the same tasks: {result['trained_mean']:.4f}")
    print(f"one head for a new class list after loading: {one_head:.3f} s; `t2w generate` end to end: {command:.1f} s")
    update_json_entry(OUT, args.dataset, result)
    print(f"saved {OUT}")


if __name__ == "__main__":
    main()
