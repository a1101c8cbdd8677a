"""Zoo-building throughput: the same tasks trained three ways, side by side in one run.

(a) the authors' structure: one task at a time, the backbone run on every image of every minibatch
    in every epoch (here with batched tensor preprocessing, faster than their per-image PIL path,
    so (a) is if anything flattered);
(b) one task at a time on cached features (nn.Module + torch.optim.Adam, `train_head_loop`);
(c) t2wlib's batched trainer (`train_heads`), on the same tasks and on a larger shard.
All three use the same minibatch schedules, so their heads should reach the same accuracy.
Prints a table and saves benchmarks/results/bench_zoo.json (heads/s, ratios, accuracy, GFLOP/s of
(c) next to a measured fp32 matmul rate, and the machine), one entry per case: the 10-class
Fashion-MNIST zoo at r = 2 (`fashion-mnist`), and the paper's regime on the rendered emoji
(`emoji`: 300 classes, r = 16, k ~ U{8, 32}).

    .venv/bin/python benchmarks/bench_zoo.py [--case fashion-mnist|emoji] [--tasks 6] [--large 256] ...
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as Fn

from t2wlib.core.files import update_json_entry
from t2wlib.core.tensor_cache import TensorCache
from t2wlib.data import task_condition
from t2wlib.data.datasets import load_split
from t2wlib.data.features import dataset_features
from t2wlib.data.subtasks import sample_tasks
from t2wlib.encoders.backbones import load_backbone
from t2wlib.encoders.text import embed_texts, load_text_encoder
from t2wlib.heads.adapter import CLIPAdapter, HeadSpec, task_accuracy
from t2wlib.heads.training import HeadTrainConfig, schedule, train_head_loop, train_heads
from t2wlib.pipeline import provenance

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "results" / "bench_zoo.json"


def authors_loop(theta0, images, y, class_emb, classes, seed, cfg, spec, backbone, image_size):
    """(a): per task, per minibatch, run the frozen backbone on the raw images, then one Adam step."""
    head = CLIPAdapter.from_flat(theta0, spec)
    preprocess = backbone.preprocess(image_size)
    classes_t = torch.tensor(classes)
    rows = torch.nonzero(torch.isin(y, classes_t)).squeeze(1)
    local = {c: i for i, c in enumerate(classes)}
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    for batch in schedule(len(rows), cfg, seed):
        sel = rows[batch[batch >= 0]]
        with torch.no_grad():
            feats = backbone.trunk(preprocess(images.subset(sel.numpy()).uint8_batch(0, len(sel))))
        target = torch.tensor([local[int(c)] for c in y[sel]])
        loss = Fn.cross_entropy(head.logits(feats, class_emb[classes_t]), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return head.flat()


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


# Per case: dataset, r, k range, and the tasks (a), the slow per-image path, is timed on.
CASES = {"fashion-mnist": dict(hidden=2, k_range=(2, 9), tasks=6),
         "emoji": dict(hidden=16, k_range=(8, 32), tasks=2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), default="fashion-mnist")
    parser.add_argument("--tasks", type=int, help="tasks trained by all three methods (default: the case's)")
    parser.add_argument("--large", type=int, default=256, help="tasks in the larger shard for (c)")
    parser.add_argument("--per-class", type=int, default=50, help="training images per class")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=112)
    args = parser.parse_args()
    case = CASES[args.case]
    torch.manual_seed(0)

    backbone = load_backbone("efficientnet-lite0")
    encoder = load_text_encoder("minilm")
    cache = TensorCache(REPO / "artifacts" / "cache")
    common = dict(image_size=args.image_size, data_seed=0, progress=False)
    train = dataset_features(args.case, "train", backbone, cache, per_class=args.per_class, **common)
    test = dataset_features(args.case, "test", backbone, cache, per_class=100, **common)
    images = load_split(args.case, "train").subset(train.index.numpy())
    emb = embed_texts(encoder, task_condition.prompts(train.class_names), cache)
    spec = HeadSpec(backbone.feature_dim, case["hidden"], encoder.dim)
    cfg = HeadTrainConfig(epochs=args.epochs, lr=1e-3, batch_size=args.batch_size)
    tasks = sample_tasks(len(train.class_names), args.large, case["k_range"], seed=0)
    classes = tasks.padded()
    theta0 = CLIPAdapter(spec).flat()  # every method starts from the same head
    seeds = list(range(args.large))
    n = args.tasks or case["tasks"]

    def timed(fn):
        start = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - start

    def acc(theta, rows):
        return float(task_accuracy(theta, test.X, test.y, emb, classes[rows], spec).mean())

    def listed(i):
        return [int(c) for c in classes[i] if c >= 0]

    a, t_a = timed(lambda: torch.stack([authors_loop(theta0, images, train.y, emb, listed(i), seeds[i], cfg, spec,
                                                     backbone, args.image_size) for i in range(n)]))
    b, t_b = timed(lambda: torch.stack([train_head_loop(theta0, train.X, train.y, emb, listed(i), seeds[i], cfg, spec)
                                        for i in range(n)]))
    c, t_c = timed(lambda: train_heads(theta0, train.X, train.y, emb, classes[:n], seeds[:n], cfg, spec)[0])
    c_large, t_large = timed(lambda: train_heads(theta0, train.X, train.y, emb, classes, seeds, cfg, spec)[0])

    # Matmul FLOPs of (c) on the large shard: per sample and step, forward 2(F r + r D + K D), backward ~2x.
    samples = sum(args.epochs * int(torch.isin(train.y, classes[i][classes[i] >= 0]).sum()) for i in range(args.large))
    mean_k = float((classes >= 0).sum(1).float().mean())
    flops = 3 * 2 * (spec.feature_dim * spec.hidden + spec.hidden * spec.embed_dim + mean_k * spec.embed_dim) * samples
    rates = {"(a) authors: per task, backbone every epoch": n / t_a, "(b) per task, cached features": n / t_b,
             f"(c) batched, same {n} tasks": n / t_c, f"(c) batched, {args.large} tasks": args.large / t_large}
    accuracy = {"(a)": acc(a, list(range(n))), "(b)": acc(b, list(range(n))), "(c)": acc(c, list(range(n))),
                f"(c) {args.large} tasks": acc(c_large, list(range(args.large)))}
    peak = matmul_gflops()
    result = {
        "benchmark": "bench_zoo", "dataset": args.case, "tasks": n, "large_tasks": args.large,
        "per_class": args.per_class, "epochs": args.epochs, "batch_size": args.batch_size, "hidden": spec.hidden,
        "k_range": list(case["k_range"]),
        "heads_per_s": {k: round(v, 3) for k, v in rates.items()},
        "speedup_c_large_over_a": round(rates[f"(c) batched, {args.large} tasks"]
                                        / rates["(a) authors: per task, backbone every epoch"], 1),
        "speedup_c_large_over_b": round(rates[f"(c) batched, {args.large} tasks"] / rates["(b) per task, cached features"], 1),
        "speedup_c_same_over_b": round(rates[f"(c) batched, same {n} tasks"] / rates["(b) per task, cached features"], 2),
        "mean_task_accuracy": {k: round(v, 4) for k, v in accuracy.items()},
        "max_abs_weight_diff_b_vs_c": float((b - c).abs().max()),
        "batched_gflops": round(flops / t_large / 1e9, 2), "fp32_matmul_gflops": round(peak, 1),
        "batched_fraction_of_matmul": round(flops / t_large / 1e9 / peak, 3),
        "machine": provenance.machine(), "commit": provenance.git_commit(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    print(f"Zoo training on {args.case}: {args.per_class} images/class, {args.epochs} epochs, batch {args.batch_size}, "
          f"r = {spec.hidden}, k in {case['k_range']}, {torch.get_num_threads()} threads")
    print(f"{'method':<46}{'heads/s':>10}{'vs (a)':>9}")
    base = rates["(a) authors: per task, backbone every epoch"]
    for k, v in rates.items():
        print(f"{k:<46}{v:>10.2f}{v / base:>8.0f}x")
    print("mean task accuracy:", ", ".join(f"{k} {v:.4f}" for k, v in accuracy.items()))
    print(f"(c) on {args.large} tasks: {result['batched_gflops']} GFLOP/s of matmul work; fp32 matmul peak here "
          f"{result['fp32_matmul_gflops']} GFLOP/s")
    update_json_entry(OUT, args.case, result)
    print(f"saved {OUT}")


if __name__ == "__main__":
    main()
