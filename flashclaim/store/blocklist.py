"""The risk blocklist: users no issuing path may grant a coupon to.

The list lives in one hash (its own hash tag), apart from the campaigns: on Redis
Cluster it sits on one shard while each campaign's keys sit on another, and no
script can read both. So every service process keeps a copy in memory and sends
claim.lua a "blocked" flag with each claim; claim.lua refuses it in its place in
the decision order. A change writes the list, bumps its revision and logs the change
in one script (blocklist_change.lua); the copy follows the log from its revision,
checked every `refresh_s` (1 s by default) and at once after a change made through
this process. So a block takes effect everywhere within about one refresh interval
(docs/design.md), and a change costs each process one short read, however long the
list. A process further behind than the log keeps (LOG_KEPT changes) reads the list
whole again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from redis.asyncio import Redis

from flashclaim.keys import KeySpace
from flashclaim.runtime.poll_loop import poll_forever
from flashclaim.schemas.issuance import Blocked, BlocklistPage
from flashclaim.store.connection import server_time_ms, text_map
from flashclaim.store.scripts import Scripts
from flashclaim.timefmt import to_rfc3339

log = logging.getLogger("flashclaim")
REFRESH_S = 1.0
BLOCKLIST_LIMIT_RANGE = (1, 1000)
LOG_KEPT = 10_000  # changes the log keeps for processes that are behind


class Blocklist:
    def __init__(self, redis: Redis, scripts: Scripts, keyspace: KeySpace,
                 refresh_s: float = REFRESH_S) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keyspace = keyspace
        self.refresh_s = refresh_s
        self._users: set[str] = set()
        self._rev: int | None = None  # None: never read
        self._reading: asyncio.Task[None] | None = None
        self.full_reads = 0  # how often the whole list was read (once, unless far behind)

    async def is_blocked(self, user_id: str) -> bool:
        """From the copy in memory (read first if this process has none yet)."""
        if self._rev is None:
            await self.refresh()
        return user_id in self._users

    async def refresh(self) -> None:
        """Catch up with the list if its revision moved since the last read. Callers
        arriving while a read is in flight share it (one Redis call, one timeout, for all)."""
        if self._reading is None or self._reading.done():
            self._reading = asyncio.ensure_future(self._read())
        await asyncio.shield(self._reading)

    async def _read(self) -> None:
        rev = int(await self._redis.get(self._keyspace.blocklist_rev) or 0)
        if rev == self._rev:
            return
        if self._rev is not None and rev - self._rev <= LOG_KEPT and \
                await self._follow_log(self._rev):
            return
        # the first read, or too far behind the log: the whole list (the revision first,
        # so a change made meanwhile is read again next time, never missed)
        users = await self._redis.hkeys(self._keyspace.blocklist)
        self._users = {u.decode() if isinstance(u, bytes) else u for u in users}
        self._rev = rev
        self.full_reads += 1

    async def _follow_log(self, since: int) -> bool:
        """Apply the logged changes after revision `since`; False when the log no longer
        holds the first of them (trimmed, or written before the log existed)."""
        entries = await self._redis.xrange(self._keyspace.blocklist_changes,
                                           f"{since + 1}-0", "+")
        if not entries or str(entries[0][0]) != f"{since + 1}-0":
            return False
        for entry_id, raw in entries:
            fields = text_map(raw or {})
            if fields["op"] == "block":
                self._users.add(fields["user"])
            else:
                self._users.discard(fields["user"])
            self._rev = int(str(entry_id).partition("-")[0])
        return True

    async def refresh_forever(self) -> None:
        await poll_forever(self.refresh, asyncio.Event(), self.refresh_s, "blocklist refresh")

    def _change_keys(self) -> list[str]:
        ks = self._keyspace
        return [ks.blocklist, ks.blocklist_rev, ks.blocklist_changes, ks.blocklist_index]

    async def block(self, user_id: str, reason: str) -> Blocked:
        entry = {"reason": reason, "blocked_at": await server_time_ms(self._redis)}
        await self._scripts.blocklist_change(self._change_keys(), "block", user_id,
                                             orjson.dumps(entry).decode(), LOG_KEPT)
        await self.refresh()  # this process sees its own change at once
        return _public(user_id, entry)

    async def unblock(self, user_id: str) -> bool:
        removed, _ = await self._scripts.blocklist_change(self._change_keys(), "unblock",
                                                          user_id, "", LOG_KEPT)
        await self.refresh()
        return removed

    async def entries(self) -> dict[str, dict[str, Any]]:
        """Every entry: user_id -> {"reason", "blocked_at" (epoch ms)}."""
        raw = text_map(await self._redis.hgetall(self._keyspace.blocklist))
        return {user: orjson.loads(v) for user, v in raw.items()}

    async def page(self, after: str, limit: int) -> BlocklistPage:
        """Entries ordered by user id, `limit` a page, after the user id `after`: a range of
        the index, then those entries (never the whole list)."""
        ks = self._keyspace
        if await self._redis.zcard(ks.blocklist_index) != await self._redis.hlen(ks.blocklist):
            await self._reindex()
        low = f"({after}" if after else "-"
        users = [str(u) for u in await self._redis.zrangebylex(ks.blocklist_index, low, "+",
                                                               start=0, num=limit)]
        values = await self._redis.hmget(ks.blocklist, users) if users else []
        found = [(u, orjson.loads(v)) for u, v in zip(users, values, strict=True) if v]
        return BlocklistPage(blocked=[_public(u, entry) for u, entry in found],
                         next=users[-1] if len(users) == limit else None)

    async def _reindex(self) -> None:
        """The index from the list (a list written before the index existed)."""
        ks = self._keyspace
        users = [str(u) for u in await self._redis.hkeys(ks.blocklist)]
        async with self._redis.pipeline(transaction=True) as pipe:  # one slot: {blocklist}
            pipe.delete(ks.blocklist_index)
            for start in range(0, len(users), 1000):
                pipe.zadd(ks.blocklist_index, dict.fromkeys(users[start:start + 1000], 0))
            await pipe.execute()


def _public(user_id: str, entry: dict[str, Any]) -> Blocked:
    return Blocked(user_id=user_id, reason=entry["reason"],
                   blocked_at=to_rfc3339(int(entry["blocked_at"])))
