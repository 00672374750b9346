"""The drawer: at a drawn campaign's draw_at, grant its stock to the winners.

Every service runs one; a lease per campaign lets one of them draw (another takes over
if it dies: the lease expires). The steps, each safe to repeat after a crash:
1. start_draw.lua sets draw_state "drawing" (by the Redis clock): entries are frozen;
2. the entries are read (HSCAN, in pages) and ranked on a thread (fair/draw.py): the
   claims' event loop never runs a million HMACs;
3. the winners are granted through claim.lua, source "draw", in batches; a winner's
   dedup token "d:<user>" makes a second pass a replay;
4. draw_state "done" with the count granted, then the campaign leaves the due set.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time

from redis.asyncio import Redis

from flashclaim.claim.decision import ClaimCode
from flashclaim.claim.service import ClaimService
from flashclaim.fair.draw import winners
from flashclaim.keys import KeySpace
from flashclaim.outbox import OutEvent
from flashclaim.runtime.poll_loop import poll_forever
from flashclaim.store.connection import text
from flashclaim.store.scripts import DrawCode, Scripts

log = logging.getLogger("flashclaim.draw")
LEASE_MS = 60_000  # longer than a million-entry draw takes (docs/benchmarks.md)
GRANT_BATCH = 200  # winners per claim.lua call
SCAN_PAGE = 10_000  # entries per HSCAN


class Drawer:
    def __init__(self, redis: Redis, scripts: Scripts, keyspace: KeySpace,
                 claims: ClaimService) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keyspace = keyspace
        self._claims = claims
        self._owner = secrets.token_hex(8)
        self.last_steps: dict[str, float] = {}  # seconds of each step of the last draw

    async def run_due(self) -> int:
        """Draw every campaign whose draw_at has come (start_draw.lua decides by the Redis
        clock; this clock only spares the ones far from due); the number drawn now."""
        due = await self._redis.zrangebyscore(self._keyspace.draws_due, "-inf",
                                              int(time.time() * 1000) + 1000, start=0, num=50)
        drawn = 0
        for raw in due:
            campaign_id = raw.decode() if isinstance(raw, bytes) else str(raw)
            if await self.draw(campaign_id) is DrawCode.DONE:
                drawn += 1
        return drawn

    async def draw(self, campaign_id: str) -> DrawCode:
        """Draw one campaign if it is due and nobody else is drawing it: its state after."""
        keys = self._keyspace.campaign(campaign_id)
        if not await self._redis.set(keys.draw_lease, self._owner, nx=True, px=LEASE_MS):
            return DrawCode.WAIT  # another service is drawing it
        try:
            state, _ = await self._scripts.start_draw(keys)
            if state is DrawCode.DRAWING:
                await self._draw(campaign_id)
                state = DrawCode.DONE
            if state in (DrawCode.DONE, DrawCode.MISSING):
                await self._redis.zrem(self._keyspace.draws_due, campaign_id)
            return state
        finally:  # released only if still ours (renew_lease.lua with 0 ms)
            await self._scripts.renew_lease(keys.draw_lease, self._owner, 0)

    async def _draw(self, campaign_id: str) -> None:
        keys = self._keyspace.campaign(campaign_id)
        clock = time.perf_counter()
        seed_hex, stock = (text(v) for v in await self._redis.hmget(keys.meta,
                                                                   ["draw_seed", "stock"]))
        entrants = await self._entrants(keys.entries)
        read = time.perf_counter()
        chosen = await asyncio.to_thread(winners, bytes.fromhex(seed_hex), entrants, int(stock))
        ranked = time.perf_counter()
        granted = 0
        for i in range(0, len(chosen), GRANT_BATCH):
            decisions = await self._claims.grant_drawn(campaign_id, chosen[i:i + GRANT_BATCH])
            granted += sum(d.code in (ClaimCode.GRANTED, ClaimCode.REPLAY) for d in decisions)
        self.last_steps = {"read": read - clock, "rank": ranked - read,
                           "grant": time.perf_counter() - ranked}
        # told before the state is done: a crash between the two tells again (same id)
        if await self._redis.exists(self._keyspace.webhooks):
            event = OutEvent(f"draw.done:{campaign_id}", "draw.done", campaign_id,
                             int(time.time() * 1000), {"entrants": len(entrants),
                                                       "winners": chosen, "granted": granted,
                                                       "seed": seed_hex})
            await self._redis.xadd(self._keyspace.outbox, event.fields())  # type: ignore[arg-type]
        await self._redis.hset(keys.meta, mapping={"draw_state": "done",
                                                   "drawn_winners": granted})
        log.info("drawn campaign=%s entrants=%d winners=%d granted=%d", campaign_id,
                 len(entrants), len(chosen), granted)

    async def _entrants(self, entries_key: str) -> list[str]:
        """Every entrant's user id, a page at a time (the loop answers claims in between)."""
        users: list[str] = []
        cursor = 0
        while True:
            cursor, page = await self._redis.hscan(entries_key, cursor, count=SCAN_PAGE)
            users.extend(text(u) for u in page)
            if cursor == 0:
                return users

    async def _poll(self) -> None:
        await self.run_due()

    async def run_forever(self, every: float = 1.0) -> None:
        await poll_forever(self._poll, asyncio.Event(), every, "draws")

