"""A real PostgreSQL server for the tests: initdb in a temp dir, a free port, fsync off."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from flashclaim.runtime.embedded import free_port


def pg_bindir() -> Path:
    found = shutil.which("initdb") or shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not candidates:
        raise RuntimeError("PostgreSQL is needed: apt-get install postgresql (.ci/test does)")
    return Path(candidates[-1]).parent


def _as_postgres_user(owner_of: Path) -> Callable[[], None] | None:
    """initdb refuses to run as root: drop to the postgres user (and give it the dir)."""
    if os.geteuid() != 0:
        return None
    user = pwd.getpwnam("postgres")
    # The folder only: what is inside it the server made as that user (walking it while the
    # server runs met files it was removing).
    os.chown(owner_of, user.pw_uid, user.pw_gid)

    def demote() -> None:
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)

    return demote


class PostgresServer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.bindir = pg_bindir()

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run(
            [str(self.bindir / args[0]), *args[1:]], check=True, capture_output=True,
            preexec_fn=_as_postgres_user(self.root), cwd=self.root,
        )

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.restart()

    def restart(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.root / "pg.log"), "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off",
                  "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
