"""The feature and text-embedding cache: a folder of `<kind>/<digest>.safetensors` entries, each
addressed by a JSON-able key (dataset, split, backbone, preprocessing, ...) and verified by its
sidecar; an entry whose checksum or key does not match is reported with a `CacheCorruptionWarning`
and recomputed."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from .files import CorruptArtifactError, key_digest
from .sealed import load_checked, save_checked, sidecar

log = logging.getLogger(__name__)


class CacheCorruptionWarning(UserWarning):
    """A cache entry failed verification and is being recomputed."""


class TensorCache:
    """A folder of `<kind>/<digest>.safetensors` entries, each with a `.json` sidecar holding its key."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, kind: str, key: dict) -> Path:
        return (self.root / kind / key_digest(key)).with_suffix(".safetensors")

    def load(self, kind: str, key: dict) -> dict[str, torch.Tensor] | None:
        """The verified entry, or None when absent or failing verification (warned)."""
        path = self.path(kind, key)
        if not path.exists() and not sidecar(path).exists():
            return None
        try:
            return load_checked(path, expect={"key": key})[0]
        except CorruptArtifactError as err:
            msg = f"invalid cache entry, recomputing: {err}"
            log.warning(msg)
            warnings.warn(msg, CacheCorruptionWarning, stacklevel=2)
            return None

    def save(self, kind: str, key: dict, tensors: dict[str, torch.Tensor], info: dict | None = None) -> None:
        save_checked(self.path(kind, key), tensors, {"key": key, "info": info or {}})

    def get_or_compute(self, kind: str, key: dict, compute: Callable[[], dict[str, torch.Tensor]],
                       info: dict | None = None) -> dict[str, torch.Tensor]:
        """The cached entry for `key`, computing and storing it first when missing or invalid."""
        cached = self.load(kind, key)
        if cached is not None:
            return cached
        tensors = compute()
        self.save(kind, key, tensors, info)
        return tensors
