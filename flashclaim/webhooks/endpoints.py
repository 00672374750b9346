"""Webhook endpoints as the admin API manages them, their deliveries, and replays.

An endpoint: a URL, the event types it wants, the days before valid_until its
coupon.expiring reminder comes, and a secret shown once (at creation) and kept to sign.
Creating the first endpoint makes the outbox's consumer group, so nothing told from then
on waits for a dispatcher that has not started yet.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from flashclaim.errors import ApiError
from flashclaim.keys import KeySpace
from flashclaim.outbox import OutEvent
from flashclaim.store.connection import stream_rows

OUTBOX_GROUP = "webhooks"
DELIVERIES_KEPT = 1000  # attempts the deliveries log keeps per endpoint
REPLAY_PAGE = 1000



def queued(event: OutEvent, outbox_id: str) -> dict[Any, Any]:
    """A lane's queue entry: the event, and where it came from in the outbox."""
    return {"outbox_id": outbox_id, **event.fields()}


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    url: str
    events: tuple[str, ...]
    expiring_days: int
    secret: str
    created_at: int

    def wants(self, event: OutEvent) -> bool:
        if event.type not in self.events:
            return False
        return event.type != "coupon.expiring" or event.data.get("days") == self.expiring_days

    def stored(self) -> bytes:
        return orjson.dumps({"id": self.id, "url": self.url, "events": list(self.events),
                             "expiring_days": self.expiring_days, "secret": self.secret,
                             "created_at": self.created_at})

    @classmethod
    def of(cls, raw: bytes | str) -> Endpoint:
        d = orjson.loads(raw)
        return cls(d["id"], d["url"], tuple(d["events"]), int(d["expiring_days"]), d["secret"],
                   int(d["created_at"]))


async def ensure_group(redis: Redis, keyspace: KeySpace) -> None:
    """The outbox's consumer group, from its start (MKSTREAM: also before any event)."""
    try:
        await redis.xgroup_create(keyspace.outbox, OUTBOX_GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


class EndpointStore:
    def __init__(self, redis: Redis, keyspace: KeySpace) -> None:
        self._redis = redis
        self._keyspace = keyspace

    async def create(self, url: str, events: list[str], expiring_days: int) -> Endpoint:
        await ensure_group(self._redis, self._keyspace)
        endpoint = Endpoint("wh_" + secrets.token_hex(8), url, tuple(events), expiring_days,
                            "whsec_" + secrets.token_urlsafe(24), int(time.time() * 1000))
        await self._redis.hset(self._keyspace.webhooks, endpoint.id, endpoint.stored())
        return endpoint

    async def all(self) -> list[Endpoint]:
        raw = await self._redis.hvals(self._keyspace.webhooks)
        return sorted((Endpoint.of(v) for v in raw), key=lambda e: (e.created_at, e.id))

    async def get(self, endpoint_id: str) -> Endpoint:
        raw = await self._redis.hget(self._keyspace.webhooks, endpoint_id)
        if raw is None:
            raise ApiError(404, "webhook_not_found", "No such webhook endpoint.")
        return Endpoint.of(raw)

    async def delete(self, endpoint_id: str) -> None:
        """The endpoint and everything of its lane (its queue, retries, log, dead letters)."""
        await self.get(endpoint_id)
        ks = self._keyspace
        await self._redis.hdel(ks.webhooks, endpoint_id)
        for key in (ks.webhook_queue(endpoint_id), ks.webhook_head(endpoint_id),
                    ks.webhook_deliveries(endpoint_id), ks.webhook_dead(endpoint_id)):
            await self._redis.delete(key)

    async def deliveries(self, endpoint_id: str, limit: int) -> tuple[list[dict[str, Any]], int]:
        """The newest attempts first, and how many events wait in the lane."""
        await self.get(endpoint_id)
        ks = self._keyspace
        rows = stream_rows(await self._redis.xrevrange(ks.webhook_deliveries(endpoint_id),
                                                        count=limit))
        waiting = int(await self._redis.xlen(ks.webhook_queue(endpoint_id)))
        return [fields for _, fields in rows], waiting

    async def dead(self, endpoint_id: str, limit: int) -> list[dict[str, Any]]:
        rows = stream_rows(await self._redis.xrevrange(self._keyspace.webhook_dead(endpoint_id),
                                                        count=limit))
        return [fields for _, fields in rows]

    async def replay(self, endpoint_id: str, event_id: str | None, since_ms: int | None,
                     until_ms: int | None) -> int:
        """Queue again, for this endpoint, the outbox's events with this id or told in
        [since, until) (as long as the outbox keeps them); how many. A replayed event keeps
        its id: the receiver dedupes it like any repeat."""
        endpoint = await self.get(endpoint_id)
        ks = self._keyspace
        start = "-" if since_ms is None else f"{since_ms}-0"
        end = "+" if until_ms is None else f"{max(until_ms - 1, 0)}-18446744073709551615"
        count = 0
        while True:
            page = stream_rows(await self._redis.xrange(ks.outbox, start, end,
                                                        count=REPLAY_PAGE))
            pipe = self._redis.pipeline(transaction=False)
            for entry_id, fields in page:
                event = OutEvent.decode(fields)
                if (event_id is None or event.id == event_id) and endpoint.wants(event):
                    pipe.xadd(ks.webhook_queue(endpoint_id), queued(event, entry_id))
                    count += 1
            await pipe.execute()
            if len(page) < REPLAY_PAGE:
                return count
            start = "(" + page[-1][0]
