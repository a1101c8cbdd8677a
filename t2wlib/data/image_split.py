"""One split of a dataset as the pipeline reads it: images (an in-memory uint8 array or image
files) with their labels and class names, and the digest of its content that caches and zoos are
keyed by; `check_disjoint` refuses a test image whose bytes are a training image's, and one image twice
in a split."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from PIL import Image

from .images import ImageReadError, open_rgb


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are missing or malformed; the message says what was expected where."""


@dataclass
class ImageSplit(torch.utils.data.Dataset):
    """One split of a base dataset: images (an in-memory uint8 array or image files) and labels."""

    dataset: str
    split: str
    class_names: list[str]
    labels: np.ndarray  # (N,) int64 in [0, C)
    array: np.ndarray | None = None  # (N, H, W) or (N, H, W, 3) uint8, or None for file datasets
    paths: list[str] | None = None  # N image files, or None for array datasets
    wnids: list[str] | None = None  # WordNet id per class, where the dataset defines them
    descriptions: list[str] | None = None  # the user's T2W-NL text per class (descriptions.txt)
    transform: Callable | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, i: int) -> Image.Image:
        """Image i as an RGB PIL image (grey images are replicated to 3 channels)."""
        if self.array is not None:
            return Image.fromarray(self.array[i]).convert("RGB")
        try:
            return open_rgb(self.paths[i])
        except ImageReadError as err:
            raise DatasetNotFoundError(str(err)) from None  # it names the file and the reason

    def uint8_batch(self, start: int, stop: int) -> torch.Tensor:
        """Images start..stop of an array dataset as a uint8 tensor (B, 3, H, W), grey replicated."""
        if self.array is None:
            raise TypeError(f"{self.dataset} is a file dataset; read images with image(i)")
        x = torch.from_numpy(np.ascontiguousarray(self.array[start:stop]))
        return x.unsqueeze(1).expand(-1, 3, -1, -1) if x.ndim == 3 else x.permute(0, 3, 1, 2)

    def __getitem__(self, i: int):
        im = self.image(i)
        return (self.transform(im) if self.transform else im), int(self.labels[i])

    def subset(self, indices: np.ndarray) -> ImageSplit:
        indices = np.asarray(indices, dtype=np.int64)
        return replace(
            self,
            labels=self.labels[indices],
            array=None if self.array is None else self.array[indices],
            paths=None if self.paths is None else [self.paths[i] for i in indices],
        )

    def fingerprint(self) -> str:
        """A content hash of labels and images (array bytes, or every file's path, size and bytes)
        for cache keys: a changed, added, renamed or moved image changes it."""
        h = hashlib.sha256(self.labels.astype(np.int64).tobytes())
        if self.array is not None:
            h.update(np.ascontiguousarray(self.array).tobytes())
        else:
            for path in self.paths:
                h.update(f"{os.path.abspath(path)}\0{file_digest(path)}\n".encode())
        return h.hexdigest()[:16]


# (absolute path, size, mtime_ns) -> sha256 of the bytes: a file is read once per process unless it changes.
_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | os.PathLike) -> str:
    """"size:sha256" of a file's bytes, remembered per (path, size, mtime) within the process."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if key not in _FILE_DIGESTS:
        with open(path, "rb") as f:
            _FILE_DIGESTS[key] = f"{st.st_size}:{hashlib.file_digest(f, 'sha256').hexdigest()}"
    return _FILE_DIGESTS[key]


def check_disjoint(train: ImageSplit, test: ImageSplit) -> None:
    """DatasetNotFoundError naming the first two images with the same bytes: a test image that is a
    training image (the test would score memory), or one image twice in a split (a hard link, or a copy
    under another name: it would count twice)."""
    if train.paths is None or test.paths is None:
        return
    seen: dict[str, tuple[str, str]] = {}
    for images in (train, test):
        for p in images.paths:
            digest = file_digest(p)
            if digest in seen:
                first, split = seen[digest]
                if split == images.split:
                    raise DatasetNotFoundError(f"{images.dataset}: {split} images {first} and {p} have the same bytes "
                                               "(a copy or a hard link); keep one, or it counts twice")
                raise DatasetNotFoundError(f"{train.dataset}: test image {p} has the same bytes as training image "
                                           f"{first}; remove one, or the test scores memory")
            seen[digest] = (p, images.split)
