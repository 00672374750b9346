"""Files and folders only their owner can read, private from the moment they exist.

The embedded server's config holds its password; the state file and the admin
token too; the AOF and the SQLite ledger hold every claim. Each is created with
its final mode (os.open / mkdir with a mode), never made private afterwards.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO


def private_dir(path: Path) -> Path:
    """Create `path` and its missing parents as 0700 (mkdir -p would give the parents the
    default mode); folders that exist are left as they are."""
    missing = []
    folder = path
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for new in reversed(missing):
        new.mkdir(mode=0o700, exist_ok=True)
    return path


def write_private(path: Path, text: str, *, exclusive: bool = False) -> None:
    """Write `text` to a 0600 file, replacing it whole (written beside it, then renamed over
    it: a reader sees the old content or the new, never an empty file); with `exclusive`,
    only create it (FileExistsError if it exists: of two racing writers, one wins)."""
    if exclusive:
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(text)
        return
    staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with os.fdopen(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(text)
    os.replace(staged, path)


def touch_private(path: Path) -> None:
    """Create an empty 0600 file if none exists (before another library opens it)."""
    with contextlib.suppress(FileExistsError):
        write_private(path, "", exclusive=True)


def open_private_log(path: Path) -> BinaryIO:
    """A log to append to, created 0600 (a server's or a child's log may name users)."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
