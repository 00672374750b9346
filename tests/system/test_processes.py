"""The processes around the service: one owner per data directory, a supervised
embedded server, children that die with their parent, private files, a demo that
cleans up after a signal."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from flashclaim.ledger.db import open_ledger
from flashclaim.runtime.embedded import EmbeddedServer, free_port
from flashclaim.runtime.owner_lock import DataDirBusy, OwnerLock
from flashclaim.runtime.private_files import write_private
from flashclaim.tools import children

from helpers import server_binary


def wait_until(check: Callable[[], bool], timeout: float = 20, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = {int(k) for k in (task / "children").read_text().split()}
            except FileNotFoundError:
                continue
            todo += list(kids - found)
            found |= kids
    return found


@contextmanager
def serving(data_dir: Path, *args: str, log_name: str = "serve.log"
            ) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    log = data_dir.parent / log_name
    proc = children.start(["serve", "--port", str(port), "--data-dir", str(data_dir), *args],
                          children.clean_env(), log)
    base = f"http://127.0.0.1:{port}"
    try:
        children.wait_ready(base, proc)
        yield base, proc
    finally:
        if proc.poll() is None:
            children.stop(proc)


def embedded_pid(data_dir: Path) -> int:
    pid: int = json.loads((data_dir / "embedded.json").read_text())["pid"]
    return pid


def test_a_second_serve_on_a_live_data_dir_refuses_and_touches_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with serving(data) as (base, _):
        state_before = (data / "embedded.json").read_text()
        second = subprocess.run(
            [sys.executable, "-m", "flashclaim", "serve", "--port", str(free_port()),
             "--data-dir", str(data)], env=children.clean_env(), capture_output=True,
            text=True, timeout=60)
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "another flashclaim serve" in lines[0], second.stderr
        assert (data / "embedded.json").read_text() == state_before
        # The first one still serves: its Valkey was neither adopted nor stopped.
        assert httpx.get(base + "/readyz").status_code == 200


def test_the_owner_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    first = OwnerLock(tmp_path)
    first.acquire()
    with pytest.raises(DataDirBusy, match=str(os.getpid())):
        OwnerLock(tmp_path).acquire()
    first.release()
    OwnerLock(tmp_path).acquire()  # free again


def test_a_killed_embedded_server_is_restarted(tmp_path: Path) -> None:
    data = tmp_path / "data"
    admin = {"Authorization": "Bearer t"}
    with serving(data, "--admin-token", "t") as (base, _):
        created = httpx.post(base + "/v1/admin/campaigns", headers=admin, json={
            "id": "c", "name": "c", "stock": 5, "coupons": [{"type": "cash", "value": 1}]})
        assert created.status_code == 201
        assert httpx.post(base + "/v1/campaigns/c/claims",
                          headers={"X-User-Id": "u1"}).status_code == 201
        old = embedded_pid(data)
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: not alive(old), what="the server to die")
        wait_until(lambda: embedded_pid(data) != old and
                   httpx.get(base + "/readyz").status_code == 200, what="the restart")
        # the same data: the grant before the kill is there, and claims go on
        body = httpx.get(base + "/v1/admin/campaigns/c", headers=admin).json()
        assert body["stats"]["granted"] == 1
        assert httpx.post(base + "/v1/campaigns/c/claims",
                          headers={"X-User-Id": "u2"}).status_code == 201
    assert "restarting it" in (tmp_path / "serve.log").read_text()


@pytest.mark.parametrize("mode", ["workers", "admin listener"])
def test_sigkill_of_serve_takes_every_child_with_it(tmp_path: Path, mode: str) -> None:
    extra = ["--workers", "2"] if mode == "workers" else ["--admin-port", str(free_port())]
    data = tmp_path / "data"
    with serving(data, *extra) as (base, proc):
        before = descendants(proc.pid)
        # a quote starts the quote worker, a process of the service's own (in each worker)
        quote = httpx.post(base + "/v1/me/quote", headers={"X-User-Id": "u"}, json={
            "channel": "app", "items": [{"sku": "a", "unit_price": 100, "quantity": 1}]})
        assert quote.status_code == 200, quote.text
        kids = descendants(proc.pid)
        assert len(kids) > len(before) >= 2  # the embedded server, a worker or the admin
        # listener, and now the quote worker
        proc.kill()
        proc.wait()
        wait_until(lambda: not any(alive(k) for k in kids), what="every child to die")
    # A restart meets no stale listener or server: it starts, adopting nothing.
    with serving(data, *extra, log_name="again.log") as (base, _):
        assert httpx.get(base + "/readyz").status_code == 200


def test_secrets_and_data_are_private_from_the_start(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Made private when created, not chmod-ed afterwards (chmod is disabled here)."""
    monkeypatch.setattr(os, "chmod", lambda *a, **k: None)
    monkeypatch.setattr(Path, "chmod", lambda *a, **k: None)
    old_umask = os.umask(0o022)
    try:
        server = EmbeddedServer(tmp_path / "data", binary=server_binary("valkey"))
        server.start()
        server.stop()
        ledger = open_ledger(None, tmp_path / "data")
        ledger.migrate()
        ledger.close()
        write_private(tmp_path / "token", "secret")
    finally:
        os.umask(old_umask)
    data = tmp_path / "data"
    children.start(["--version"], children.clean_env(), tmp_path / "child.log").wait(30)
    for path, mode in [(data / "redis.conf", 0o600), (data / "embedded.json", 0o600),
                       (data / "redis", 0o700), (data, 0o700), (data / "ledger.sqlite3", 0o600),
                       (tmp_path / "token", 0o600), (data / "redis.log", 0o600),
                       (tmp_path / "child.log", 0o600)]:
        assert stat.S_IMODE(path.stat().st_mode) == mode, path


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_demo_cleanly(sig: signal.Signals, code: int) -> None:
    demo = subprocess.Popen(
        [sys.executable, "-m", "flashclaim", "demo", "--requests", "400000", "--users", "1000",
         "--concurrency", "20"], env=children.clean_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        assert demo.stdout is not None
        first = demo.stdout.readline()  # "flashclaim demo: data in <dir>, service on <url>"
        data_dir = Path(first.split(" data in ", 1)[1].split(",", 1)[0])
        url = first.rsplit(" ", 1)[1].strip()
        second = demo.stdout.readline()  # the campaign line: the crowd is starting
        assert "campaign" in second
        kids = descendants(demo.pid)
        assert kids and httpx.get(url + "/readyz").status_code == 200
        demo.send_signal(sig)
        _, err = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == code
    assert "Traceback" not in err, err
    assert not data_dir.exists()
    wait_until(lambda: not any(alive(k) for k in kids), what="the demo's children to stop")


def as_background_job() -> None:
    """What a non-interactive shell does to a job it starts with `&`: SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_a_demo_started_with_an_ampersand_stops_on_sigterm() -> None:
    demo = subprocess.Popen(
        [sys.executable, "-m", "flashclaim", "demo", "--requests", "400000", "--users", "1000",
         "--concurrency", "20"], env=children.clean_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, preexec_fn=as_background_job)
    try:
        assert demo.stdout is not None
        first = demo.stdout.readline()
        data_dir = Path(first.split(" data in ", 1)[1].split(",", 1)[0])
        assert "campaign" in demo.stdout.readline()  # the crowd is starting
        kids = descendants(demo.pid)
        demo.send_signal(signal.SIGTERM)
        _, err = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 143, err
    assert "Traceback" not in err, err
    assert not data_dir.exists()
    wait_until(lambda: not any(alive(k) for k in kids), what="the demo's children to stop")


def test_demo_keep_stops_on_sigterm_and_removes_its_temp_dir() -> None:
    demo = subprocess.Popen(
        [sys.executable, "-m", "flashclaim", "demo", "--stock", "20", "--requests", "200",
         "--users", "100", "--concurrency", "10", "--keep"], env=children.clean_env(),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=as_background_job)
    try:
        assert demo.stdout is not None
        first = demo.stdout.readline()
        data_dir = Path(first.split(" data in ", 1)[1].split(",", 1)[0])
        for line in demo.stdout:  # until it says the stack keeps running
            if "operator dashboard:" in line:
                break
        kids = descendants(demo.pid)
        assert kids and data_dir.exists()
        demo.send_signal(signal.SIGTERM)
        out, _ = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 0, out  # the verdict's code: PASS
    assert "Traceback" not in out, out
    assert not data_dir.exists()
    wait_until(lambda: not any(alive(k) for k in kids), what="the demo's children to stop")


def test_a_rewritten_state_file_is_never_seen_empty(tmp_path: Path) -> None:
    """embedded.json is read by other commands while serve rewrites it (a restarted server):
    a reader sees the old content or the new, never a truncated file."""
    import threading

    state = tmp_path / "embedded.json"
    write_private(state, '{"pid": 0}')
    seen: list[str] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.append(state.read_text())

    reader = threading.Thread(target=read)
    reader.start()
    for pid in range(2000):
        write_private(state, json.dumps({"pid": pid}))
    done.set()
    reader.join()
    assert seen and all(json.loads(text)["pid"] >= 0 for text in seen)
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
