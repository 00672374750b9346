"""One `serve` per data directory: an exclusive lock file that names its owner.

The lock is an flock on `<data dir>/serve.lock`, held for the life of the `serve`
process (the kernel drops it when the process dies, however it dies). So a
second `serve` on a live data directory refuses to start and touches nothing;
and an embedded server found running with the lock free was left by a dead
owner, and only then may it be adopted.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from flashclaim.runtime.private_files import private_dir

LOCK_FILE = "serve.lock"


class DataDirBusy(RuntimeError):
    """Another live process owns this data directory."""


class OwnerLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise DataDirBusy naming the owner's pid."""
        private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # not inherited by children
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DataDirBusy(
                f"another flashclaim serve (pid {owner}) is running on data dir "
                f"{self.path.parent}; stop it, or use another --data-dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None
