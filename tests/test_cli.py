"""`flashclaim serve` as a user runs it: embedded server, restart keeps everything."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from flashclaim.embedded import running_url

from helpers import serving


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
    from flashclaim.embedded import EmbeddedServer

    assert isinstance(server, EmbeddedServer)
    with serving(tmp_path, "--redis-url", server.url, "--admin-token", "tok") as base:
        assert not (tmp_path / "embedded.json").exists()  # no embedded server started
        created = httpx.post(base + "/v1/admin/campaigns", headers={"Authorization": "Bearer tok"},
                             json={"name": "x", "stock": 1, "coupons": [{"type": "cash",
                                                                         "value": 1}]})
        assert created.status_code == 201


def test_demo_passes_on_a_small_crowd(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASHCLAIM_")}
    result = subprocess.run(
        [sys.executable, "-m", "flashclaim", "demo", "--stock", "50", "--requests", "900",
         "--users", "300", "--concurrency", "30", "--data-dir", str(tmp_path / "demo")],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "granted             50 of stock 50" in result.stdout
    assert "oversold 0, lost 0, duplicated 0" in result.stdout and "PASS" in result.stdout
    assert running_url(tmp_path / "demo") is None  # everything it started has stopped


def test_two_workers_grant_exactly_the_stock(tmp_path: Path) -> None:
    """serve --workers 2: two processes, one embedded server, the invariants hold."""
    import asyncio

    from redis.asyncio import Redis

    from flashclaim import loadgen
    from flashclaim.audit import audit_campaign
    from flashclaim.keys import KeySpace

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
    from flashclaim.embedded import free_port

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
