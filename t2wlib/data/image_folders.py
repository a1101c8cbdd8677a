"""An ImageFolder-style tree (`<folder>/<class>/<images>`) read by the rules of docs/ARCHITECTURE.md
§6: visible class folders, names that are one class refused, links to folders inside a class not
followed, a file reached twice refused, hidden files and folders skipped."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from .class_names import class_key, clean_name
from .image_split import DatasetNotFoundError

# torchvision's ImageFolder extensions (torchvision.datasets.folder.IMG_EXTENSIONS), written out: importing
# torchvision costs seconds at every kernel start, and this module needs only the list.
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DatasetNotFoundError(f"{what}: expected a directory at {path}")
    return path


def readable_name(name: str) -> str:
    """A class folder's or label's name as a class name (`class_names.clean_name`: "_" as a space)."""
    return clean_name(name, "class folder")


def check_utf8(path: Path, what: str) -> None:
    """A file or folder name that is not UTF-8 (Python holds its bytes as surrogates) is refused, naming
    it by its bytes: such a name cannot be printed, written into a table or hashed as text."""
    if any("\udc80" <= ch <= "\udcff" for ch in path.name):
        raise DatasetNotFoundError(f"{what}: the name {os.fsencode(path.name)!r} of {os.fsencode(path.parent)!r} is not "
                                   "UTF-8 text; rename it")


def visible_dirs(folder: Path) -> list[str]:
    """The names of `folder`'s subfolders (a link to a folder counts), hidden ones (".name", e.g.
    .ipynb_checkpoints) left out, sorted."""
    return sorted(e.name for e in os.scandir(folder) if not e.name.startswith(".") and e.is_dir())


def _class_images(class_dir: Path) -> tuple[list[str], list[str]]:
    """The image files below one class folder, sorted, and the links to folders found there: those are
    not followed (a link to `.` or `..` would repeat images or take other classes' files). Hidden
    files and folders are skipped."""
    found, links = [], []
    for root, dirs, names in os.walk(class_dir, followlinks=False):
        links += [os.path.join(root, d) for d in dirs if os.path.islink(os.path.join(root, d))]
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # pruned in place: hidden folders are not walked
        found.append((root, names))
    files = [os.path.join(root, n) for root, names in sorted(found) for n in sorted(names)
             if not n.startswith(".") and n.lower().endswith(IMG_EXTENSIONS)]
    return files, links


def folder_samples(folder: Path, what: str, class_to_idx: dict[str, int] | None = None):
    """(paths, labels, class folder names) of an ImageFolder-style tree. Class folders are the visible
    subfolders; two whose names are one class (`class_names.class_key`: "Maple_tree", "maple tree")
    are refused, and so is a file reached twice (through links), which could land in both splits.
    Links to folders inside a class folder are not followed, with a warning."""
    require_dir(folder, what)
    if class_to_idx is None:
        classes = visible_dirs(folder)
        if not classes:
            raise DatasetNotFoundError(f"{what}: no class folders in {folder}")
        class_to_idx = {c: i for i, c in enumerate(classes)}
    else:
        classes = sorted(class_to_idx, key=class_to_idx.get)
    keys: dict[str, str] = {}
    for c in classes:
        check_utf8(folder / c, what)
        try:
            key = class_key(c)
        except ValueError as err:  # a control character, look-alike letters: named with the folder
            raise DatasetNotFoundError(f"{what}: class folder {folder / c}: {err}") from None
        if not key:
            raise DatasetNotFoundError(f"{what}: class folder {folder / c} has no name once cleaned ('_' is a space, "
                                       "invisible characters are dropped); rename it")
        if key in keys:
            raise DatasetNotFoundError(f"{what}: class folders {keys[key]!r} and {c!r} name one class "
                                       f"({readable_name(c)!r}); merge or rename them")
        keys[key] = c
    paths, labels, seen, skipped = [], [], {}, []
    for c in classes:
        files, links = _class_images(folder / c)
        skipped += links
        if not files:
            raise DatasetNotFoundError(f"{what}: no images in {folder / c} (image files end in {', '.join(IMG_EXTENSIONS)})")
        for f in files:
            check_utf8(Path(f), what)
            real = os.path.realpath(f)
            if real in seen:
                raise DatasetNotFoundError(f"{what}: {f} and {seen[real]} are the same file ({real}); an image may "
                                           "appear once, or it could be trained and tested on")
            seen[real] = f
        paths += files
        labels += [class_to_idx[c]] * len(files)
    if skipped:
        warnings.warn(f"{what}: {len(skipped)} link(s) to folders not followed, e.g. {skipped[0]}", stacklevel=2)
    return paths, np.array(labels, dtype=np.int64), classes
