"""The CUDA users' path, short of the downloaded weights: the `paper` profile's 01-03 run headless
through papermill on CIFAR-100 written in its real on-disk format, with tiny `--set` overrides,
ResNet-18 and CLIP ViT-B/32 built with random weights behind the explicit test-only switch."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest

from t2wlib.core.runtime import RANDOM_WEIGHTS_FOR_TESTS

CLASSES = ["apple", "aquarium_fish", "palm_tree", "otter"]
OVERRIDES = ["datasets=cifar100", "image_size=64", "batch_size=16", "zoo_tasks=10", "zoo_k=2,3",
             "stage1_epochs=2", "stage2_epochs=2", "universal_epochs=2", "zoo_batch_size=8",
             "universal_batch_size=8", "dit=tiny", "block_size=128", "diffusion_steps=100", "enhancement_t=50", "ddim_steps=5",
             "gen_epochs=2", "gen_batch_size=4", "checkpoint_every=2", "seeds=42", "eval_seen_tasks=4",
             "trajectory_tasks=1", "heldout_split_classes=0", "ablation_validation_tasks=2",
             "hidden=16"]  # the paper's r, set explicitly: the rule would give 4 classes r = 2


@pytest.fixture(scope="module")
def cifar_colours(tmp_path_factory):
    """cifar-100-python/{train,test,meta} (protocol-2 pickles, uint8 rows of 3,072) whose classes
    differ in colour, so that even random-weight features separate them and the notebooks' sanity
    checks hold."""
    root = tmp_path_factory.mktemp("cifar-colours")
    base = root / "cifar-100-python"
    base.mkdir()
    rng = np.random.default_rng(0)
    colours = np.array([[220, 30, 30], [30, 220, 30], [30, 30, 220], [220, 220, 30]])
    for split, per_class in (("train", 20), ("test", 10)):
        labels = np.repeat(np.arange(len(CLASSES)), per_class)
        images = colours[labels][:, :, None, None] + rng.integers(-25, 25, (len(labels), 3, 32, 32))
        batch = {"filenames": [f"{split}_{i}.png" for i in range(len(labels))], "fine_labels": labels.tolist(),
                 "coarse_labels": [0] * len(labels), "data": images.clip(0, 255).astype(np.uint8).reshape(len(labels), -1)}
        with open(base / split, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    with open(base / "meta", "wb") as f:
        pickle.dump({"fine_label_names": CLASSES, "coarse_label_names": ["things"]}, f, protocol=2)
    return root


@pytest.mark.pipeline
def test_paper_profile_01_to_03_on_fixture_data(cifar_colours, tmp_path, monkeypatch, capsys):
    from t2wlib.pipeline import cli

    monkeypatch.setenv(RANDOM_WEIGHTS_FOR_TESTS, "1")  # the kernels inherit it
    figures = tmp_path / "figures"
    argv = ["run", "--profile", "paper", "--only", "01", "02", "03", "--quiet", "--data-root", str(cifar_colours),
            "--artifacts", str(tmp_path / "artifacts"), "--figures", str(figures), "--run-dir", str(tmp_path / "nb")]
    for item in OVERRIDES:
        argv += ["--set", item]
    assert cli.main(argv) == 0, capsys.readouterr().err[-3000:]
    probe = pd.read_csv(figures / "linear_probe.csv")
    assert list(probe.dataset) == ["cifar100"] and probe.n_train.item() == 80
    table1 = pd.read_csv(figures / "table1.csv")
    assert {"T2W-CLIP", "T2W-NL", "Hypernetwork-CLIP", "Universal Model"} <= set(table1.method)
    provenance = json.loads((figures / "provenance.json").read_text())
    assert all(e["profile"] == "paper" and e["overrides"]["zoo_tasks"] == 10 for e in provenance.values())
    zoo = next((tmp_path / "artifacts" / "zoo" / "paper").glob("cifar100-*"))
    config = json.loads((zoo / "config.json").read_text())
    # ResNet-18, CLIP, and the explicit r = 16 kept by the class-count rule (profiles.for_dataset)
    assert config["spec"] == {"feature_dim": 512, "hidden": 16, "embed_dim": 512}
    assert config["source"]["backbone"] == "resnet18" and config["source"]["text_encoder"] == "clip-vit-b-32"
