"""Two locks on folders, for two different needs.

- `folder_lock`: a short exclusive lock on a folder itself (no lock file left behind) around a
  read-modify-write of a file that processes running side by side share (provenance.json);
- `FolderLock`: one writer per folder for a whole job, on `<folder>/.lock` (a second trainer on the
  same generator folder is refused at once, with `FolderBusyError`)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


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
