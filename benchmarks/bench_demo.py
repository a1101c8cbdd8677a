"""The demo page's times: from no generator to the page answering (`t2w demo` building the `demo`
profile's generators, 01_zoo and 02_train), then, with the generators loaded as the page keeps them,
class names -> classifier and dropped images -> probabilities and Grad-CAM maps (the page's own calls),
and the quality of the generators built (their 02_train table). Prints a table and saves
benchmarks/results/bench_demo.json.

    .venv/bin/python benchmarks/bench_demo.py [--artifacts DIR]   # default: a new, empty folder (a full build)
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pandas as pd

from t2wlib.classifier import text_to_classifier
from t2wlib.core.files import update_json_entry
from t2wlib.data.datasets import load_split
from t2wlib.demo.catalogue import find_generators
from t2wlib.demo.uploads import save_uploads, score_images
from t2wlib.encoders.backbones import load_backbone
from t2wlib.encoders.text import load_text_encoder
from t2wlib.generator.t2w import T2WGenerator
from t2wlib.pipeline import provenance

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "results" / "bench_demo.json"
PORT = 8599
CLASS_LIST_SIZE = 3  # classes typed on the page: the generator's own dataset's, 5 lists of them
IMAGES_PER_CLASS = 4


def time_to_page(artifacts: Path) -> tuple[float, str]:
    """Seconds from `t2w demo` starting to its page answering, and the command's output."""
    start = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "t2wlib.pipeline.cli", "demo", "--artifacts", str(artifacts),
                               "--port", str(PORT)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/_stcore/health", timeout=1):
                    return time.perf_counter() - start, ""
            except OSError:
                if server.poll() is not None:
                    raise SystemExit(f"t2w demo ended early: {server.stdout.read()[-3000:]}") from None
                time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=60)


def page_calls(entry, workdir: Path) -> dict:
    """Median seconds of the page's two calls, with its models loaded once as the page keeps them,
    on class lists of the generator's own dataset and its test images."""
    generator, encoder = T2WGenerator.load(entry.directory), load_text_encoder(entry.config.text_encoder)
    backbone = load_backbone(entry.config.backbone)
    split = load_split(entry.config.dataset, "test")
    k = CLASS_LIST_SIZE
    generate_s, score_s, right, shown = [], [], 0, 0
    for first in range(0, 5 * k, k):  # 5 class lists of k consecutive classes
        names = [split.class_names[(first + i) % len(split.class_names)] for i in range(k)]
        start = time.perf_counter()
        classifier = text_to_classifier(generator, encoder, names)
        generate_s.append(time.perf_counter() - start)
        files, truth = [], []
        for name in names:
            for i in (split.labels == split.class_names.index(name)).nonzero()[0][:IMAGES_PER_CLASS]:
                path = workdir / f"{len(files)}.png"
                split.image(int(i)).save(path)
                files.append((path.name, path.read_bytes()))
                truth.append(name)
        start = time.perf_counter()
        paths = save_uploads(files, workdir / "uploads")
        scored = score_images(classifier, backbone, paths, [n for n, _ in files])
        score_s.append(time.perf_counter() - start)
        right += sum(s.top(1)[0][0] == t for s, t in zip(scored, truth))
        shown += len(truth)
    return {"class_list_size": k, "class_lists": len(generate_s), "images_per_list": k * IMAGES_PER_CLASS,
            "names_to_classifier_s_median": statistics.median(generate_s),
            "images_to_scores_s_median": statistics.median(score_s),
            "top1_of_shown_images": right / shown}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", help="an artifacts folder (default: a new, empty one, so the generators are "
                                            "built as on a fresh clone)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as scratch:
        artifacts = Path(args.artifacts or Path(scratch) / "artifacts")
        built = not find_generators(artifacts)
        to_page, _ = time_to_page(artifacts)
        quality = pd.read_csv(artifacts / "demo-figures" / "train_summary.csv") if built else None
        per_generator = {}
        for entry in find_generators(artifacts):
            per_generator[entry.label] = page_calls(entry, Path(scratch))
            if quality is not None:
                row = quality.set_index("dataset").loc[entry.config.dataset]
                per_generator[entry.label].update({f"unseen_{k}": float(row[k]) for k in (
                    "generated_mean", "trained_mean", "universal_mean", "generated_over_trained")})
    result = {"built_generators": built, "seconds_to_page": to_page, "generators": per_generator,
              "machine": provenance.machine(), "commit": provenance.git_commit(),
              "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    print(f"t2w demo to its page: {to_page:.0f} s ({'building the demo generators' if built else 'generators present'})")
    print(pd.DataFrame(per_generator).T.to_string(float_format=lambda v: f"{v:.3f}"))
    update_json_entry(OUT, "fresh" if built else "present", result)
    print(f"saved {OUT}")


if __name__ == "__main__":
    main()
