"""Tensor files that verify themselves when read back.

- sidecar-checked safetensors (`save_checked` / `load_checked`): the tensor cache and the zoo's
  shards, each with a JSON sidecar (key, shapes, sha256);
- sealed safetensors (`save_sealed` / `load_sealed`): one self-verifying file, its digest over every
  tensor and the metadata stored in its own header (classifier files, generator checkpoints, EMA
  weights, tokenizers), so there is no second file to fall out of step with.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from .files import CorruptArtifactError, atomic_write, atomic_write_text, canonical_json, sha256_file


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


# --- sealed safetensors ---------------------------------------------------------------------------
SEAL = "t2w_seal"


def _seal(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    h = hashlib.sha256(canonical_json(metadata).encode())
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(canonical_json([name, str(t.dtype), list(t.shape)]).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over the names, dtypes, shapes and bytes of `tensors`: a cache key for tensor inputs."""
    return _seal(tensors, {})


def save_sealed(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write one safetensors file whose header carries a digest of its tensors and metadata."""
    if SEAL in metadata:
        raise ValueError(f"metadata key {SEAL!r} is reserved")
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    sealed = {**metadata, SEAL: _seal(tensors, metadata)}
    atomic_write(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata=sealed))


def load_sealed(path: Path, what: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a sealed file, verified; CorruptArtifactError names the file otherwise.
    `what` says what the file should be, for the message (e.g. "classifier file")."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    if path.is_dir():
        raise CorruptArtifactError(f"{what} expected, got a directory: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except OSError as err:
        raise CorruptArtifactError(f"cannot read {what} {path}: {err.strerror or err}") from err
    except Exception as err:  # safetensors raises its own SafetensorError on a truncated or foreign file
        raise CorruptArtifactError(f"{what} {path} is truncated or not a safetensors file ({err}); "
                                   "write it again") from err
    seal = metadata.pop(SEAL, None)
    if seal is None:
        raise CorruptArtifactError(f"{what} {path} carries no t2w checksum: it was not written by t2w "
                                   "(or by an older version); write it again")
    if _seal(tensors, metadata) != seal:
        raise CorruptArtifactError(f"{what} {path} fails its checksum: it was corrupted or edited; write it again")
    return tensors, metadata
