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
from collections.abc import Callable

import orjson

from flashclaim.claim.identity import Identity
from flashclaim.claim.service import ClaimService
from flashclaim.runtime.poll_loop import poll_forever
from flashclaim.store.grant_store import GrantStore
from flashclaim.store.scripts import ClaimCode

BATCH = 500  # users per claim.lua call: one call stays a few milliseconds on the server
LEASE_MS = 30_000
POLL_S = 0.5


class GrantRunner:
    def __init__(self, grants: GrantStore, claims: ClaimService, batch: int = BATCH,
                 lease_ms: int = LEASE_MS) -> None:
        self._grants = grants
        self._claims = claims
        self._batch = batch
        self._lease_ms = lease_ms
        self._owner = secrets.token_hex(8)
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """A grant was just submitted here: look now, not at the next poll."""
        self._wake.set()

    async def run_forever(self, poll_s: float = POLL_S) -> None:
        await poll_forever(self.run_due, self._wake, poll_s, "grant runner")

    async def run_due(self) -> None:
        for campaign_id, grant_id in await self._grants.due():
            await self.run(campaign_id, grant_id)

    async def run(self, campaign_id: str, grant_id: str,
                  progress: Callable[[int, int], None] | None = None) -> bool:
        """Process the grant to its end if this runner gets its lease; False if another
        runner holds it."""
        if not await self._grants.take_lease(campaign_id, grant_id, self._owner, self._lease_ms):
            return False
        try:
            while True:
                state = await self._grants.progress(campaign_id, grant_id)
                if state is None:  # no such grant (a crash before its first users)
                    break
                done, total = state
                if progress is not None:
                    progress(done, total)
                if done >= total:
                    break
                await self._one_batch(campaign_id, grant_id, done)
                if not await self._grants.renew_lease(campaign_id, grant_id, self._owner,
                                                      self._lease_ms):
                    return False  # took too long: another runner may have it now
            await self._grants.finish(campaign_id, grant_id)
            return True
        finally:
            await self._grants.release_lease(campaign_id, grant_id, self._owner)

    async def _one_batch(self, campaign_id: str, grant_id: str, start: int) -> None:
        users = await self._grants.batch(campaign_id, grant_id, start, self._batch)
        decisions = await self._claims.grant(
            campaign_id, grant_id, [Identity(u.user_id, u.tags) for u in users])
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
