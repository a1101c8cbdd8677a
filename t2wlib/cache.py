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


class CorruptArtifactError(ValueError):
    """A checked safetensors file does not match its sidecar (tampered, truncated or mismatched)."""


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
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def key_digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


def sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def save_checked(path: Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Write `path` (safetensors) and its sidecar `path.json` (meta + shapes + sha256), both atomically."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp)))
    record = {
        **meta,
        "shapes": {k: list(v.shape) for k, v in tensors.items()},
        "dtypes": {k: str(v.dtype) for k, v in tensors.items()},
        "sha256": sha256_file(path),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write_text(sidecar(path), json.dumps(record, indent=1))


def load_checked(path: Path, expect: dict | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and sidecar of `path`, verified (checksum, shapes, and the `expect` sidecar fields);
    raises CorruptArtifactError naming the file otherwise."""
    try:
        meta = json.loads(sidecar(path).read_text())
        for field, value in (expect or {}).items():
            if meta.get(field) != json.loads(json.dumps(value)):
                raise CorruptArtifactError(f"{path}: sidecar field {field!r} does not match")
        if sha256_file(path) != meta.get("sha256"):
            raise CorruptArtifactError(f"{path}: checksum does not match its sidecar (corrupted, truncated or tampered)")
        tensors = load_file(path)
    except (OSError, ValueError) as err:  # JSONDecodeError and safetensors errors are ValueErrors
        if isinstance(err, CorruptArtifactError):
            raise
        raise CorruptArtifactError(f"{path}: cannot be read ({type(err).__name__}: {err})") from err
    if {k: list(v.shape) for k, v in tensors.items()} != meta.get("shapes"):
        raise CorruptArtifactError(f"{path}: tensor shapes differ from its sidecar")
    return tensors, meta


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
