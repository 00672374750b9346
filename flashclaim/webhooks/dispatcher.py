"""`flashclaim webhooks`: deliver the outbox to every endpoint, at least once, in order.

Two jobs, each under a lease so any number of dispatchers can run (one does each job):

- **Fan-out** reads the outbox with the consumer group "webhooks" and appends each event to
  the queue of every endpoint that wants it, then acknowledges it. A crash between the two
  appends again: the same event (same id) twice in a queue.
- **One lane per endpoint** delivers its queue's head, then the next: an endpoint receives
  its events in the outbox's order. A failure (no connection, a timeout, any status but
  2xx) is retried after 1 s, 2 s, 4 s, ... (at most an hour apart, each with +-50 % jitter)
  for a day from the first attempt, then the event goes to the endpoint's dead letters and
  the lane goes on. The head's retry state is kept in Redis, so a restart resumes the
  schedule. A slow or dead endpoint holds only its own lane: no other endpoint, no claim.

Every attempt is logged (the endpoint's deliveries, the newest 1,000). The outbox is trimmed
once every event of it was fanned out and it is older than OUTBOX_KEPT_MS (replays reach
that far back).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from redis.asyncio import Redis

from flashclaim.keys import KeySpace
from flashclaim.outbox import OutEvent, OutEventError
from flashclaim.store.connection import stream_rows, text
from flashclaim.store.scripts import Scripts
from flashclaim.webhooks.endpoints import (
    DELIVERIES_KEPT,
    OUTBOX_GROUP,
    Endpoint,
    EndpointStore,
    ensure_group,
    queued,
)
from flashclaim.webhooks.signature import HEADER, sign

log = logging.getLogger("flashclaim.webhooks")
OUTBOX_KEPT_MS = 3 * 86_400_000
FANOUT_CONSUMER = "fanout"  # one name: a new lease holder reads what a dead one left pending
FANOUT_BATCH = 200
LANE_BATCH = 100  # events a lane delivers between two records of its progress


@dataclass(frozen=True)
class Policy:
    first_retry_s: float = 1.0
    max_retry_s: float = 3600.0
    give_up_after_s: float = 86_400.0
    timeout_s: float = 10.0
    lease_ms: int = 15_000
    poll_s: float = 0.5

    def backoff_s(self, attempts: int) -> float:
        """The wait after the n-th failed attempt: doubling, capped, jittered +-50 %."""
        base = min(self.max_retry_s, self.first_retry_s * 2.0 ** (attempts - 1))
        return float(base * random.uniform(0.5, 1.5))



def _first_stream(reply: Any) -> Any:
    """The entries of the one stream an XREADGROUP read (RESP2 list, or RESP3 dict)."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return next(iter(reply.values()))[0] if reply else []
    return reply[0][1]


@dataclass
class Dispatcher:
    redis: Redis
    keyspace: KeySpace
    policy: Policy = field(default_factory=Policy)
    client: httpx.AsyncClient | None = None
    owner: str = field(default_factory=lambda: secrets.token_hex(8))
    delivered: int = 0  # attempts that succeeded, in this process
    _lanes: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _wake: dict[str, asyncio.Event] = field(default_factory=dict)

    async def run(self, stop: asyncio.Event) -> None:
        scripts = Scripts(self.redis)
        self._scripts = scripts
        owned_client = self.client is None
        self.client = self.client or httpx.AsyncClient(timeout=self.policy.timeout_s)
        store = EndpointStore(self.redis, self.keyspace)
        next_refresh = next_trim = 0.0
        try:
            while not stop.is_set():
                now = time.monotonic()
                if now >= next_refresh:
                    next_refresh = now + 2 * self.policy.poll_s
                    self._reconcile_lanes(await store.all(), stop)
                if now >= next_trim:
                    next_trim = now + 60
                    await self.trim_outbox()
                if not await self.fan_out_once():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.policy.poll_s)
        finally:
            for task in self._lanes.values():
                task.cancel()
            await asyncio.gather(*self._lanes.values(), return_exceptions=True)
            if owned_client:
                await self.client.aclose()

    def _reconcile_lanes(self, endpoints: list[Endpoint], stop: asyncio.Event) -> None:
        self._endpoints = {e.id: e for e in endpoints}
        for gone in set(self._lanes) - set(self._endpoints):
            self._lanes.pop(gone).cancel()
        for e in endpoints:
            if e.id not in self._lanes or self._lanes[e.id].done():
                self._wake[e.id] = asyncio.Event()
                self._lanes[e.id] = asyncio.create_task(self._lane(e.id, stop))

    # ---- fan-out ----------------------------------------------------------------------

    async def fan_out_once(self) -> int:
        """One batch of the outbox into the queues; how many events (0: none waiting, or
        another dispatcher holds the fan-out)."""
        ks = self.keyspace
        lease = ks.outbox + ":fanout-lease"
        if not await self._hold(lease):
            return 0
        await ensure_group(self.redis, ks)
        entries: list[tuple[str, dict[str, str]]] = []
        for start in ("0", ">"):  # what a dead holder left pending first, then new events
            reply: Any = await self.redis.xreadgroup(OUTBOX_GROUP, FANOUT_CONSUMER,
                                                     {ks.outbox: start}, count=FANOUT_BATCH)
            entries = stream_rows(_first_stream(reply))
            if entries:
                break
        if not entries:
            return 0
        # read now, not at the last refresh: an endpoint made a moment ago gets this batch
        endpoints = await EndpointStore(self.redis, ks).all()
        pipe = self.redis.pipeline(transaction=False)
        woken = set()
        for entry_id, fields in entries:
            try:
                event = OutEvent.decode(fields)
            except OutEventError as exc:
                log.warning("outbox entry %s skipped: %s", entry_id, exc)
                continue
            for e in endpoints:
                if e.wants(event):
                    pipe.xadd(ks.webhook_queue(e.id), queued(event, entry_id))
                    woken.add(e.id)
        pipe.xack(ks.outbox, OUTBOX_GROUP, *[i for i, _ in entries])
        await pipe.execute()
        for endpoint_id in woken:
            if endpoint_id in self._wake:
                self._wake[endpoint_id].set()
        return len(entries)

    async def _hold(self, lease: str) -> bool:
        """Take or keep a lease (renewed on every call while held)."""
        if await self.redis.set(lease, self.owner, nx=True, px=self.policy.lease_ms):
            return True
        return await self._scripts.renew_lease(lease, self.owner, self.policy.lease_ms)

    async def trim_outbox(self) -> None:
        """Drop what every endpoint's queue has and no replay may ask for (older than
        OUTBOX_KEPT_MS): never past the group's oldest pending or undelivered entry."""
        ks = self.keyspace
        if not await self.redis.exists(ks.outbox):
            return
        groups: Any = await self.redis.xinfo_groups(ks.outbox)
        bound = time.time() * 1000 - OUTBOX_KEPT_MS
        for g in groups:
            info = {text(k): v for k, v in g.items()}
            bound = min(bound, int(text(info.get("last-delivered-id") or "0-0").split("-")[0]))
            pending: Any = await self.redis.xpending(ks.outbox, text(info["name"]))
            if pending and pending.get("pending"):
                bound = min(bound, int(text(pending["min"]).split("-")[0]))
        if bound > 0:
            await self.redis.xtrim(ks.outbox, minid=f"{int(bound)}-0", approximate=True)

    # ---- a lane -----------------------------------------------------------------------

    async def _lane(self, endpoint_id: str, stop: asyncio.Event) -> None:
        ks = self.keyspace
        while not stop.is_set():
            try:
                if not await self._hold(ks.webhook_lease(endpoint_id)):
                    await self._pause(endpoint_id, self.policy.lease_ms / 3000, stop)
                    continue
                wait = await self.deliver_head(endpoint_id)
                if wait:
                    await self._pause(endpoint_id, wait, stop)
            except asyncio.CancelledError:
                raise
            except Exception:  # a lane must outlive a Redis hiccup or a bug in one delivery
                log.exception("webhook lane %s failed; going on", endpoint_id)
                await self._pause(endpoint_id, 1.0, stop)
        with contextlib.suppress(Exception):
            await self._scripts.renew_lease(ks.webhook_lease(endpoint_id), self.owner, 0)

    async def _pause(self, endpoint_id: str, seconds: float, stop: asyncio.Event) -> None:
        wake = self._wake.setdefault(endpoint_id, asyncio.Event())
        wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(wake.wait()), seconds)

    async def deliver_head(self, endpoint_id: str) -> float:
        """Deliver the lane's events from its head, in order, until one fails or LANE_BATCH
        are done; the seconds to wait before the next call (0: go on at once). Successes
        are recorded a batch at a time (their log entries, their removal from the queue):
        a crash before that delivers them again, with the same ids."""
        ks = self.keyspace
        endpoint = self._endpoints.get(endpoint_id)
        if endpoint is None:
            return self.policy.poll_s
        rows = stream_rows(await self.redis.xrange(ks.webhook_queue(endpoint_id),
                                                   count=LANE_BATCH))
        if not rows:
            return self.policy.poll_s
        state = {text(k): text(v) for k, v in (await self.redis.hgetall(
            ks.webhook_head(endpoint_id))).items()}
        delivered: list[str] = []
        attempts: list[dict[Any, Any]] = []
        wait = 0.0
        try:
            for entry_id, fields in rows:
                event = OutEvent.decode(fields)
                now = time.time()
                if state.get("entry") != entry_id:  # a fresh head: no retry state
                    state = {"entry": entry_id, "attempts": "0", "first_at": str(now),
                             "next_at": "0"}
                if now < float(state["next_at"]):
                    wait = float(state["next_at"]) - now
                    break
                attempt = int(state["attempts"]) + 1
                status, error, took_ms = await self._post(endpoint, event)
                attempts.append({"event_id": event.id, "type": event.type, "attempt": attempt,
                                 "status": status, "ms": took_ms, "error": error,
                                 "at": int(now * 1000)})
                if 200 <= status < 300:
                    delivered.append(entry_id)
                    self.delivered += 1
                    continue
                if now - float(state["first_at"]) >= self.policy.give_up_after_s:
                    dead: dict[Any, Any] = {**event.fields(), "attempts": attempt,
                                            "last_status": status, "last_error": error}
                    await self.redis.xadd(ks.webhook_dead(endpoint_id), dead)
                    log.warning("webhook %s: event %s given up after %d attempts",
                                endpoint_id, event.id, attempt)
                    delivered.append(entry_id)  # off the queue, into the dead letters
                    continue
                wait = self.policy.backoff_s(attempt)
                state = {"entry": entry_id, "attempts": str(attempt),
                         "first_at": state["first_at"], "next_at": str(now + wait)}
                kept: dict[Any, Any] = dict(state)
                await self.redis.hset(ks.webhook_head(endpoint_id), mapping=kept)
                break
        finally:
            await self._record(endpoint_id, delivered, attempts)
        return wait

    async def _record(self, endpoint_id: str, done: list[str],
                      attempts: list[dict[Any, Any]]) -> None:
        """The attempts into the log, the finished events off the queue, in one round trip."""
        ks = self.keyspace
        pipe = self.redis.pipeline(transaction=False)
        for a in attempts:
            pipe.xadd(ks.webhook_deliveries(endpoint_id), a, maxlen=DELIVERIES_KEPT,
                      approximate=True)
        if done:
            pipe.xdel(ks.webhook_queue(endpoint_id), *done)
        await pipe.execute()

    async def _post(self, endpoint: Endpoint, event: OutEvent) -> tuple[int, str, int]:
        """(status, error, ms): status 0 when no answer came (refused, reset, timeout)."""
        assert self.client is not None  # (made by run())
        body = event.body()
        headers = {"Content-Type": "application/json", "User-Agent": "flashclaim-webhooks",
                   "Flashclaim-Event-Id": event.id, "Flashclaim-Event-Type": event.type,
                   HEADER: sign(endpoint.secret, int(time.time()), body)}
        started = time.perf_counter()
        try:
            response = await self.client.post(endpoint.url, content=body, headers=headers,
                                               timeout=self.policy.timeout_s)
            return response.status_code, "", int((time.perf_counter() - started) * 1000)
        except httpx.HTTPError as exc:
            return 0, type(exc).__name__, int((time.perf_counter() - started) * 1000)
