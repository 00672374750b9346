"""flashclaim commands as child processes: start, wait until ready, stop gracefully.
(Used by the demo, the benchmark and the tests.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from flashclaim.runtime.embedded import free_port
from flashclaim.runtime.lifeline import die_with_parent
from flashclaim.runtime.private_files import open_private_log


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any FLASHCLAIM_ setting, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASHCLAIM_")}
    env.update(settings)
    return env


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`flashclaim <args>`, its output appended to `log`."""
    with open_private_log(log) as out:
        return subprocess.Popen([sys.executable, "-m", "flashclaim", *args], env=env,
                                stdout=out, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Poll GET /readyz until it answers 200 (or the process dies, or the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the service exited during start-up ({proc.returncode})")
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the service did not become ready")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@contextmanager
def serving(data_dir: Path, *args: str, redis_url: str | None = None,
            env: dict[str, str] | None = None) -> Iterator[str]:
    """`flashclaim serve` on a free port with this data directory (and the embedded server,
    or `redis_url`; `env` adds settings), until the block ends: its base URL."""
    port = free_port()
    log_path = data_dir.parent / f"serve-{port}.log"
    env = clean_env(**({"FLASHCLAIM_REDIS_URL": redis_url} if redis_url else {}), **(env or {}))
    proc = start(["serve", "--port", str(port), "--data-dir", str(data_dir), *args], env,
                 log_path)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)
        yield base
    finally:
        if stop(proc) != 0:
            raise RuntimeError(f"serve did not stop cleanly: {log_path.read_text()[-2000:]}")
