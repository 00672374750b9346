"""`flashclaim serve` as a user runs it: embedded server, restart keeps everything."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from flashclaim import __version__
from flashclaim.cli import build_parser
from flashclaim.runtime.embedded import free_port, running_url
from flashclaim.tools import children
from flashclaim.tools.children import serving


def test_serve_restart_keeps_campaigns_and_claims(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with serving(data_dir) as base:
        token = (data_dir / "admin-token").read_text().strip()
        admin = {"Authorization": f"Bearer {token}"}
        created = httpx.post(base + "/v1/admin/campaigns", headers=admin, json={
            "id": "d11", "name": "Double 11", "stock": 2,
            "coupons": [{"type": "cash", "value": 500}]})
        assert created.status_code == 201
        first = httpx.post(base + "/v1/campaigns/d11/claims", headers={"X-User-Id": "alice"})
        assert first.status_code == 201
        assert running_url(data_dir) is not None
    assert running_url(data_dir) is None  # serve stopped its embedded server on SIGTERM

    with serving(data_dir) as base:
        campaign = httpx.get(base + "/v1/admin/campaigns/d11", headers=admin).json()
        assert campaign["stats"]["granted"] == 1 and campaign["remaining"] == 1
        again = httpx.post(base + "/v1/campaigns/d11/claims", headers={"X-User-Id": "alice"})
        assert again.json()["error"] == "already_claimed"
        second = httpx.post(base + "/v1/campaigns/d11/claims", headers={"X-User-Id": "bob"})
        assert second.status_code == 201 and second.json()["seq"] == 2
        sold = httpx.post(base + "/v1/campaigns/d11/claims", headers={"X-User-Id": "carol"})
        assert sold.status_code == 410


def test_serve_with_an_external_redis(tmp_path: Path, server: object) -> None:
    from flashclaim.runtime.embedded import EmbeddedServer

    assert isinstance(server, EmbeddedServer)
    with serving(tmp_path, "--redis-url", server.url, "--admin-token", "tok") as base:
        assert not (tmp_path / "embedded.json").exists()  # no embedded server started
        created = httpx.post(base + "/v1/admin/campaigns", headers={"Authorization": "Bearer tok"},
                             json={"name": "x", "stock": 1, "coupons": [{"type": "cash",
                                                                         "value": 1}]})
        assert created.status_code == 201


def test_demo_passes_on_a_small_crowd(tmp_path: Path) -> None:
    env = children.clean_env()
    result = subprocess.run(
        [sys.executable, "-m", "flashclaim", "demo", "--stock", "50", "--requests", "900",
         "--users", "300", "--concurrency", "30", "--data-dir", str(tmp_path / "demo")],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "granted             50 of stock 50" in result.stdout
    assert "oversold 0, lost 0, duplicated 0" in result.stdout and "PASS" in result.stdout
    assert running_url(tmp_path / "demo") is None  # everything it started has stopped


def test_demo_keep_leaves_the_pages_up_until_interrupted(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "flashclaim", "demo", "--stock", "20", "--requests", "200",
         "--users", "100", "--concurrency", "10", "--data-dir", str(tmp_path / "demo"),
         "--keep"], env=children.clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    assert proc.stdout is not None
    urls: dict[str, str] = {}
    deadline = time.monotonic() + 120
    for line in proc.stdout:  # until the demo says where its pages are
        if "coupon centre:" in line or "operator dashboard:" in line:
            name, _, rest = line.partition(":")
            urls[name.strip()] = rest.split()[0]
        if len(urls) == 2 or time.monotonic() > deadline:
            break
    try:
        assert set(urls) == {"coupon centre", "operator dashboard"}, urls
        centre = httpx.get(urls["coupon centre"])
        dashboard = httpx.get(urls["operator dashboard"])
        assert centre.status_code == dashboard.status_code == 200
        assert "Coupon centre" in centre.text and "Operator dashboard" in dashboard.text
        assert proc.poll() is None  # still up after its verdict
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out  # the verdict's code: PASS
    assert running_url(tmp_path / "demo") is None  # and then everything stopped


def test_two_workers_grant_exactly_the_stock(tmp_path: Path) -> None:
    """serve --workers 2: two processes, one embedded server, the invariants hold."""
    import asyncio

    from redis.asyncio import Redis

    from flashclaim.checks.audit import audit_campaign
    from flashclaim.keys import KeySpace
    from flashclaim.tools import loadgen

    data_dir = tmp_path / "data"
    with serving(data_dir, "--workers", "2", "--admin-token", "tok") as base:
        created = httpx.post(base + "/v1/admin/campaigns", headers={"Authorization": "Bearer tok"},
                             json={"id": "w2", "name": "two workers", "stock": 300,
                                   "per_user_limit": 2,
                                   "coupons": [{"type": "cash", "value": 1}]})
        assert created.status_code == 201
        taps = [loadgen.Request("POST", "/v1/campaigns/w2/claims", (("X-User-Id", f"u{i % 900}"),))
                for i in range(2700)]
        statuses: list[int] = []
        port = int(base.rsplit(":", 1)[1])
        asyncio.run(loadgen.run("127.0.0.1", port, taps, 100,
                                lambda r: statuses.append(r.status)))
        url = running_url(data_dir)
        assert url is not None

        async def audit() -> None:
            async with Redis.from_url(url, decode_responses=True) as r:
                result = await audit_campaign(r, KeySpace("fc"), "w2")
            assert result.ok and result.granted == 300, result.violations

        asyncio.run(audit())
    assert statuses.count(201) == 300
    assert set(statuses) <= {201, 409, 410, 429}
    log = (tmp_path / f"serve-{port}.log").read_text()
    assert log.count("Started server process") == 2  # two workers served the crowd


def test_admin_api_on_its_own_port(tmp_path: Path) -> None:
    from flashclaim.runtime.embedded import free_port

    admin_port = free_port()
    admin = f"http://127.0.0.1:{admin_port}"
    auth = {"Authorization": "Bearer tok"}
    with serving(tmp_path / "data", "--admin-token", "tok", "--admin-port", str(admin_port)) \
            as public:
        deadline = time.monotonic() + 30
        while True:  # the admin listener is a second process: poll until it answers
            try:
                if httpx.get(admin + "/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.05)
        body = {"id": "sep", "name": "x", "stock": 1, "coupons": [{"type": "cash", "value": 1}]}
        hidden = httpx.post(public + "/v1/admin/campaigns", headers=auth, json=body)
        assert hidden.status_code == 404  # not even there on the public port
        assert httpx.post(admin + "/v1/admin/campaigns", headers=auth, json=body).status_code == 201
        assert httpx.post(public + "/v1/campaigns/sep/claims",
                          headers={"X-User-Id": "u"}).status_code == 201
        assert httpx.post(admin + "/v1/campaigns/sep/claims",
                          headers={"X-User-Id": "v"}).status_code == 404
        stats = httpx.get(admin + "/v1/admin/campaigns/sep", headers=auth).json()["stats"]
        assert stats["granted"] == 1


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flashclaim", *args], cwd=cwd,
                          env=children.clean_env(**(env or {})), capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize(("args", "env", "named"), [
    (["ledger"], {"FLASHCLAIM_LEDGER_DSN": "mysql://x/y"}, "FLASHCLAIM_LEDGER_DSN"),
    (["reconcile"], {"FLASHCLAIM_REDIS_URL": "http://x"}, "FLASHCLAIM_REDIS_URL"),
    (["serve"], {"FLASHCLAIM_ADMIN_PORT": "abc"}, "FLASHCLAIM_ADMIN_PORT"),
    (["serve", "--port", "0"], {}, "--port"),
    (["demo", "--stock", "0"], {}, "--stock"),
    (["demo", "--concurrency", "0"], {}, "--concurrency"),
    (["demo", "--requests", "100", "--users", "1000"], {}, "--requests"),
    (["demo", "--users", "many"], {}, "--users"),
], ids=lambda x: " ".join(x) if isinstance(x, list) else None)
def test_a_bad_flag_or_setting_is_one_line_and_exit_2(
    tmp_path: Path, args: list[str], env: dict[str, str], named: str
) -> None:
    result = run_cli(*args, env={"FLASHCLAIM_DATA_DIR": str(tmp_path / "data"), **env})
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], result.stderr
    assert not (tmp_path / "data" / "embedded.json").exists()  # nothing was started


def test_the_demo_runs_again_on_the_same_data_dir(tmp_path: Path) -> None:
    for _ in range(2):
        result = run_cli("demo", "--stock", "20", "--requests", "300", "--users", "100",
                         "--concurrency", "20", "--data-dir", str(tmp_path / "demo"), timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "PASS" in result.stdout


def test_version_and_defaults_in_help() -> None:
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"flashclaim {__version__}"
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        text = " ".join(sub.format_help().split())
        assert "(default: None)" not in text, name
        for action in sub._actions:
            if action.dest == "help":
                continue
            assert action.help, f"flashclaim {name} {action.dest} has no help"
            if action.default not in (None, False):
                assert f"{action.help} (default: {action.default})" in text, (name, action.dest)


def test_the_admin_token_is_announced_only_when_generated(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    for _ in range(2):
        with serving(data_dir):
            pass
    logs = "".join(p.read_text() for p in tmp_path.glob("serve-*.log"))
    assert logs.count("admin token generated") == 1


@pytest.mark.parametrize("waiting_for", ["redis", "database"])
def test_the_ledger_waits_out_an_outage_and_stops_cleanly(
    tmp_path: Path, server: object, waiting_for: str
) -> None:
    """Started while Redis (or its database) is down: it waits with a warning, and SIGTERM
    ends it with exit 0, no traceback."""
    from flashclaim.runtime.embedded import EmbeddedServer

    assert isinstance(server, EmbeddedServer)
    down = free_port()
    redis_url = f"redis://127.0.0.1:{down}/0" if waiting_for == "redis" else server.url
    dsn = (f"sqlite:///{tmp_path}/l.db" if waiting_for == "redis"
           else f"postgresql://nobody@127.0.0.1:{down}/ledger")
    log = tmp_path / "ledger.log"
    proc = children.start(["ledger", "--redis-url", redis_url, "--ledger-dsn", dsn,
                           "--namespace", "t", "--block-ms", "100"], children.clean_env(), log)
    try:
        deadline = time.monotonic() + 30
        while "unavailable" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        code = children.stop(proc)
    text = log.read_text()
    assert code == 0, text
    assert "Traceback" not in text
    assert text.count("unavailable") == 1  # one warning, not one per retry


def assert_one_line_exit_2(result: subprocess.CompletedProcess[str], says: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and says in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_a_users_file_that_cannot_be_read_is_one_line_and_exit_2(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9\n".encode("latin-1"))
    url = "redis://127.0.0.1:1"
    for path, says in ((tmp_path / "missing.txt", "No such file"), (tmp_path, "directory"),
                       (latin1, "not UTF-8")):
        result = run_cli("grant", "c1", "--users-file", str(path), "--redis-url", url)
        assert_one_line_exit_2(result, says)


def test_a_tab_separates_a_user_from_its_tags(tmp_path: Path) -> None:
    from flashclaim.tools.grant_file import read_users

    users = tmp_path / "users.txt"
    users.write_text("alice\tvip,new\nbob   new\ncarol\n")
    assert [(u.user_id, u.tags) for u in read_users(users)] == [
        ("alice", ("vip", "new")), ("bob", ("new",)), ("carol", ())]


def test_commands_say_in_one_line_when_redis_is_unreachable(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}"  # nothing listens there
    (tmp_path / "ledger.sqlite3").touch()
    for args in (("reconcile",), ("report", "c1"), ("grant", "c1", "--users-file",
                                                    str(tmp_path / "ledger.sqlite3"))):
        result = run_cli(*args, "--redis-url", url, "--data-dir", str(tmp_path))
        if args[0] == "grant":  # an empty file is refused before Redis is asked
            assert_one_line_exit_2(result, "no users")
            continue
        assert_one_line_exit_2(result, "Redis is unreachable")


def test_expiring_without_a_ledger_says_so_and_creates_nothing(tmp_path: Path) -> None:
    result = run_cli("expiring", cwd=tmp_path)
    assert_one_line_exit_2(result, "no ledger at")
    assert list(tmp_path.iterdir()) == []  # no data dir, no empty ledger
