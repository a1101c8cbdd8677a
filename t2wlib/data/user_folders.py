"""A user's own image folders as datasets (`t2w run --data NAME=PATH`): registered as `user-NAME`,
a namespace no built-in name uses, in any of the layouts of `USER_LAYOUTS`, with an optional
`descriptions.txt` of `name: description` lines for T2W-NL, checked before any kernel starts."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from .datasets import DATASETS, USER_PREFIX, _caltech256, _cifar100, _image_folder, stratified_split
from .image_folders import folder_samples, readable_name
from .image_split import DatasetNotFoundError, ImageSplit

USER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
DESCRIPTIONS_FILE = "descriptions.txt"
# Folders without a train/test split are split per class, with SPLIT_SEED, this fraction for testing.
USER_TEST_FRACTION = 0.2
# Sub-tasks need k >= 2 classes drawn from more than k (see profiles.for_dataset).
MIN_CLASSES = 3
USER_LAYOUTS = {
    "split folders": "PATH/train/<class>/<image> and PATH/test/<class>/<image>",
    "one folder": f"PATH/<class>/<image>, split {1 - USER_TEST_FRACTION:.0%}/{USER_TEST_FRACTION:.0%} per class",
    "cifar": "PATH/cifar-100-python/{train,test,meta} (or those three files in PATH)",
    "caltech": "PATH/256_ObjectCategories/NNN.name/<image>",
}
_USER_FOLDERS: dict[str, Path] = {}


def user_layout(path: Path) -> str:
    """Which of USER_LAYOUTS a user's folder is in (DatasetNotFoundError listing them if none)."""
    if (path / "train").is_dir() and (path / "test").is_dir():
        return "split folders"
    if (path / "cifar-100-python").is_dir() or all((path / f).is_file() for f in ("train", "test", "meta")):
        return "cifar"
    if (path / "256_ObjectCategories").is_dir():
        return "caltech"
    if any(p.is_dir() and not p.name.startswith(".") for p in path.iterdir()):
        return "one folder"
    raise DatasetNotFoundError(f"{path} holds no class folders; accepted layouts: "
                               + "; ".join(f"{k}: {v}" for k, v in USER_LAYOUTS.items()))


def parse_user_data(entry: str) -> tuple[str, Path]:
    """`NAME=PATH` -> (NAME, absolute PATH), checked: a lower-case name, an existing folder."""
    name, sep, path = entry.partition("=")
    name, path = name.strip(), path.strip()
    if not sep or not name or not path:
        raise ValueError(f"--data {entry!r} is not NAME=PATH (e.g. birds=/data/birds)")
    if not USER_NAME.match(name):
        raise ValueError(f"--data name {name!r}: use 1-40 lower-case letters, digits, '-' or '_', starting with "
                         "a letter or digit")
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise DatasetNotFoundError(f"--data {name}={path}: {folder} is not a folder")
    return name, folder


def register_user_dataset(entry: str) -> str:
    """Register a user's folder (`NAME=PATH`) as dataset `user-NAME`; returns that name. Registering
    the same name and folder again is a no-op; the same name for another folder is refused."""
    name, folder = parse_user_data(entry)
    dataset = USER_PREFIX + name
    if dataset in _USER_FOLDERS:
        if _USER_FOLDERS[dataset] != folder:
            raise ValueError(f"dataset {dataset!r} is already {_USER_FOLDERS[dataset]}, not {folder}")
        return dataset
    user_layout(folder)  # refuse an unusable folder now, not in the middle of a run
    DATASETS.register(dataset, lambda split, root=None: _user_split(dataset, folder, split))
    _USER_FOLDERS[dataset] = folder
    return dataset


def _user_split(dataset: str, folder: Path, split: str) -> ImageSplit:
    layout = user_layout(folder)
    if layout == "split folders":
        images = _image_folder(dataset, folder, split)
    elif layout == "one folder":
        paths, labels, classes = folder_samples(folder, f"image folder {dataset!r}")
        idx = stratified_split(labels, USER_TEST_FRACTION)[split]
        images = ImageSplit(dataset, split, [readable_name(c) for c in classes], labels[idx], paths=[paths[i] for i in idx])
    elif layout == "cifar":
        images = _cifar100(split, folder if (folder / "cifar-100-python").is_dir() else folder.parent)
    else:
        images = _caltech256(split, folder)
    if len(images.class_names) < MIN_CLASSES:
        raise DatasetNotFoundError(f"{dataset} ({folder}) has {len(images.class_names)} class(es) "
                                   f"({', '.join(images.class_names)}); a zoo of sub-tasks needs at least {MIN_CLASSES}")
    return replace(images, dataset=dataset, descriptions=read_descriptions(folder / DESCRIPTIONS_FILE, images.class_names))


def read_descriptions(path: Path, class_names: list[str]) -> list[str] | None:
    """A dataset folder's `descriptions.txt`: one `name: description` line per class (the class
    folder's name or its readable form; `#` comments and blank lines ignored), or None without one."""
    if not path.exists():
        return None
    from .class_names import class_key, read_classes_file

    names, texts = read_classes_file(path)
    if texts is None:
        raise ValueError(f"{path}: every line must be 'class name: description'")
    given = {class_key(n): (n, t) for n, t in zip(names, texts)}
    unknown = sorted(n for key, (n, _) in given.items() if key not in {class_key(c) for c in class_names})
    missing = [c for c in class_names if class_key(c) not in given]
    if unknown or missing:
        raise ValueError(f"{path}: " + "; ".join(
            ([f"no class named {unknown}"] if unknown else []) + ([f"no description for {missing}"] if missing else []))
            + f"; the classes are: {', '.join(class_names)}")
    return [given[class_key(c)][1] for c in class_names]
