"""Two locks on folders, for two different needs.

- `folder_lock`: a short exclusive lock on a folder itself (no lock file left behind) around a
  read-modify-write of a file that processes running side by side share (provenance.json);
- `FolderLock`: one writer per folder for a whole job, on `<folder>/.lock`: a second trainer on the
  same generator folder is refused at once (`FolderBusyError`); a second zoo build or `t2w run` on the
  same folder waits for the first."""

from __future__ import annotations

import contextlib
import errno
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
    dies, so a SIGKILLed job never leaves a stale lock behind. With wait=False a held lock is a
    FolderBusyError at once; with wait=True the caller says once that it waits (on stderr), then blocks
    until the holder is done: a second `t2w run` on one artifacts folder runs after the first, and
    finds its work done."""

    def __init__(self, directory: Path, what: str, wait: bool = False):
        self.path, self.what, self.wait, self._file = Path(directory) / ".lock", what, wait, None

    def __enter__(self) -> FolderLock:
        import fcntl
        import sys

        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._file = open(self.path, "a")
        except OSError as err:
            if err.errno in (errno.EROFS, errno.EACCES) and self.wait:
                return self  # a folder nobody can write here needs no writer's lock (a finished zoo read again)
            raise
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not self.wait:
                self._file.close()
                raise FolderBusyError(f"{self.path.parent} is in use by another {self.what} (lock {self.path}); "
                                      "wait for it to finish or use another folder") from None
            print(f"[t2w] {self.path.parent} is in use by another {self.what}; waiting for it to finish",
                  file=sys.stderr, flush=True)
            fcntl.flock(self._file, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor releases the flock
