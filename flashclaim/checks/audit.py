"""Checks the promises of one campaign in Redis: no oversell, no lost or duplicated record.

Used by the tests, and by reconcile, the load-test verdict and the benchmark.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from flashclaim.keys import KeySpace
from flashclaim.store.connection import text_map
from flashclaim.stream import ClaimRecord, RecordError

PAGE = 1000


@dataclass(frozen=True, slots=True)
class CampaignAudit:
    campaign_id: str
    stock: int
    remaining: int
    granted: int
    stream_length: int
    violations: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.violations


def decode_entries(raw: Any) -> list[ClaimRecord | RecordError]:
    """XRANGE entries decoded (or the reason each could not be)."""
    out: list[ClaimRecord | RecordError] = []
    for entry_id, fields in raw or []:
        try:
            out.append(ClaimRecord.decode(entry_id or "", fields or {}))
        except RecordError as exc:
            out.append(exc)
    return out


async def read_stream(redis: Redis, stream_key: str) -> list[ClaimRecord | RecordError]:
    """Every entry of a claim stream, a page at a time."""
    out: list[ClaimRecord | RecordError] = []
    start = "-"
    while True:
        page = await redis.xrange(stream_key, start, "+", count=PAGE) or []
        out += decode_entries(page)
        if len(page) < PAGE:
            return out
        start = "(" + str(page[-1][0])


async def snapshot(redis: Redis, keyspace: KeySpace, campaign_id: str) -> tuple[
        dict[str, str], dict[str, str], list[ClaimRecord | RecordError]]:
    """Counters, per-user counts and the whole stream, read in one MULTI/EXEC: claims
    granted meanwhile cannot make the three disagree. (One slot: one hash tag.)"""
    keys = keyspace.campaign(campaign_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hgetall(keys.meta)
        pipe.hgetall(keys.users)
        pipe.xrange(keys.stream)
        meta, users, stream = await pipe.execute()
    return text_map(meta), text_map(users), decode_entries(stream)


async def audit_campaign(redis: Redis, keyspace: KeySpace, campaign_id: str) -> CampaignAudit:
    meta, users, entries = await snapshot(redis, keyspace, campaign_id)
    if not meta:
        return CampaignAudit(campaign_id, 0, 0, 0, 0, ("campaign not found",))
    stock, remaining, granted = int(meta["stock"]), int(meta["remaining"]), int(meta["granted"])
    limit = int(meta["per_user_limit"])
    held = {u: int(n) for u, n in users.items()}
    v: list[str] = []
    if remaining < 0:
        v.append(f"remaining is negative ({remaining})")
    if granted > stock:
        v.append(f"oversold: granted {granted} > stock {stock}")
    if stock != granted + remaining:
        v.append(f"stock {stock} != granted {granted} + remaining {remaining}")
    records = [e for e in entries if isinstance(e, ClaimRecord)]
    v.extend(f"undecodable stream entry: {e}" for e in entries if isinstance(e, RecordError))
    if len(records) < granted:
        v.append(f"lost: {granted - len(records)} granted claims have no stream record")
    if len(records) > granted:
        v.append(f"extra: {len(records) - granted} stream records beyond granted {granted}")
    seqs = Counter(r.seq for r in records)
    repeated = sorted(s for s, n in seqs.items() if n > 1)
    if repeated:
        v.append(f"duplicated seq: {repeated[:10]}")
    missing = sorted(set(range(1, granted + 1)) - set(seqs))
    if missing:
        v.append(f"seq gap: {missing[:10]}")
    beyond = sorted(s for s in seqs if not 1 <= s <= stock)
    if beyond:
        v.append(f"seq outside 1..stock: {beyond[:10]}")
    ids = Counter(r.claim_id for r in records)
    dup_ids = sorted(i for i, n in ids.items() if n > 1)
    if dup_ids:
        v.append(f"duplicated claim_id: {dup_ids[:5]}")
    per_user = Counter(r.user_id for r in records)
    over = sorted(u for u, n in per_user.items() if n > limit)
    if over:
        v.append(f"users above per_user_limit {limit}: {over[:5]}")
    if dict(per_user) != held:
        v.append("per-user counts in Redis differ from the stream")
    foreign = [r.entry_id for r in records if r.campaign_id != campaign_id]
    if foreign:
        v.append(f"records of another campaign: {foreign[:5]}")
    return CampaignAudit(campaign_id, stock, remaining, granted, len(records), tuple(v))
