"""Faults injected into real servers: the promises hold (docs/reliability.md)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis
from redis.asyncio import Redis

from flashclaim.checks.audit import audit_campaign
from flashclaim.keys import KeySpace
from flashclaim.ledger.db import open_ledger
from flashclaim.ledger.reconcile import ledger_lag, reconcile_campaign
from flashclaim.runtime.embedded import EmbeddedServer, free_port
from flashclaim.settings import Settings
from flashclaim.tools import children

from helpers import (
    ADMIN_TOKEN,
    NAMESPACE,
    app_client,
    claim,
    create_campaign,
    entries,
    start_server,
    sync_campaign,
    sync_grant,
)
from pg import PostgresServer

KS = KeySpace(NAMESPACE)


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """A server of this test's own, to break."""
    server = start_server(tmp_path / "redis", "valkey")
    yield server
    if server.process is not None and server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGCONT)
    server.stop()


def settings_for(url: str, max_in_flight: int = 2000) -> Settings:
    return Settings(redis_url=url, admin_token=ADMIN_TOKEN, namespace=NAMESPACE,
                    max_in_flight=max_in_flight)


async def audit(url: str, campaign_id: str) -> tuple[int, list[str]]:
    async with Redis.from_url(url, decode_responses=True) as r:
        result = await audit_campaign(r, KS, campaign_id)
        claim_ids = [f["claim_id"] for _, f in await entries(r, KS.campaign(campaign_id).stream)]
    assert result.ok, result.violations
    return result.granted, claim_ids


async def test_stalled_redis_answers_503_fast_and_recovers(own_server: EmbeddedServer) -> None:
    async with app_client(settings_for(own_server.url)) as client:
        c = await create_campaign(client)
        assert own_server.process is not None
        os.kill(own_server.process.pid, signal.SIGSTOP)  # a server that never answers
        try:
            # Bounded: one 500 ms timeout, then 503 (wait_for fails the test if it hangs).
            response = await asyncio.wait_for(claim(client, c["id"], "u1"), 2)
            assert (response.status_code, response.json()["error"]) == (503, "unavailable")
            assert response.headers["Retry-After"] == "1"
            assert (await asyncio.wait_for(client.get("/readyz"), 2)).status_code == 503
        finally:
            os.kill(own_server.process.pid, signal.SIGCONT)
        assert (await claim(client, c["id"], "u2")).status_code == 201  # no restart needed
        assert (await client.get("/readyz")).status_code == 200


async def test_behind_a_stalled_call_a_claim_waits_one_timeout_not_a_chain(
    own_server: EmbeddedServer,
) -> None:
    """Claims queued behind a stalled call once waited for its timeout and then their own
    (up to 2.4 s with a 500 ms timeout). Now they share the stalled call's failure."""
    settings = replace(settings_for(own_server.url), redis_timeout_ms=300)
    async with app_client(settings) as client:
        c = await create_campaign(client)
        assert own_server.process is not None
        os.kill(own_server.process.pid, signal.SIGSTOP)
        try:
            async def timed(user: str) -> tuple[int, float]:
                started = time.monotonic()
                response = await claim(client, c["id"], user)
                return response.status_code, time.monotonic() - started

            tasks = []
            for i in range(24):  # a tap every 50 ms for 1.2 s, into a server that never answers
                tasks.append(asyncio.create_task(timed(f"u{i}")))
                await asyncio.sleep(0.05)
            answers = await asyncio.wait_for(asyncio.gather(*tasks), 10)
        finally:
            os.kill(own_server.process.pid, signal.SIGCONT)
        assert {status for status, _ in answers} == {503}
        slowest = max(seconds for _, seconds in answers)
        assert slowest < 0.3 * 1.6, f"a claim waited {slowest:.2f}s for a 0.3 s timeout"


async def test_overload_is_shed_not_queued(own_server: EmbeddedServer) -> None:
    app = app_client(settings_for(own_server.url, max_in_flight=2))
    async with app as client:
        c = await create_campaign(client)
        assert own_server.process is not None
        os.kill(own_server.process.pid, signal.SIGSTOP)
        try:
            stuck = [asyncio.create_task(claim(client, c["id"], f"u{i}")) for i in range(2)]
            endpoint = app.app.endpoint
            assert endpoint is not None  # (the public listener takes claims)
            deadline = time.monotonic() + 2
            while endpoint._in_flight < 2:
                assert time.monotonic() < deadline
                await asyncio.sleep(0)
            shed = await claim(client, c["id"], "u3")
            assert (shed.status_code, shed.json()["error"]) == (503, "unavailable")
            assert "shedding" in shed.json()["message"]
            results = await asyncio.gather(*stuck)
            assert [r.status_code for r in results] == [503, 503]  # timed out, not hung
        finally:
            os.kill(own_server.process.pid, signal.SIGCONT)
        assert (await claim(client, c["id"], "u4")).status_code == 201


async def test_out_of_memory_refuses_whole(own_server: EmbeddedServer) -> None:
    async with app_client(settings_for(own_server.url)) as client:
        c = await create_campaign(client, stock=5)
        assert (await claim(client, c["id"], "u0")).status_code == 201
        r = redis.Redis.from_url(own_server.url)
        used = int(r.info("memory")["used_memory"])
        r.config_set("maxmemory", used // 2)  # firmly out of memory, no eviction
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            r.set("ballast", b"x")
        responses = [await claim(client, c["id"], f"u{i}") for i in range(1, 4)]
        assert [(x.status_code, x.json()["error"]) for x in responses] == [(503, "unavailable")] * 3
        granted, _ = await audit(own_server.url, c["id"])
        assert granted == 1  # nothing half-written: no stock taken without its record
        r.config_set("maxmemory", 0)
        assert (await claim(client, c["id"], "u9")).status_code == 201
        r.close()


class DropFirstScriptReply:
    """A TCP proxy in front of Redis that loses the reply to the first EVALSHA: the script
    ran, the client never heard. What a connection dropped at the wrong moment looks like."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.dropped = False
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> DropFirstScriptReply:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        sent_script = asyncio.Event()

        async def to_server() -> None:
            while data := await client_r.read(65536):
                if b"EVALSHA" in data.upper() and not self.dropped:
                    sent_script.set()
                up_w.write(data)
                await up_w.drain()

        async def to_client() -> None:
            while data := await up_r.read(65536):
                if sent_script.is_set() and not self.dropped:
                    self.dropped = True  # the script's reply: lose it and the connection
                    client_w.close()
                    return
                client_w.write(data)
                await client_w.drain()

        tasks = [asyncio.create_task(to_server()), asyncio.create_task(to_client())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            t.cancel()
        up_w.close()
        client_w.close()


async def test_a_retried_script_call_grants_once(own_server: EmbeddedServer) -> None:
    async with DropFirstScriptReply(own_server.port) as proxy:
        url = f"redis://:{own_server.password}@127.0.0.1:{proxy.port}/0"
        async with app_client(settings_for(url)) as client:
            c = await create_campaign(client)
            response = await claim(client, c["id"], "u1")
            assert proxy.dropped  # the first reply really was lost
            assert response.status_code == 201, response.text  # redis-py retried; dedup held
            again = await claim(client, c["id"], "u1")
            assert again.json()["error"] == "already_claimed"
    granted, claim_ids = await audit(own_server.url, c["id"])
    assert granted == 1 and claim_ids == [response.json()["claim_id"]]


async def test_kill_9_under_load_keeps_every_201(own_server: EmbeddedServer) -> None:
    async with app_client(settings_for(own_server.url)) as client:
        c = await create_campaign(client, stock=600)
        crowd = asyncio.gather(*(claim(client, c["id"], f"u{i}") for i in range(1500)))
        async with Redis.from_url(own_server.url, decode_responses=True) as r:
            deadline = time.monotonic() + 30
            while int(await r.hget(KS.campaign(c["id"]).meta, "granted") or 0) < 50:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.001)
        own_server.kill()  # kill -9 mid-crowd
        responses = await crowd
        own_server.start()
        after = await claim(client, c["id"], "after-restart")
        assert after.status_code == 201  # the service recovered by itself
    answered = {x.json()["claim_id"] for x in responses if x.status_code == 201}
    assert answered and {x.status_code for x in responses} <= {201, 503}
    granted, claim_ids = await audit(own_server.url, c["id"])
    assert answered <= set(claim_ids)  # every claim answered 201 survived the crash
    assert granted <= 600 and granted == len(claim_ids)


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    root = Path(tempfile.mkdtemp(prefix="flashclaim-pg-"))
    server = PostgresServer(root)
    server.start()
    yield server
    if (server.data / "postmaster.pid").exists():  # the test may have left it stopped
        server.stop()
    shutil.rmtree(root, ignore_errors=True)


def test_ledger_database_down_while_claims_go_on(
    server: EmbeddedServer, own_postgres: PostgresServer, tmp_path: Path
) -> None:
    r = redis.Redis.from_url(server.url, decode_responses=True)
    sync_campaign(r, KS, "c1", stock=400)
    env = children.clean_env()
    ledger = subprocess.Popen(
        [sys.executable, "-m", "flashclaim", "ledger", "--redis-url", server.url, "--namespace",
         NAMESPACE, "--ledger-dsn", own_postgres.dsn, "--block-ms", "100"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert sync_grant(r, KS, "c1", [f"a{i}" for i in range(100)]) == 100
        wait_until(lambda: ledger_lag(r, KS.campaign("c1").stream, "ledger") == 0)
        own_postgres.stop()
        assert sync_grant(r, KS, "c1", [f"b{i}" for i in range(150)]) == 150  # claims go on
        own_postgres.restart()
        wait_until(lambda: ledger_lag(r, KS.campaign("c1").stream, "ledger") == 0)
        assert ledger.poll() is None  # it waited; it did not die
        db = open_ledger(own_postgres.dsn, tmp_path)
        rec = reconcile_campaign(r, db, KS, "c1")
        db.close()
        assert rec.ok and rec.ledger_rows == 250, rec.mismatches
    finally:
        ledger.terminate()
        ledger.wait(30)
        r.close()


def wait_until(condition: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


async def test_a_fault_inside_the_redis_client_is_a_lost_connection_not_a_500() -> None:
    """redis-py's cluster client can disconnect a connection another task is writing on
    (its writer is gone): that AttributeError is answered 503 like a lost connection; the
    same error from our own code stays a 500."""
    from redis.asyncio.connection import Connection
    from redis.exceptions import ConnectionError as RedisConnectionError

    from flashclaim.claim.decision import failure_answer
    from flashclaim.store.connection import client_fault

    # A writer torn down under a task that writes (redis-py 8 checks for a missing writer
    # itself; a half-closed one still fails inside the client).
    torn = Connection()
    torn._writer = object()  # type: ignore[assignment]
    try:
        await torn._send_packed_command([b"PING"])
    except AttributeError as exc:
        assert isinstance(client_fault(exc), RedisConnectionError)
        answer = failure_answer(exc)  # what the claim endpoint sends for it
        assert answer is not None and (answer.status, answer.code) == (503, "unavailable")
        assert answer.retry_after == 1
    else:
        raise AssertionError("a connection without a writer wrote")
    finally:
        torn._writer = None  # nothing was opened: nothing to close
    try:
        getattr(torn, "no_such_attribute")  # noqa: B009  (our own code's AttributeError)
    except AttributeError as exc:
        assert client_fault(exc) is None
        assert failure_answer(exc) is None
