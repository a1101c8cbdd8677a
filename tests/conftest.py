"""Shared fixtures: tiny datasets written in the paper datasets' real on-disk formats; and how the suite
shares the cores when pytest-xdist runs it on several workers (`make test`: one per core)."""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from t2wlib.data.user_folders import DESCRIPTIONS_FILE

# Real WordNet ids, so that T2W-NL descriptions resolve exactly (TinyImageNet classes are synsets).
TINY_WNIDS = {"n01443537": "goldfish, Carassius auratus", "n01629819": "European fire salamander, Salamandra salamandra",
              "n02123045": "tabby, tabby cat"}
CIFAR_NAMES = ["apple", "aquarium_fish", "palm_tree", "otter"]

# Each xdist worker gets its share of the cores, as the pipeline's parallel kernels do (more threads than cores
# make torch's thread pools spin against each other); the notebook kernels and jobs it starts inherit it.
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if WORKERS > 1:
    from t2wlib.pipeline.runner import cpu_count

    WORKER_THREADS = max(1, cpu_count() // WORKERS)
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(WORKER_THREADS)
    torch.set_num_threads(WORKER_THREADS)


# The modules whose tests read the smoke run (the `smoke_run` fixture): one unit of work for one worker,
# which builds the run once. (xdist's own `xdist_group` marks group nothing under pytest 9.2, which no
# longer reads the renamed node ids they rely on.)
SMOKE_RUN_MODULES = ("test_pipeline.py", "test_demo.py", "test_demo_browser.py")


def pytest_xdist_make_scheduler(config, log):
    """Under pytest-xdist: every test of SMOKE_RUN_MODULES in one unit, every other test a unit of its own."""
    from xdist.scheduler import LoadScopeScheduling

    class SmokeRunScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "smoke-run" if Path(nodeid.split("::", 1)[0]).name in SMOKE_RUN_MODULES else nodeid

    return SmokeRunScheduling(config, log)


def pytest_collection_modifyitems(items):
    """A test outside SMOKE_RUN_MODULES that reads the smoke run would go to another worker, which would
    build the run a second time: refused at collection."""
    for item in items:
        if "smoke_run" in getattr(item, "fixturenames", ()) and item.path.name not in SMOKE_RUN_MODULES:
            raise pytest.UsageError(f"{item.nodeid} reads the smoke run: add {item.path.name} to SMOKE_RUN_MODULES "
                                    "in tests/conftest.py")


def _image(rng: np.random.Generator, size=(12, 10)) -> Image.Image:
    return Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8))


@pytest.fixture(scope="session")
def rng_images():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def cifar_root(tmp_path_factory) -> Path:
    """cifar-100-python/{train,test,meta}: python-2-style pickles (protocol 2) of dicts with numpy data."""
    root = tmp_path_factory.mktemp("cifar")
    base = root / "cifar-100-python"
    base.mkdir()
    rng = np.random.default_rng(1)
    for split, n in (("train", 12), ("test", 8)):
        labels = [i % len(CIFAR_NAMES) for i in range(n)]
        batch = {"filenames": [f"img_{i}.png" for i in range(n)], "batch_label": f"{split} batch",
                 "fine_labels": labels, "coarse_labels": [0] * n,
                 "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}
        with open(base / split, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    with open(base / "meta", "wb") as f:
        pickle.dump({"fine_label_names": CIFAR_NAMES, "coarse_label_names": ["things"]}, f, protocol=2)
    return root


@pytest.fixture(scope="session")
def caltech_root(tmp_path_factory) -> Path:
    """256_ObjectCategories/NNN.name/NNN_XXXX.jpg, with the 257.clutter class the loader must drop."""
    root = tmp_path_factory.mktemp("caltech")
    rng = np.random.default_rng(2)
    for number, name in ((1, "ak47"), (63, "electric-guitar-101"), (257, "clutter")):
        folder = root / "256_ObjectCategories" / f"{number:03d}.{name}"
        folder.mkdir(parents=True)
        for i in range(5):
            _image(rng, (20 + i, 16)).save(folder / f"{number:03d}_{i + 1:04d}.jpg")
    return root


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """tiny-imagenet-200/: wnids.txt, words.txt, train/<wnid>/images/*.JPEG, val/images + val_annotations.txt."""
    root = tmp_path_factory.mktemp("tiny")
    base = root / "tiny-imagenet-200"
    rng = np.random.default_rng(3)
    wnids = list(TINY_WNIDS)
    (base / "train").mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(reversed(wnids)) + "\n")  # file order is not label order
    words = {**TINY_WNIDS, "n00001740": "entity"}  # words.txt covers all of WordNet, not only the 200
    (base / "words.txt").write_text("".join(f"{w}\t{t}\n" for w, t in words.items()))
    for w in wnids:
        (base / "train" / w / "images").mkdir(parents=True)
        (base / "train" / w / f"{w}_boxes.txt").write_text("")
        for i in range(3):
            _image(rng, (64, 64)).save(base / "train" / w / "images" / f"{w}_{i}.JPEG", format="JPEG")
    (base / "val" / "images").mkdir(parents=True)
    rows = []
    for i in range(6):
        _image(rng, (64, 64)).save(base / "val" / "images" / f"val_{i}.JPEG", format="JPEG")
        rows.append(f"val_{i}.JPEG\t{wnids[i % 3]}\t0\t0\t63\t63")
    (base / "val" / "val_annotations.txt").write_text("\n".join(rows) + "\n")
    (base / "test" / "images").mkdir(parents=True)
    _image(rng, (64, 64)).save(base / "test" / "images" / "test_0.JPEG", format="JPEG")
    return root


@pytest.fixture(scope="session")
def folder_root(tmp_path_factory) -> Path:
    """A user's ImageFolder tree: train/<class>/*, test/<class>/*."""
    root = tmp_path_factory.mktemp("folder")
    rng = np.random.default_rng(4)
    for split, n in (("train", 4), ("test", 2)):
        for cls in ("red_panda", "teapot"):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                _image(rng).save(root / split / cls / f"{i}.png")
    return root


COLOURS = {"red_apple": (200, 30, 30), "green_leaf": (40, 170, 60), "blue_cup": (40, 60, 200),
           "yellow_lemon": (230, 210, 40), "black_cat": (20, 20, 20), "white_plate": (235, 235, 235)}
COLOUR_DESCRIPTIONS = {name.replace("_", " "): f"a photo of something {name.split('_')[0]}, namely a {name.split('_')[1]}"
                       for name in COLOURS}


def _write_colour_folder(root: Path, train: int = 12, test: int = 6, seed: int = 0, split: bool = True) -> Path:
    """A tiny real-format image set: one flat colour per class with a random square, as PNGs in
    root/{train,test}/<class>/ (or root/<class>/ with split=False), and a descriptions.txt."""
    rng = np.random.default_rng(seed)
    for name, colour in COLOURS.items():
        for part, n in (("train", train), ("test", test)):
            folder = root / part / name if split else root / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = np.clip(np.array(colour) + rng.normal(0, 12, (32, 32, 3)), 0, 255).astype(np.uint8)
                x, y = rng.integers(0, 20, 2)
                img[y:y + 10, x:x + 10] = rng.integers(0, 256, 3)
                Image.fromarray(img).save(folder / f"{part}_{i}.png")
    (root / DESCRIPTIONS_FILE).write_text("# my own words\n" + "".join(f"{k}: {v}\n" for k, v in COLOUR_DESCRIPTIONS.items()))
    return root


@pytest.fixture(scope="session")
def colour_folder():
    """Writes a user's image set: `colour_folder(root, train=12, test=6, seed=0, split=True) -> root`."""
    return _write_colour_folder


def write_idx(path: Path, array: np.ndarray) -> None:
    """An idx file of unsigned bytes (MNIST format), gzipped."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="session")
def fashion_root(tmp_path_factory) -> Path:
    """The four Fashion-MNIST *-ubyte.gz files with 20 / 10 tiny images."""
    root = tmp_path_factory.mktemp("fashion")
    rng = np.random.default_rng(5)
    for prefix, n in (("train", 20), ("t10k", 10)):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return root


# The smoke pipeline's run: its executed notebooks, figures and artifacts. The pipeline tests check them;
# the demo page's tests serve its generators.
SMOKE_RUN = Path(__file__).resolve().parent.parent / "runs" / "test-smoke"


@pytest.fixture(scope="session")
def smoke_run():
    """The whole pipeline on the smoke profile, from an empty artifact folder, once per test session;
    seconds per notebook."""
    import shutil

    from t2wlib.pipeline.runner import run_pipeline

    shutil.rmtree(SMOKE_RUN, ignore_errors=True)
    # Two notebooks at a time after 01 and 02, as `make run` does: the pipeline's own notebooks must not step on
    # each other's files.
    return run_pipeline("smoke", run_dir=SMOKE_RUN, artifacts=SMOKE_RUN / "artifacts", figures=SMOKE_RUN / "figures",
                        log_output=False, parallel=2)
