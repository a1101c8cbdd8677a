"""Base datasets: a registry of loaders yielding images, integer labels and readable class names.

Embedded (offline): `fashion-mnist` (Debian's `dataset-fashion-mnist` idx.gz files, else a torchvision
download), `digits` (sklearn). Paper (docs/ARCHITECTURE.md §4): `cifar100` (the python pickle batches),
`caltech256` (`256_ObjectCategories/NNN.name/*.jpg`), `tinyimagenet` (`tiny-imagenet-200/` with the
flat `val/images` + `val_annotations.txt`), and `imagefolder` (a user's `train/` and `test/` trees).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.registry import Registry
from .image_folders import folder_samples, readable_name, require_dir, visible_dirs
from .image_split import DatasetNotFoundError, ImageSplit, check_disjoint

SPLITS = ("train", "test")
# The namespace of a user's own datasets (data/user_folders.py): no built-in name starts with it.
USER_PREFIX = "user-"
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
# Datasets without an official split are split per class with this fixed seed, so the test images
# never depend on the experiment seed.
SPLIT_SEED = 0

DATASETS: Registry[Callable[..., ImageSplit]] = Registry("dataset")


@dataclass(frozen=True)
class DatasetIdentity:
    """What a dataset's zoo depends on: its class names, user descriptions and both splits' content."""

    name: str
    num_classes: int
    digest: str


def dataset_identity(name: str, root: str | os.PathLike | None = None) -> DatasetIdentity:
    """The identity of both splits of `name` (labels, class names, descriptions, image content).
    A file dataset whose test split holds an image with the bytes of a training image is refused:
    its test accuracy would measure memory."""
    splits = [load_split(name, split, root) for split in SPLITS]
    check_disjoint(*splits)
    h = hashlib.sha256("\n".join(splits[0].class_names).encode())
    h.update(repr(splits[0].descriptions).encode())
    for s in splits:
        h.update(s.fingerprint().encode())
    return DatasetIdentity(name, len(splits[0].class_names), h.hexdigest()[:16])


def balanced_indices(labels: np.ndarray, per_class: int | None, seed: int) -> np.ndarray:
    """Sorted indices of at most `per_class` items of each class, chosen reproducibly from `seed`."""
    if per_class is None:
        return np.arange(len(labels))
    if per_class <= 0:
        raise ValueError(f"per_class must be positive or None, got {per_class}")
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(keep))


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int = SPLIT_SEED) -> dict[str, np.ndarray]:
    """Per-class train/test indices for datasets without an official split."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = max(1, int(round(test_fraction * len(idx))))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return {"train": np.sort(np.concatenate(train)), "test": np.sort(np.concatenate(test))}


def load_split(name: str, split: str, root: str | os.PathLike | None = None) -> ImageSplit:
    """Split `split` ("train" or "test") of the registered dataset `name`, read from `root`."""
    factory = DATASETS.get(name)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    return factory(split=split, root=None if root is None else Path(root))


def check_available(names: list[str], root: str | os.PathLike | None = None) -> None:
    """Read both splits of every dataset in `names` (DatasetNotFoundError naming what is missing
    where): a run checks its data before it loads any model weights."""
    for name in names:
        splits = [load_split(name, split, root) for split in SPLITS]
        if name.startswith(USER_PREFIX):  # a user's files are opened once up front
            for images in splits:
                check_images(images)
            check_disjoint(*splits)


def check_images(split: ImageSplit) -> None:
    """Decode every image file of a split as training will (DatasetNotFoundError naming the first
    unreadable one: not an image, truncated, too large, not a regular file)."""
    for i in range(len(split.paths or ())):
        split.image(i)


# --- Fashion-MNIST -------------------------------------------------------------------------------

FASHION_MNIST_CLASSES = [
    "t-shirt", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle boot",
]
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: Path) -> np.ndarray:
    """An idx file (the MNIST format: magic 0x0000 08 nd, nd big-endian sizes, uint8 data), gzipped or not."""
    raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or not 1 <= raw[3] <= 4:
        raise DatasetNotFoundError(f"{path} is not an idx file of unsigned bytes")
    nd = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(nd))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd)
    if data.size != int(np.prod(shape)):
        raise DatasetNotFoundError(f"{path} is truncated: header says {shape}, found {data.size} bytes")
    return data.reshape(shape)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


@DATASETS.register("fashion-mnist")
def _fashion_mnist(split: str, root: Path | None) -> ImageSplit:
    """Search order: `root` itself, Debian's package folder, then torchvision's layout under `root`."""
    folders = [DEBIAN_FASHION_MNIST] if root is None else [root, DEBIAN_FASHION_MNIST, root / "FashionMNIST" / "raw"]
    for folder in folders:
        files = [_find_idx(folder, stem) for stem in _IDX_FILES[split]]
        if all(files):
            images, labels = (read_idx(f) for f in files)
            return ImageSplit("fashion-mnist", split, FASHION_MNIST_CLASSES, labels.astype(np.int64), array=images)
    if root is None:
        raise DatasetNotFoundError(
            f"Fashion-MNIST not found in {DEBIAN_FASHION_MNIST}. Install it with "
            "`apt-get install dataset-fashion-mnist` (Debian), or pass a data root to download it into."
        )
    from torchvision.datasets import FashionMNIST

    try:
        ds = FashionMNIST(str(root), train=split == "train", download=True)
    except (urllib.error.URLError, OSError, RuntimeError) as err:
        raise DatasetNotFoundError(
            f"Fashion-MNIST not found (looked in {', '.join(map(str, folders))}) and the download failed "
            f"({err}). Install it with `apt-get install dataset-fashion-mnist` (Debian), or copy the four "
            f"*-ubyte.gz files into {root}."
        ) from err
    return ImageSplit("fashion-mnist", split, FASHION_MNIST_CLASSES, ds.targets.numpy().astype(np.int64), array=ds.data.numpy())


# --- sklearn digits --------------------------------------------------------------------------------

DIGIT_CLASSES = [f"digit {w}" for w in "zero one two three four five six seven eight nine".split()]


@DATASETS.register("digits")
def _digits(split: str, root: Path | None) -> ImageSplit:
    """sklearn's 1,797 8x8 digits (16 grey levels), split 2/3 train, 1/3 test per class."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)  # (1797, 8, 8)
    idx = stratified_split(d.target, test_fraction=1 / 3)[split]
    return ImageSplit("digits", split, DIGIT_CLASSES, d.target[idx].astype(np.int64), array=images[idx])


# --- rendered emoji (emoji.py) ----------------------------------------------------------------------

# The many-class embedded dataset, and a 20-class version of it for the smoke profile. Both render
# once into the data root (or artifacts/data) and are read back from there.
EMOJI_DATASETS = {"emoji": dict(classes=300, train_per_class=40, test_per_class=20),
                  "emoji-tiny": dict(classes=20, train_per_class=20, test_per_class=10)}


def register_emoji_dataset(name: str, **config) -> None:
    """Register rendered emoji (emoji.EmojiConfig fields as keywords) as dataset `name`."""
    from .emoji import EmojiConfig

    cfg = EmojiConfig(**config)
    DATASETS.register(name, lambda split, root: _emoji(name, cfg, split, root))


def _emoji(name: str, cfg, split: str, root: Path | None) -> ImageSplit:
    from .emoji import load_rendered

    try:
        images, labels, names = load_rendered(cfg, split, root or Path("artifacts") / "data")
    except FileNotFoundError as err:  # a font package is missing: the message names it
        raise DatasetNotFoundError(str(err)) from None
    return ImageSplit(name, split, names, labels, array=images)


for _name, _config in EMOJI_DATASETS.items():
    register_emoji_dataset(_name, **_config)


# --- CIFAR-100 ------------------------------------------------------------------------------------

class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only dicts, lists, strings, bytes and numpy arrays: CIFAR's batches need no more."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        return super().find_class(module, name)


def _load_cifar_pickle(path: Path) -> dict:
    if not path.is_file():
        raise DatasetNotFoundError(f"CIFAR-100: missing {path} (expected the python version, cifar-100-python/)")
    with open(path, "rb") as f:
        return _ArrayUnpickler(io.BytesIO(f.read()), encoding="latin1").load()


@DATASETS.register("cifar100")
def _cifar100(split: str, root: Path | None) -> ImageSplit:
    """`root/cifar-100-python/{train,test,meta}` (torchvision's download layout)."""
    base = (root or Path(".")) / "cifar-100-python"
    batch = _load_cifar_pickle(base / split)
    meta = _load_cifar_pickle(base / "meta")
    images = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    labels = np.asarray(batch["fine_labels"], dtype=np.int64)
    names = [readable_name(n) for n in meta["fine_label_names"]]
    return ImageSplit("cifar100", split, names, labels, array=np.ascontiguousarray(images))


# --- folder datasets ------------------------------------------------------------------------------


@DATASETS.register("caltech256")
def _caltech256(split: str, root: Path | None) -> ImageSplit:
    """`root/256_ObjectCategories/NNN.name/*.jpg`, the clutter class dropped; 80/20 split per class."""
    folder = (root or Path(".")) / "256_ObjectCategories"
    require_dir(folder, "Caltech-256")
    class_dirs = [d for d in visible_dirs(folder) if not d.endswith(".clutter")]
    paths, labels, classes = folder_samples(folder, "Caltech-256", {c: i for i, c in enumerate(class_dirs)})
    # "063.electric-guitar-101" -> "electric guitar"
    names = [c.split(".", 1)[-1].removesuffix("-101").replace("-", " ").replace("_", " ") for c in classes]
    idx = stratified_split(labels, test_fraction=0.2)[split]
    return ImageSplit("caltech256", split, names, labels[idx], paths=[paths[i] for i in idx])


def tinyimagenet_wnids(root: Path | None) -> list[str]:
    """The 200 WordNet ids of TinyImageNet, in label order."""
    path = (root or Path(".")) / "tiny-imagenet-200" / "wnids.txt"
    if not path.is_file():
        raise DatasetNotFoundError(f"TinyImageNet: missing {path}")
    return sorted(line.strip() for line in path.read_text().splitlines() if line.strip())


@DATASETS.register("tinyimagenet")
def _tinyimagenet(split: str, root: Path | None) -> ImageSplit:
    """`root/tiny-imagenet-200/`; the labelled `val/` serves as test split (test/ has no labels)."""
    base = (root or Path(".")) / "tiny-imagenet-200"
    wnids = tinyimagenet_wnids(root)
    words = {}
    words_file = base / "words.txt"
    if words_file.is_file():
        for line in words_file.read_text().splitlines():
            wnid, _, text = line.partition("\t")
            words[wnid] = text.split(",")[0].strip()
    names = [words.get(w, w) for w in wnids]
    class_to_idx = {w: i for i, w in enumerate(wnids)}
    if split == "train":
        paths, labels, _ = folder_samples(base / "train", "TinyImageNet train", class_to_idx)
    else:
        ann = base / "val" / "val_annotations.txt"
        if not ann.is_file():
            raise DatasetNotFoundError(f"TinyImageNet: missing {ann}")
        rows = [line.split("\t") for line in ann.read_text().splitlines() if line.strip()]
        paths = [str(base / "val" / "images" / r[0]) for r in rows]
        labels = np.array([class_to_idx[r[1]] for r in rows], dtype=np.int64)
    return ImageSplit("tinyimagenet", split, names, labels, paths=paths, wnids=wnids)


def _image_folder(name: str, base: Path, split: str) -> ImageSplit:
    paths, labels, classes = folder_samples(base / split, f"image folder {name!r} ({split})")
    train_classes = visible_dirs(base / "train") if split == "test" else classes
    if classes != train_classes:
        raise DatasetNotFoundError(f"image folder {name!r}: test classes {classes} differ from train classes {train_classes}")
    return ImageSplit(name, split, [readable_name(c) for c in classes], labels, paths=paths)


@DATASETS.register("imagefolder")
def _imagefolder(split: str, root: Path | None) -> ImageSplit:
    """A user's tree `root/{train,test}/<class name>/<image>`; class names from folder names."""
    if root is None:
        raise ValueError("dataset 'imagefolder' needs a root: a folder with train/ and test/ subfolders")
    return _image_folder("imagefolder", root, split)
