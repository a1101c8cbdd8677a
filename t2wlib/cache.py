"""Files that are written atomically and verified when read back.

Three mechanisms, one per kind of file:
- the tensor cache and the zoo: safetensors files with a JSON sidecar (key, shapes, sha256). An
  entry is addressed by a JSON-able key (e.g. dataset, split, backbone, preprocessing); an entry whose
  checksum or key does not match is reported with a `CacheCorruptionWarning` and recomputed;
- sealed safetensors (`save_sealed` / `load_sealed`): one self-verifying file, its digest over every
  tensor and the metadata stored in its own header (classifier files, generator checkpoints, EMA
  weights, tokenizers), so there is no second file to fall out of step with;
- checked JSON (`write_json_checked` / `read_json_checked`): a record with a `checksum` field over
  its canonical form (generator.json, the zoo's config, tasks and manifest).

Writes are atomic (temp file, fsync, rename), so an interrupted job never leaves a half-written
file; an error while writing names the path that was asked for, not the temp file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path
from collections.abc import Callable

import torch
from safetensors import safe_open
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


class WriteError(OSError):
    """A file could not be written; the message names the path asked for and the reason."""


TEMP_GLOB = ".*.tmp"  # what atomic_write leaves behind when its process is killed mid-write


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temp file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    if path.is_dir():
        raise WriteError(errno.EISDIR, f"cannot write {path}: it is a directory; give a file name")
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        write(Path(tmp))
        with open(tmp, "rb+") as f:  # durable before it becomes visible under its name
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except OSError as err:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, WriteError):
            raise
        raise WriteError(err.errno, f"cannot write {path}: {err.strerror or err}") from err
    except BaseException:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temps(directory: Path) -> list[Path]:
    """Delete the temp files a killed atomic_write left in `directory`; call it only while holding
    the folder (e.g. under a trainer's lock), as a live writer's temp file looks the same."""
    stale = sorted(Path(directory).glob(TEMP_GLOB))
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


@contextlib.contextmanager
def folder_lock(directory: Path):
    """Hold an exclusive lock on `directory` (made if absent) for a read-modify-write of a file in it
    that other processes may do at the same time: notebooks run side by side write one
    provenance.json. The lock is on the folder itself, so no lock file is left behind. POSIX only;
    elsewhere (no fcntl) a no-op."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def update_json_entry(path: Path, key: str, record: dict, sort_keys: bool = False) -> None:
    """Set `key` of the JSON object in `path` (a new file if absent) to `record`, atomically and
    under `folder_lock`: the benchmarks keep one entry per case or dataset in one results file, and
    a figures folder one provenance entry per output."""
    path = Path(path)
    with folder_lock(path.parent):
        entries = json.loads(path.read_text()) if path.exists() else {}
        entries[key] = record
        atomic_write_text(path, json.dumps(entries, indent=1, sort_keys=sort_keys))


def canonical_json(value) -> str:
    """The one JSON text of a JSON-able value (sorted keys, tuples as lists): what digests hash."""
    return json.dumps(json.loads(json.dumps(value)), sort_keys=True, separators=(",", ":"))


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


# --- checked JSON ---------------------------------------------------------------------------------
CHECKSUM = "checksum"


def _json_digest(record: dict) -> str:
    return hashlib.sha256(canonical_json(record).encode()).hexdigest()


def write_json_checked(path: Path, record: dict) -> None:
    """Write `record` as JSON with a `checksum` field over its canonical form, atomically."""
    record = json.loads(json.dumps(record))
    atomic_write_text(Path(path), json.dumps({**record, CHECKSUM: _json_digest(record)}, indent=1))


def read_json_checked(path: Path, what: str) -> dict:
    """The record of a checked JSON file, verified; CorruptArtifactError names the file otherwise."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CorruptArtifactError(f"{what} {path} is not readable JSON ({err}); it was truncated or edited") from err
    if not isinstance(record, dict) or CHECKSUM not in record:
        raise CorruptArtifactError(f"{what} {path} carries no t2w checksum: it was not written by t2w "
                                   "(or by an older version)")
    checksum = record.pop(CHECKSUM)
    if _json_digest(record) != checksum:
        raise CorruptArtifactError(f"{what} {path} fails its checksum: it was edited or corrupted; rebuild it")
    return record


def write_json_once(path: Path, record: dict, what: str) -> None:
    """Write `record` as checked JSON, or verify that the file already holds the same record: a
    folder keeps one definition (no mixed zoos or generators)."""
    path = Path(path)
    if path.exists():
        if read_json_checked(path, what) != json.loads(json.dumps(record)):
            raise ValueError(f"{path} holds a different {what}; use a new folder or delete this one")
    else:
        write_json_checked(path, record)


# --- one writer per folder ------------------------------------------------------------------------
class FolderBusyError(ValueError):
    """Another process holds the folder (a second trainer on the same generator folder)."""


class FolderLock:
    """An exclusive advisory lock on `<directory>/.lock` (flock): the kernel drops it when its holder
    dies, so a SIGKILLed job never leaves a stale lock behind."""

    def __init__(self, directory: Path, what: str):
        self.path, self.what, self._file = Path(directory) / ".lock", what, None

    def __enter__(self) -> FolderLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise FolderBusyError(f"{self.path.parent} is in use by another {self.what} (lock {self.path}); "
                                  "wait for it to finish or use another folder") from None
        return self

    def __exit__(self, *exc) -> None:
        self._file.close()  # closing the descriptor releases the flock
