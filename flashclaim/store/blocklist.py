"""The risk blocklist: users no issuing path may grant a coupon to.

The list lives in one hash (its own hash tag), apart from the campaigns: on Redis
Cluster it sits on one shard while each campaign's keys sit on another, and no
script can read both. So every service process keeps a copy in memory and sends
claim.lua a "blocked" flag with each claim; claim.lua refuses it in its place in
the decision order. The copy is re-read whenever the list's revision counter moves,
checked every `refresh_s` (1 s by default) and at once after a change made through
this process. A block therefore takes effect everywhere within about one refresh
interval (docs/design.md); an unblock likewise.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from flashclaim.keys import KeySpace
from flashclaim.store.connection import server_time_ms, text_map
from flashclaim.timefmt import to_rfc3339

log = logging.getLogger("flashclaim")
REFRESH_S = 1.0
REASON_MAX_LEN = 500
BLOCKLIST_LIMIT_RANGE = (1, 1000)


class Blocklist:
    def __init__(self, redis: Redis, keyspace: KeySpace, refresh_s: float = REFRESH_S) -> None:
        self._redis = redis
        self._keyspace = keyspace
        self.refresh_s = refresh_s
        self._users: frozenset[str] = frozenset()
        self._rev: int | None = None  # None: never read
        self._reading: asyncio.Task[None] | None = None

    async def is_blocked(self, user_id: str) -> bool:
        """From the copy in memory (read first if this process has none yet)."""
        if self._rev is None:
            await self.refresh()
        return user_id in self._users

    async def refresh(self) -> None:
        """Re-read the list if its revision moved since the last read. Callers arriving
        while a read is in flight share it (one Redis call, one timeout, for all)."""
        if self._reading is None or self._reading.done():
            self._reading = asyncio.ensure_future(self._read())
        await asyncio.shield(self._reading)

    async def _read(self) -> None:
        rev = int(await self._redis.get(self._keyspace.blocklist_rev) or 0)
        if rev == self._rev:
            return
        users = await self._redis.hkeys(self._keyspace.blocklist)
        self._users = frozenset(u.decode() if isinstance(u, bytes) else u for u in users)
        self._rev = rev

    async def refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await self.refresh()
            except RedisError as exc:
                log.warning("could not refresh the blocklist: %s", exc)

    async def block(self, user_id: str, reason: str) -> dict[str, Any]:
        entry = {"reason": reason, "blocked_at": await server_time_ms(self._redis)}
        async with self._redis.pipeline(transaction=True) as pipe:  # one slot: {blocklist}
            pipe.hset(self._keyspace.blocklist, user_id, orjson.dumps(entry))
            pipe.incr(self._keyspace.blocklist_rev)
            await pipe.execute()
        await self._read()  # this process sees its own change at once
        return _public(user_id, entry)

    async def unblock(self, user_id: str) -> bool:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self._keyspace.blocklist, user_id)
            pipe.incr(self._keyspace.blocklist_rev)
            removed, _ = await pipe.execute()
        await self._read()
        return bool(removed)

    async def entries(self) -> dict[str, dict[str, Any]]:
        """Every entry: user_id -> {"reason", "blocked_at" (epoch ms)}."""
        raw = text_map(await self._redis.hgetall(self._keyspace.blocklist))
        return {user: orjson.loads(v) for user, v in raw.items()}

    async def page(self, after: str, limit: int) -> dict[str, Any]:
        """Entries ordered by user id, `limit` a page, after the user id `after`."""
        entries = await self.entries()
        users = sorted(u for u in entries if u > after)[:limit]
        return {"blocked": [_public(u, entries[u]) for u in users],
                "next": users[-1] if len(users) == limit else None}


def _public(user_id: str, entry: dict[str, Any]) -> dict[str, Any]:
    return {"user_id": user_id, "reason": entry["reason"],
            "blocked_at": to_rfc3339(int(entry["blocked_at"]))}
