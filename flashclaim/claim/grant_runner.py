"""Runs operator grants: every due grant, a batch of users at a time, through claim.lua.

Each service process runs one GrantRunner. A grant is processed by one runner at a
time (a lease in Redis, renewed per batch); a runner that dies mid-grant lets its
lease lapse and another, or the restarted one, resumes at the grant's cursor. A
batch is decided by claim.lua first and recorded after, so a crash in between
decides it again: the dedup token "g:<grant>:<user>" makes those grants replay
("granted" again, never twice). Scheduled grants wait in Redis for their time.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable

import orjson

from flashclaim.claim.decision import ClaimCode
from flashclaim.claim.identity import Identity
from flashclaim.claim.service import ClaimService
from flashclaim.runtime.poll_loop import poll_forever
from flashclaim.store.grant_store import GrantStore

BATCH = 500  # users per claim.lua call: one call stays a few milliseconds on the server
LEASE_MS = 30_000
POLL_S = 0.5
CONCURRENT = 16  # grants one runner works on at once (each waits on Redis most of the time)
SWEEP_EVERY_MS = 10_000  # how often some runner looks for grants that lost their pending entry


class GrantRunner:
    def __init__(self, grants: GrantStore, claims: ClaimService, batch: int = BATCH,
                 lease_ms: int = LEASE_MS, sweep_every_ms: int = SWEEP_EVERY_MS) -> None:
        self._grants = grants
        self._claims = claims
        self._batch = batch
        self._lease_ms = lease_ms
        self._sweep_every_ms = sweep_every_ms
        self._next_sweep = 0.0
        self._owner = secrets.token_hex(8)
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """A grant was just submitted here: look now, not at the next poll."""
        self._wake.set()

    async def run_forever(self, poll_s: float = POLL_S) -> None:
        await poll_forever(self.run_due, self._wake, poll_s, "grant runner")

    async def run_due(self) -> None:
        """Every grant due now, CONCURRENT at a time, until none is left (a grant another
        runner holds is left to it); and, once a sweep period, the sweep for lost ones."""
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + self._sweep_every_ms / 1000
            await self._grants.sweep_lost(self._owner, self._sweep_every_ms)
        held_elsewhere: set[tuple[str, str]] = set()
        gate = asyncio.Semaphore(CONCURRENT)

        async def one(pair: tuple[str, str]) -> None:
            async with gate:
                if not await self.run(*pair):
                    held_elsewhere.add(pair)

        while True:
            due = [pair for pair in await self._grants.due(4 * CONCURRENT + len(held_elsewhere))
                   if pair not in held_elsewhere]
            if not due:
                return
            await asyncio.gather(*(one(pair) for pair in due))

    async def run(self, campaign_id: str, grant_id: str,
                  progress: Callable[[int, int], None] | None = None) -> bool:
        """Process the grant to its end if this runner gets its lease; False if another
        runner holds it."""
        if not await self._grants.take_lease(campaign_id, grant_id, self._owner, self._lease_ms):
            return False
        try:
            while True:
                state = await self._grants.progress(campaign_id, grant_id)
                if state is None:  # no such grant (its campaign is gone)
                    await self._grants.drop(campaign_id, grant_id)
                    break
                done, total = state
                if progress is not None:
                    progress(done, total)
                if done >= total:
                    await self._grants.tell_done(campaign_id, grant_id, total)
                    if await self._grants.finish(campaign_id, grant_id):
                        break
                    continue  # users arrived meanwhile: go on with them
                await self._one_batch(campaign_id, grant_id, done)
                if not await self._grants.renew_lease(campaign_id, grant_id, self._owner,
                                                      self._lease_ms):
                    return False  # took too long: another runner may have it now
            return True
        finally:
            await self._grants.release_lease(campaign_id, grant_id, self._owner)

    async def _one_batch(self, campaign_id: str, grant_id: str, start: int) -> None:
        users = await self._grants.batch(campaign_id, grant_id, start, self._batch)
        decisions = await self._claims.grant(
            campaign_id, grant_id, [Identity(u.user_id, u.tags) for u in users],
            [u.value for u in users])
        outcomes = []
        for user, decision in zip(users, decisions, strict=True):
            if decision.code in (ClaimCode.GRANTED, ClaimCode.REPLAY):
                # a replay is this grant's own earlier grant (a batch decided twice)
                outcome = "granted:" + _claim_id(decision.payload)
            else:
                outcome = decision.code.value
            outcomes.append((user.user_id, outcome))
        await self._grants.record(campaign_id, grant_id, start, start + len(users), outcomes)


def _claim_id(payload: str) -> str:
    claim_id: str = orjson.loads(payload)["claim_id"]
    return claim_id
