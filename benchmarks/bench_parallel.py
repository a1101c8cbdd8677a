"""Two notebooks at a time, one thread each, against one at a time with every thread (`t2w run
--parallel`), side by side in one run, on the pipeline's own workloads at the `cpu` profile's emoji
shapes (F = 1280, r = 16, D = 384, tasks of 8-32 classes; synthetic features and texts, so that no
artifacts are needed):

  zoo shard      `heads.training.train_heads` on 128 tasks of 40 images per class (01_zoo's step)
  generator      `train.Trainer.train_step` of the tiny DiT, blocks of 256 (02-04, 10)
  hypernetwork   `baselines.train_hypernetwork` (03, 10)
  sampling       DDIM-20 of 400 heads (03, 04)
  scoring        `head.task_accuracy` of 2,000 heads on 6,000 test images (03, 04)

For each workload: `sequential` runs it twice in one process with all the cores' threads (what a
one-at-a-time pipeline does with two notebooks); `parallel` runs it once in each of two processes at
the same time, one thread each (what `--parallel 2` does). Their ratio is the speed-up of two lanes
on that workload. Prints a table and saves benchmarks/results/bench_parallel.json.

    .venv/bin/python benchmarks/bench_parallel.py [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "results" / "bench_parallel.json"
WORKLOADS = ("zoo shard", "generator", "hypernetwork", "sampling", "scoring")
F, R, D, C = 1280, 16, 384, 300  # the emoji zoo's head: features, hidden units, text width, classes


def _emoji_like(seed: int = 0):
    """Synthetic features (12,000 train, 6,000 test over 300 classes), class embeddings, and 512
    heads spread around one θ0*, at the emoji zoo's shapes."""
    import torch

    from t2wlib.heads.adapter import CLIPAdapter, HeadSpec

    g = torch.Generator().manual_seed(seed)
    spec = HeadSpec(F, R, D)
    emb = torch.nn.functional.normalize(torch.randn(C, D, generator=g), dim=-1)
    X, Xt = torch.randn(12_000, F, generator=g), torch.randn(6_000, F, generator=g)
    y, yt = torch.arange(12_000) % C, torch.arange(6_000) % C
    torch.manual_seed(seed)
    theta0 = CLIPAdapter(spec).flat()
    heads = theta0 + 0.01 * torch.randn(512, spec.num_params, generator=g)
    tasks = torch.full((512, 32), -1, dtype=torch.int64)
    for i in range(512):
        k = 8 + i % 25
        tasks[i, :k] = torch.randperm(C, generator=g)[:k]
    return spec, emb, X, y, Xt, yt, theta0, heads, tasks


def run_workload(name: str) -> float:
    """Seconds of one run of workload `name` (its setup excluded)."""
    import torch

    from t2wlib.generator.denoisers import build_denoiser
    from t2wlib.generator.diffusion import GaussianDiffusion, get_betas
    from t2wlib.generator.tokenizer import WeightTokenizer
    from t2wlib.generator.trainer import TrainConfig, Trainer
    from t2wlib.heads.adapter import task_accuracy
    from t2wlib.heads.training import HeadTrainConfig, train_heads
    from t2wlib.methods.baselines import train_hypernetwork

    spec, emb, X, y, Xt, yt, theta0, heads, tasks = _emoji_like()
    tokenizer = WeightTokenizer.fit(heads, spec, 256, "standard")
    v_c = torch.randn(len(heads), D)
    diffusion = GaussianDiffusion(get_betas("linear", 1000), prediction="x0")
    if name == "zoo shard":
        cfg = HeadTrainConfig(epochs=10, lr=1e-3, batch_size=32)  # the zoo's stage 2
        work = lambda: train_heads(theta0, X, y, emb, tasks[:128], list(range(128)), cfg, spec)  # noqa: E731
    elif name == "generator":
        torch.manual_seed(0)
        model = build_denoiser("tiny", tokenizer.num_tokens, 256, D)
        model.fit_text_norm(v_c)
        trainer = Trainer(model, diffusion, tokenizer, tokenizer.encode(heads).float(), v_c,
                          TrainConfig(epochs=1, lambda_sym=0.0, lambda_adv=0.0), tempfile.mkdtemp())
        work = lambda: [trainer.train_step() for _ in range(200)]  # noqa: E731
    elif name == "hypernetwork":
        cfg = TrainConfig(epochs=12, seed=0)  # 12 epochs of 512 heads: 192 steps of 32
        work = lambda: train_hypernetwork(tempfile.mkdtemp(), heads, v_c, tokenizer, cfg)  # noqa: E731
    elif name == "sampling":
        torch.manual_seed(0)
        model = build_denoiser("tiny", tokenizer.num_tokens, 256, D).eval()
        model.fit_text_norm(v_c)
        work = lambda: diffusion.ddim_sample_loop(model, (400, tokenizer.num_tokens, 256), steps=20,  # noqa: E731
                                                  model_kwargs={"v_c": v_c[:400]},
                                                  generator=torch.Generator().manual_seed(0))
    elif name == "scoring":
        many, classes = heads.repeat(4, 1)[:2000], tasks.repeat(4, 1)[:2000]
        work = lambda: task_accuracy(many, Xt, yt, emb, classes, spec)  # noqa: E731
    else:
        raise KeyError(f"unknown workload {name!r}; available: {', '.join(WORKLOADS)}")
    start = time.perf_counter()
    with torch.no_grad() if name in ("sampling", "scoring") else torch.enable_grad():
        work()
    return time.perf_counter() - start


def _worker(name: str, threads: int, repeat: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return subprocess.Popen([sys.executable, __file__, "--worker", name, "--repeat", str(repeat)], env=env,
                            stdout=subprocess.PIPE, text=True)


def _seconds(proc: subprocess.Popen) -> float:
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark worker failed (exit {proc.returncode})")
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=1, help="runs per lane and workload")
    args = parser.parse_args()
    if args.worker:  # one lane: the workload `repeat` times, its total seconds on the last line
        import torch

        torch.manual_seed(0)
        print(sum(run_workload(args.worker) for _ in range(args.repeat)), flush=True)
        return
    from t2wlib.core.files import update_json_entry
    from t2wlib.pipeline import provenance
    from t2wlib.pipeline.runner import cpu_count

    cores = cpu_count()
    rows = {}
    for name in WORKLOADS:
        sequential = _seconds(_worker(name, cores, 2 * args.repeat))
        lanes = [_worker(name, max(1, cores // 2), args.repeat) for _ in range(2)]
        parallel = max(_seconds(p) for p in lanes)  # both lanes start together; the run ends with the slower
        rows[name] = {"sequential_s": round(sequential, 2), "parallel_s": round(parallel, 2),
                      "speedup": round(sequential / parallel, 2)}
        print(f"{name:14s} one at a time, {cores} threads: {sequential:7.2f} s   two at a time, "
              f"{max(1, cores // 2)} thread(s) each: {parallel:7.2f} s   speed-up {sequential / parallel:.2f}x", flush=True)
    result = {"cores": cores, "repeat": args.repeat, "workloads": rows, "machine": provenance.machine(),
              "commit": provenance.git_commit(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    update_json_entry(OUT, "emoji", result)
    print(json.dumps(result["workloads"], indent=1))


if __name__ == "__main__":
    main()
