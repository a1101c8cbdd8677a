"""On-disk cache of tensors: safetensors files with a JSON sidecar (key, shapes, sha256).

An entry is addressed by a JSON-able key (e.g. dataset, split, backbone, preprocessing). Writes are
atomic (temp file + rename), so an interrupted job never leaves a half-written entry; an entry whose
checksum or key does not match is reported with a `CacheCorruptionWarning` and recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file

log = logging.getLogger(__name__)


class CacheCorruptionWarning(UserWarning):
    """A cache entry failed verification and is being recomputed."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temp file beside `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def key_digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


class TensorCache:
    """A folder of `<kind>/<digest>.safetensors` entries, each with a `.json` sidecar."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def paths(self, kind: str, key: dict) -> tuple[Path, Path]:
        stem = self.root / kind / key_digest(key)
        return stem.with_suffix(".safetensors"), stem.with_suffix(".json")

    def load(self, kind: str, key: dict) -> dict[str, torch.Tensor] | None:
        """The verified entry, or None when absent or failing verification (warned)."""
        data_path, meta_path = self.paths(kind, key)
        if not data_path.exists() and not meta_path.exists():
            return None
        problem = None
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("key") != json.loads(json.dumps(key)):
                problem = "its key does not match"
            elif sha256_file(data_path) != meta.get("sha256"):
                problem = "its checksum does not match (corrupted or truncated)"
            else:
                tensors = load_file(data_path)
                if {k: list(v.shape) for k, v in tensors.items()} != meta.get("shapes"):
                    problem = "its shapes differ from the sidecar"
                else:
                    return tensors
        except (OSError, ValueError, json.JSONDecodeError) as err:
            problem = f"it cannot be read ({type(err).__name__}: {err})"
        msg = f"cache entry {data_path} is invalid: {problem}; recomputing"
        log.warning(msg)
        warnings.warn(msg, CacheCorruptionWarning, stacklevel=2)
        return None

    def save(self, kind: str, key: dict, tensors: dict[str, torch.Tensor], info: dict | None = None) -> None:
        data_path, meta_path = self.paths(kind, key)
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        atomic_write(data_path, lambda tmp: save_file(tensors, str(tmp)))
        meta = {
            "key": key,
            "shapes": {k: list(v.shape) for k, v in tensors.items()},
            "dtypes": {k: str(v.dtype) for k, v in tensors.items()},
            "sha256": sha256_file(data_path),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "info": info or {},
        }
        atomic_write_text(meta_path, json.dumps(meta, indent=1))

    def get_or_compute(self, kind: str, key: dict, compute: Callable[[], dict[str, torch.Tensor]],
                       info: dict | None = None) -> dict[str, torch.Tensor]:
        """The cached entry for `key`, computing and storing it first when missing or invalid."""
        cached = self.load(kind, key)
        if cached is not None:
            return cached
        tensors = compute()
        self.save(kind, key, tensors, info)
        return tensors
