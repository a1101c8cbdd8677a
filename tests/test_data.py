"""Dataset registry: embedded datasets, paper-format fixtures, and bad input."""

from __future__ import annotations

import gzip
import os
import pickle
import urllib.error

import numpy as np
import pytest

from t2wlib.data import datasets
from t2wlib.data.datasets import load_split
from t2wlib.data.image_split import DatasetNotFoundError


def test_fashion_mnist_from_debian_package():
    train, test = load_split("fashion-mnist", "train"), load_split("fashion-mnist", "test")
    assert (len(train), len(test)) == (60000, 10000)
    assert train.array.shape == (60000, 28, 28) and train.array.dtype == np.uint8
    assert np.bincount(test.labels).tolist() == [1000] * 10
    assert train.class_names[7] == "sneaker" and train.image(0).mode == "RGB"


def test_fashion_mnist_reads_idx_gz_from_root(fashion_root, monkeypatch):
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", fashion_root / "absent")
    split = load_split("fashion-mnist", "test", root=fashion_root)
    assert len(split) == 10 and split.labels.tolist() == list(range(10))
    with gzip.open(fashion_root / "t10k-images-idx3-ubyte.gz") as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(10, 28, 28)
    np.testing.assert_array_equal(split.array, raw)


def test_fashion_mnist_missing_without_network_says_how_to_install(tmp_path, monkeypatch):
    from torchvision.datasets import FashionMNIST

    def no_network(self):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", tmp_path / "absent")
    monkeypatch.setattr(FashionMNIST, "download", no_network)
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_split("fashion-mnist", "train", root=tmp_path / "data")
    assert not [p for p in (tmp_path / "data").rglob("*") if p.is_file()], "no partial file may remain"
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_split("fashion-mnist", "train")  # no root: no download attempted


def test_truncated_idx_file_is_rejected(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + (5).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + b"\0" * 100)
    with pytest.raises(DatasetNotFoundError, match="truncated"):
        datasets.read_idx(path)


def test_digits_split_is_stratified_disjoint_and_fixed():
    train, test = load_split("digits", "train"), load_split("digits", "test")
    assert len(train) + len(test) == 1797
    assert set(np.unique(test.labels)) == set(range(10))
    assert 0.3 < len(test) / 1797 < 0.36
    train_rows = {a.tobytes() for a in train.array}
    assert sum(a.tobytes() in train_rows for a in test.array) < 10  # only genuine duplicate digits
    np.testing.assert_array_equal(load_split("digits", "test").array, test.array)


def test_cifar100_python_pickles(cifar_root):
    train = load_split("cifar100", "train", cifar_root)
    assert train.class_names == ["apple", "aquarium fish", "palm tree", "otter"]
    assert train.array.shape == (12, 32, 32, 3)
    with open(cifar_root / "cifar-100-python" / "train", "rb") as f:
        raw = pickle.load(f, encoding="latin1")
    # CIFAR rows are channel-major: 1024 red, 1024 green, 1024 blue values.
    np.testing.assert_array_equal(np.asarray(train.image(3))[..., 1], raw["data"][3, 1024:2048].reshape(32, 32))
    assert train.labels.tolist() == raw["fine_labels"]
    assert len(load_split("cifar100", "test", cifar_root)) == 8


def test_cifar_reader_refuses_arbitrary_pickles(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    base = tmp_path / "cifar-100-python"
    base.mkdir()
    (base / "train").write_bytes(pickle.dumps({"data": Evil()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_split("cifar100", "train", tmp_path)


def test_caltech256_drops_clutter_and_splits_per_class(caltech_root):
    train, test = load_split("caltech256", "train", caltech_root), load_split("caltech256", "test", caltech_root)
    assert train.class_names == ["ak47", "electric guitar"]
    assert not set(train.paths) & set(test.paths)
    assert len(train) + len(test) == 10
    assert np.bincount(test.labels).tolist() == [1, 1]
    assert train.image(0).mode == "RGB"


def test_tinyimagenet_train_folders_and_flat_val(tiny_root):
    train, test = load_split("tinyimagenet", "train", tiny_root), load_split("tinyimagenet", "test", tiny_root)
    assert train.wnids == ["n01443537", "n01629819", "n02123045"]
    assert train.class_names == ["goldfish", "European fire salamander", "tabby"]
    assert len(train) == 9 and np.bincount(train.labels).tolist() == [3, 3, 3]
    assert len(test) == 6 and test.labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert test.image(0).size == (64, 64)


def test_image_folder_with_a_root(folder_root):
    train = load_split("imagefolder", "train", folder_root)
    assert train.class_names == ["red panda", "teapot"] and len(train) == 8
    assert len(load_split("imagefolder", "test", folder_root)) == 4


def test_image_folder_with_no_classes(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(DatasetNotFoundError, match="no class folders"):
        load_split("imagefolder", "train", tmp_path)
    with pytest.raises(DatasetNotFoundError, match="expected a directory"):
        load_split("imagefolder", "test", tmp_path)


def test_unknown_names_list_the_registered_ones():
    with pytest.raises(KeyError, match="unknown dataset 'mnist'.*fashion-mnist"):
        load_split("mnist", "train")
    with pytest.raises(ValueError, match="unknown split 'val'"):
        load_split("digits", "val")


def test_missing_paper_dataset_names_the_expected_path(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="cifar-100-python"):
        load_split("cifar100", "train", tmp_path)
    with pytest.raises(DatasetNotFoundError, match="wnids.txt"):
        load_split("tinyimagenet", "train", tmp_path)


def test_balanced_indices_are_per_class_and_reproducible():
    labels = np.repeat(np.arange(3), [5, 2, 9])
    idx = datasets.balanced_indices(labels, 4, seed=7)
    assert np.bincount(labels[idx]).tolist() == [4, 2, 4]
    np.testing.assert_array_equal(idx, datasets.balanced_indices(labels, 4, seed=7))
    assert len(datasets.balanced_indices(labels, None, 0)) == 16
    with pytest.raises(ValueError, match="per_class"):
        datasets.balanced_indices(labels, 0, 0)

