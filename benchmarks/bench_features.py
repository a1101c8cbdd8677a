"""Feature-extraction throughput of the embedded backbone (images/s), side by side in one run.

Variants on the same Fashion-MNIST images: the full cached-feature path (PIL preprocessing + backbone)
at 112 and 224 px, and the backbone alone on pre-made tensors at 112 px (the preprocessing share).
Prints a table and saves benchmarks/results/bench_features.json with the machine it ran on.

    .venv/bin/python benchmarks/bench_features.py [--images 512] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from t2wlib.core.files import atomic_write_text
from t2wlib.data.datasets import balanced_indices, load_split
from t2wlib.data.features import extract_features
from t2wlib.encoders.backbones import load_backbone
from t2wlib.pipeline import provenance

OUT = Path(__file__).resolve().parent / "results" / "bench_features.json"


def best_rate(fn, n: int, repeats: int) -> float:
    """Images per second of the fastest of `repeats` runs (the least disturbed by other load)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return n / min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    bb = load_backbone("efficientnet-lite0")
    split = load_split("fashion-mnist", "train")
    images = split.subset(balanced_indices(split.labels, args.images // 10, seed=0))
    n = len(images)
    tensors = torch.stack([bb.preprocess(112)(images.image(i)) for i in range(n)])

    def trunk_only():
        with torch.inference_mode():
            for s in range(0, n, args.batch_size):
                bb.trunk(tensors[s:s + args.batch_size])

    results = {
        "full path, 112 px": best_rate(lambda: extract_features(images, bb, 112, args.batch_size, progress=False),
                                       n, args.repeats),
        "full path, 224 px": best_rate(lambda: extract_features(images, bb, 224, args.batch_size, progress=False),
                                       n, args.repeats),
        "backbone only, 112 px": best_rate(trunk_only, n, args.repeats),
    }
    base = results["full path, 112 px"]
    print(f"EfficientNet-Lite0 feature extraction, {n} Fashion-MNIST images, batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'variant':<24}{'images/s':>10}{'vs full 112 px':>16}")
    for name, rate in results.items():
        print(f"{name:<24}{rate:>10.1f}{rate / base:>15.2f}x")
    record = {"benchmark": "bench_features", "images": n, "batch_size": args.batch_size, "repeats": args.repeats,
              "images_per_s": {k: round(v, 2) for k, v in results.items()},
              "ratio_to_full_112": {k: round(v / base, 3) for k, v in results.items()},
              "machine": provenance.machine(), "commit": provenance.git_commit(),
              "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(OUT, json.dumps(record, indent=1))
    print(f"saved {OUT}")


if __name__ == "__main__":
    main()
