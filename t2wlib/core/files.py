"""Files written atomically, digests of JSON records, and checked JSON.

Every file t2w writes goes through `atomic_write` (temp file beside it, fsync, rename), so an
interrupted job never leaves a half-written file under its real name; an error while writing names
the path that was asked for, not the temp file. Checked JSON (`write_json_checked` /
`read_json_checked`) is a record with a `checksum` field over its canonical form (generator.json,
the zoo's config, tasks and manifest, calibration.json). Tensor files are in `sealed.py`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from glob import escape as glob_escape
from pathlib import Path

from safetensors import SafetensorError

from .locks import folder_lock


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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_dead_temps(path: Path, suffix: str = ".tmp") -> list[Path]:
    """Delete the temp files of `path` whose writer is dead (killed mid-write): a temp file's name
    carries its writer's pid (`.<name>.<pid>.<anything><suffix>`), so a live writer's is never touched."""
    removed = []
    for tmp in Path(path).parent.glob(f".{glob_escape(Path(path).name)}.*{suffix}"):
        pid = tmp.name[len(Path(path).name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temp file beside `path`, fsync it, then rename it over `path`. The temp
    files a killed writer of the same path left are removed first."""
    path = Path(path)
    if path.is_dir():
        raise WriteError(errno.EISDIR, f"cannot write {path}: it is a directory; give a file name")
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_dead_temps(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
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
    except SafetensorError as err:  # safetensors reports a full disk as its own error, without the path
        Path(tmp).unlink(missing_ok=True)
        raise WriteError(errno.EIO, f"cannot write {path}: {err}") from err
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
