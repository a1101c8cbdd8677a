"""Figures of many-class datasets stay small: a spread of classes, unlabelled heatmaps."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from t2wlib.data.image_split import ImageSplit
from t2wlib.pipeline import plotting


def _split(classes: int, per_class: int = 2) -> ImageSplit:
    labels = np.repeat(np.arange(classes), per_class)
    array = (np.arange(len(labels))[:, None, None] % 251 * np.ones((len(labels), 8, 8))).astype(np.uint8)
    return ImageSplit("toy", "train", [f"class {c}" for c in range(classes)], labels, array=array)


def test_sample_grid_shows_every_class_of_a_small_dataset():
    fig = plotting.sample_grid(_split(5), per_class=2)
    names = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert names == [f"class {c}" for c in range(5)]
    assert all(ax.images for ax in fig.axes)  # every cell holds an image
    plt.close(fig)


def test_sample_grid_spreads_a_many_class_dataset_over_max_classes_rows():
    fig = plotting.sample_grid(_split(300), per_class=2, max_classes=30)
    names = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert len(names) == 30 and names[0] == "class 0" and names[-1] == "class 299"
    assert len(set(names)) == 30 and all(ax.images for ax in fig.axes)
    assert "30 of 300 classes" in fig.get_suptitle()
    plt.close(fig)


def test_similarity_heatmaps_drop_labels_and_cap_size_above_the_labelled_limit():
    emb = {"prompt": torch.randn(300, 16)}
    big = plotting.similarity_heatmaps(emb, [f"c{i}" for i in range(300)], "many")
    assert not big.axes[0].get_xticklabels()
    assert max(big.get_size_inches()) <= 0.45 * plotting.HEATMAP_LABELLED_CLASSES + 2
    small = plotting.similarity_heatmaps({"prompt": torch.randn(6, 16)}, [f"c{i}" for i in range(6)], "few")
    assert [t.get_text() for t in small.axes[0].get_xticklabels()] == [f"c{i}" for i in range(6)]
    plt.close(big), plt.close(small)


def test_gradcam_grid_wraps_a_long_class_list_to_the_grid_width(tmp_path):
    """A 28-class task's title used to make Figure 4 three times wider than its grid."""
    images = np.full((2, 16, 16, 3), 0.5)
    overlays = {f"step {s}": np.zeros((2, 16, 16, 3), dtype=np.uint8) for s in (900, 950, 1000)}
    title = "emoji, unseen task 15 (" + ", ".join(f"class number {c}" for c in range(28)) + ")"
    fig = plotting.gradcam_grid(images, overlays, ["a", "b"], title)
    assert fig.get_suptitle().replace("\n", " ") == title and "\n" in fig.get_suptitle()
    path = tmp_path / "grid.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    width = plt.imread(path).shape[1]
    assert width <= 1.05 * fig.get_figwidth() * 100, width  # the title no longer widens the figure
    plt.close(fig)


def test_zoo_weight_projection_is_the_same_on_every_call():
    """sklearn's randomized PCA solver is seeded: a weak second component used to come out different
    on every run of 01_zoo."""
    import pandas as pd

    g = torch.Generator().manual_seed(0)
    theta = torch.randn(600, 3000, generator=g) * torch.linspace(1, 0.9, 3000)  # a flat spectrum: PC2 ill-determined
    table = pd.DataFrame({"split": ["seen"] * 500 + ["unseen"] * 100, "k": np.arange(600) % 7 + 2})
    points = []
    for _ in range(2):
        fig = plotting.zoo_weight_projection({"toy": theta}, {"toy": table})
        points.append(np.concatenate([c.get_offsets() for c in fig.axes[0].collections]))
        plt.close(fig)
    assert np.array_equal(points[0], points[1])


def test_convergence_reference_labels_never_overprint_and_sit_at_their_lines_when_apart():
    """Ridge and its projected ceiling sit within a tenth of a point: their labels must move apart; a label
    with room stays at its line's height."""
    import pandas as pd

    curves = pd.DataFrame({"model": ["a"] * 3, "step": [10, 100, 1000], "accuracy": [0.6, 0.75, 0.8]})
    references = {"ridge": 0.801, "projected ceiling": 0.802, "Universal": 0.713, "θ0*": 0.70}
    fig = plotting.convergence(curves, references)
    acc = fig.axes[0]
    labels = {t.get_text(): t for t in acc.texts}
    assert set(labels) == set(references)
    heights = dict(zip(references, plotting.spread_labels(acc, references, ["k"] * 4), strict=True))
    ordered = sorted(heights.values())
    assert min(np.diff(ordered)) >= 0.045 - 1e-9  # never closer than the gap
    low, high = acc.get_ylim()
    assert heights["θ0*"] == (0.70 - low) / (high - low)  # room below: at its own line
    assert heights["ridge"] < heights["projected ceiling"]  # the lines' order kept
    plt.close(fig)
