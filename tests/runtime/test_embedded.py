"""The embedded server: safe configuration, survives restarts, found by data directory."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
import redis
from redis.asyncio import Redis

from flashclaim.checks.audit import audit_campaign
from flashclaim.keys import KeySpace
from flashclaim.runtime.embedded import EmbeddedServer, running_url
from flashclaim.settings import Settings
from flashclaim.store.connection import server_warnings

from helpers import ADMIN_TOKEN, NAMESPACE, app_client, claim, create_campaign, start_server, stats


def test_configuration_is_safe(tmp_path: Path) -> None:
    server = start_server(tmp_path, "valkey")
    try:
        with redis.Redis.from_url(server.url, decode_responses=True) as r:
            config = r.config_get("appendonly", "appendfsync", "maxmemory-policy", "bind")
            assert config == {"appendonly": "yes", "appendfsync": "always",
                              "maxmemory-policy": "noeviction", "bind": "127.0.0.1"}
        with socket.create_connection(("127.0.0.1", server.port)) as anonymous:
            anonymous.sendall(b"PING\r\n")
            assert anonymous.recv(100).startswith(b"-NOAUTH")
        assert (tmp_path / "embedded.json").stat().st_mode & 0o077 == 0
        assert running_url(tmp_path) == server.url
    finally:
        server.stop()
    assert running_url(tmp_path) is None


@pytest.mark.parametrize("how", ["stop", "kill -9"])
async def test_restart_mid_campaign_loses_nothing(tmp_path: Path, how: str) -> None:
    server = start_server(tmp_path, "valkey")
    settings = Settings(redis_url=server.url, admin_token=ADMIN_TOKEN, namespace=NAMESPACE)
    try:
        async with app_client(settings) as client:
            c = await create_campaign(client, stock=10)
            before = [(await claim(client, c["id"], f"u{i}")).json() for i in range(4)]
            server.stop() if how == "stop" else server.kill()
            down = await claim(client, c["id"], "during")
            assert (down.status_code, down.json()["error"]) == (503, "unavailable")
            port = server.port
            server.start()
            assert server.port == port  # same address: clients reconnect by themselves
            after = await claim(client, c["id"], "u9")
            assert after.status_code == 201 and after.json()["seq"] == 5
            for old in before:  # every claim answered 201 is still there
                again = await client.post(f"/v1/campaigns/{c['id']}/claims",
                                          headers={"X-User-Id": old["user_id"]})
                assert again.json()["error"] == "already_claimed"
            assert (await stats(client, c["id"]))["granted"] == 5
        async with Redis.from_url(server.url, decode_responses=True) as r:
            audit = await audit_campaign(r, KeySpace(NAMESPACE), c["id"])
            assert audit.ok and audit.stream_length == 5, audit.violations
    finally:
        server.stop()


def test_a_second_start_adopts_the_running_server(tmp_path: Path) -> None:
    first = start_server(tmp_path, "valkey")
    try:
        second = EmbeddedServer(tmp_path)
        assert second.start() == first.url
        assert second.process is None and second.adopted_pid == first.process.pid  # type: ignore[union-attr]
        second.stop()
        assert first.process is not None and first.process.wait(10) == 0
    finally:
        first.stop()


async def test_warnings_for_a_server_that_evicts_or_does_not_persist(tmp_path: Path) -> None:
    server = start_server(tmp_path, "redis", "appendonly no", "maxmemory-policy allkeys-lru")
    try:
        async with Redis.from_url(server.url, decode_responses=True) as r:
            warnings = await server_warnings(r)
        assert len(warnings) == 2
        assert "allkeys-lru" in warnings[0] and "appendonly" in warnings[1]
        settings = Settings(redis_url=server.url, admin_token=ADMIN_TOKEN)
        async with app_client(settings) as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["warnings"] == warnings
    finally:
        server.stop()


async def test_no_warnings_for_the_embedded_default(client: httpx.AsyncClient) -> None:
    assert (await client.get("/readyz")).json() == {"status": "ready", "warnings": []}
