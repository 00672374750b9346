"""Redemption codes in Redis: batches to generate, their progress, the one export, and
the brute-force limiter of redemptions.

Codes themselves are never stored (flashclaim/codes.py): a batch keeps the nonce it
derives its codes from until they are exported once, and the codes hash of the
campaign's hash slot keeps each code's keyed hash and uses left.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis

from flashclaim.codes import campaign_slot, code_hash, make_code
from flashclaim.errors import ApiError, campaign_not_found
from flashclaim.keys import KeySpace
from flashclaim.packed import code_owner
from flashclaim.runtime.poll_loop import poll_forever
from flashclaim.schemas.issuance import (
    MAX_CODES_PER_CAMPAIGN,
    CodeBatch,
    CodeBatchCreate,
    CodeBatches,
)
from flashclaim.store.connection import text_map
from flashclaim.store.scripts import Scripts
from flashclaim.timefmt import to_rfc3339

STEP = 1000  # codes per store_codes.lua call
EXPORT_STEP = 2000  # codes per chunk of the CSV export (each made on a thread)
LEASE_MS = 30_000


@dataclass(frozen=True, slots=True)
class FailureLimit:
    """Failed redemptions allowed in one window: per user, and per address. An address
    past its limit is not locked out (many users share a gateway's): it only tightens the
    limit of the users who fail there to `per_user_at_busy_address`."""

    per_user: int = 10
    per_ip: int = 50
    per_user_at_busy_address: int = 1
    window_ms: int = 600_000


@dataclass(frozen=True, slots=True)
class _Export:
    """A batch claimed by one export."""

    batch_id: str
    nonce: bytes
    count: int
    uses: int
    per_user: int


class CodeStore:
    def __init__(self, redis: Redis, scripts: Scripts, keyspace: KeySpace,
                 secret: bytes | None, limit: FailureLimit | None = None) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keyspace = keyspace
        self._secret = secret
        self.limit = limit or FailureLimit()
        self._owner = secrets.token_hex(8)
        self._wake = asyncio.Event()

    @property
    def secret(self) -> bytes:
        if not self._secret:
            raise ApiError(503, "codes_not_configured",
                           "Redemption codes need FLASHCLAIM_CODE_SECRET.")
        return self._secret

    async def create_batch(self, campaign_id: str, request: CodeBatchCreate) -> CodeBatch:
        self.secret  # noqa: B018 (refuse before writing anything when codes are not set up)
        keys = self._keyspace.campaign(campaign_id)
        batch_id = secrets.token_hex(6)
        member = f"{campaign_id}/{batch_id}"
        await self._redis.zadd(self._keyspace.pending_code_batches, {member: 0})
        code, issued = await self._scripts.create_code_batch(
            keys, batch_id, request.count, request.uses_per_code, request.uses_per_user,
            secrets.token_hex(32), MAX_CODES_PER_CAMPAIGN)
        if code != "ok":
            await self._redis.zrem(self._keyspace.pending_code_batches, member)
            if code == "campaign_not_found":
                raise campaign_not_found(campaign_id)
            if code == "bucketed":
                raise ApiError(409, "campaign_bucketed",
                               "Redemption codes need a campaign with one bucket.")
            raise ApiError(409, "too_many_codes",
                           f"A campaign has at most {MAX_CODES_PER_CAMPAIGN:,} codes; "
                           f"{issued:,} exist.")
        self._wake.set()
        return await self.batch(campaign_id, batch_id)

    async def batch(self, campaign_id: str, batch_id: str) -> CodeBatch:
        m = text_map(await self._redis.hgetall(
            self._keyspace.campaign(campaign_id).code_batch(batch_id)))
        if not m:
            raise ApiError(404, "batch_not_found", f"No code batch {batch_id!r}.")
        state = m["state"]
        if state == "ready" and not m.get("nonce"):
            state = "exported"
        return CodeBatch(batch_id=batch_id, campaign_id=campaign_id, state=state,
                         count=int(m["count"]), generated=int(m["generated"]),
                         uses_per_code=int(m["uses"]), uses_per_user=_per_user(m),
                         created_at=to_rfc3339(int(m["created_at"])))

    async def batches(self, campaign_id: str) -> CodeBatches:
        keys = self._keyspace.campaign(campaign_id)
        if not await self._redis.exists(keys.meta):
            raise campaign_not_found(campaign_id)
        ids = cast(list[str], await self._redis.zrange(keys.code_batches, 0, -1))
        return CodeBatches(batches=[await self.batch(campaign_id, b) for b in ids])

    # -- generation -----------------------------------------------------------------

    async def generate_forever(self, poll_s: float = 0.5) -> None:
        await poll_forever(self.generate_due, self._wake, poll_s, "code generator")

    async def generate_due(self) -> None:
        if not self._secret:
            return
        for member in cast(list[str], await self._redis.zrange(
                self._keyspace.pending_code_batches, 0, 9)):
            campaign_id, _, batch_id = member.partition("/")
            await self.generate(campaign_id, batch_id)

    async def generate(self, campaign_id: str, batch_id: str) -> bool:
        """Store the batch's codes to its end, if this process gets its lease. The hashing
        runs on a thread, a step at a time: the loop that answers claims keeps answering."""
        lease = self._keyspace.code_batch_lease(campaign_id, batch_id)
        if not await self._redis.set(lease, self._owner, nx=True, px=LEASE_MS):
            return False
        keys = self._keyspace.campaign(campaign_id)
        try:
            while True:
                m = text_map(await self._redis.hgetall(keys.code_batch(batch_id)))
                if not m or int(m["generated"]) >= int(m["count"]):
                    break
                start = int(m["generated"])
                end = min(start + STEP, int(m["count"]))
                hashes = await asyncio.to_thread(
                    _code_hashes, self.secret, bytes.fromhex(m["nonce"]),
                    campaign_slot(campaign_id), start, end)
                await self._scripts.store_codes(
                    keys, batch_id, start, f"{campaign_id}:{m['uses']}:{_per_user(m)}", hashes)
                if not await self._scripts.renew_lease(lease, self._owner, LEASE_MS):
                    return False
            await self._redis.zrem(self._keyspace.pending_code_batches,
                                   f"{campaign_id}/{batch_id}")
            return True
        finally:
            await self._scripts.renew_lease(lease, self._owner, 0)

    # -- the one export ---------------------------------------------------------------

    async def export(self, campaign_id: str) -> AsyncIterator[str]:
        """CSV lines of every generated, not yet exported code. The batches are claimed for
        this export before a line is produced (claim_code_export.lua): a second export, at
        the same moment or later, gets none of them."""
        keys = self._keyspace.campaign(campaign_id)
        if not await self._redis.exists(keys.meta):
            raise campaign_not_found(campaign_id)
        batch_ids = [str(b) for b in await self._redis.zrange(keys.code_batches, 0, -1)]
        nonces = await self._scripts.claim_code_export(
            [keys.code_batch(b) for b in batch_ids]) if batch_ids else []
        claimed = [(b, n) for b, n in zip(batch_ids, nonces, strict=True) if n]
        if not claimed:
            raise ApiError(410, "codes_exported",
                           "Every generated code of this campaign was exported already "
                           "(or none is ready yet).")
        ready = []
        for batch_id, nonce in claimed:
            m = text_map(await self._redis.hgetall(keys.code_batch(batch_id)))
            ready.append(_Export(batch_id, bytes.fromhex(nonce), int(m["count"]),
                                 int(m["uses"]), _per_user(m)))
        return self._lines(campaign_id, ready)

    async def _lines(self, campaign_id: str, ready: list[_Export]) -> AsyncIterator[str]:
        slot = campaign_slot(campaign_id)
        yield "code,uses_per_code,uses_per_user,batch_id\n"
        for batch in ready:
            for start in range(0, batch.count, EXPORT_STEP):
                end = min(start + EXPORT_STEP, batch.count)
                yield await asyncio.to_thread(_csv_lines, self.secret, batch, slot, start, end)

    # -- the brute-force limiter ------------------------------------------------------

    async def take_attempt(self, user_id: str, client_ip: str) -> int | None:
        """Count one attempt of this user before its code is looked up; None when it may go
        on, else the milliseconds until it may try again. The per-user count is exact
        under any concurrency (one script); the address only chooses the allowance."""
        failures_here = int(await self._redis.get(self._ip_key(client_ip)) or 0)
        allowance = self.limit.per_user if failures_here < self.limit.per_ip \
            else self.limit.per_user_at_busy_address
        return await self._scripts.take_attempt(self._user_key(user_id), allowance,
                                                self.limit.window_ms)

    async def give_back(self, user_id: str) -> None:
        """The code existed: the attempt was no failure."""
        await self._scripts.return_attempt(self._user_key(user_id))

    async def failed(self, client_ip: str) -> None:
        """A code that does not exist, from this address (the user's attempt stays counted)."""
        key = self._ip_key(client_ip)
        # and the service-wide tally the code_failures alert watches (flashclaim/risk)
        tally = self._keyspace.code_failure_tally(int(time.time() // 60))
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.pexpire(key, self.limit.window_ms, nx=True)
            pipe.incr(tally)
            pipe.pexpire(tally, 3_600_000, nx=True)
            await pipe.execute()

    def _user_key(self, user_id: str) -> str:
        return self._keyspace.code_failures("u:" + user_id)

    def _ip_key(self, client_ip: str) -> str:
        return self._keyspace.code_failures("ip:" + client_ip)

    async def owner(self, slot_codes_key: str, hashed: str) -> str | None:
        """The campaign a code hash belongs to (claim.lua checks it again)."""
        entry = await self._redis.hget(slot_codes_key, hashed)
        if entry is None:
            return None
        return code_owner(str(entry))


def _per_user(batch: dict[str, str]) -> int:
    """A batch's uses per user (batches made before the setting: 1, the default)."""
    return int(batch.get("per_user") or 1)


def _plain(grouped: str) -> str:
    return grouped.replace("-", "")


def _code_hashes(secret: bytes, nonce: bytes, slot: int, start: int, end: int) -> list[str]:
    """The keyed hashes Redis keeps of codes start..end-1 (run on a thread)."""
    return [code_hash(secret, _plain(make_code(secret, nonce, i, slot)))
            for i in range(start, end)]


def _csv_lines(secret: bytes, batch: _Export, slot: int, start: int, end: int) -> str:
    """CSV lines of codes start..end-1 of a batch (run on a thread)."""
    tail = f",{batch.uses},{batch.per_user},{batch.batch_id}\n"
    return "".join(make_code(secret, batch.nonce, i, slot) + tail for i in range(start, end))
