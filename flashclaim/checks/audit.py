"""Checks the promises of one campaign in Redis: no oversell, no lost or duplicated record.

Used by the tests, and by reconcile, the load-test verdict and the benchmark.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from flashclaim.campaigns import CampaignView
from flashclaim.checks.invariants import Grant, counter_breaches, record_breaches, summarize
from flashclaim.checks.issuance import blocked_times, issuance_breaches
from flashclaim.keys import KeySpace
from flashclaim.store.connection import as_entries, as_map, text_map
from flashclaim.stream import PAGE, ClaimRecord, RecordError, next_page_start


@dataclass(frozen=True, slots=True)
class CampaignAudit:
    campaign_id: str
    stock: int | None
    remaining: int | None
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
    start: str | None = "-"
    while start is not None:
        page = await redis.xrange(stream_key, start, "+", count=PAGE) or []
        out += decode_entries(page)
        start = next_page_start(page)
    return out


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
    return text_map(as_map(meta)), text_map(as_map(users)), decode_entries(as_entries(stream))


async def audit_campaign(redis: Redis, keyspace: KeySpace, campaign_id: str) -> CampaignAudit:
    meta, users, entries = await snapshot(redis, keyspace, campaign_id)
    if not meta:
        return CampaignAudit(campaign_id, 0, 0, 0, 0, ("campaign not found",))
    view = CampaignView.from_meta(meta)
    stock, remaining, granted = view.stock, view.remaining, view.granted
    limit = view.per_user_limit
    held = {u: int(n) for u, n in users.items()}
    v = counter_breaches(stock, remaining, granted)
    records = [e for e in entries if isinstance(e, ClaimRecord)]
    v.extend(f"undecodable stream entry: {e}" for e in entries if isinstance(e, RecordError))
    grants = [Grant(r.claim_id, r.user_id, r.seq) for r in records]
    v.extend(record_breaches(summarize(grants), granted=granted, per_user_limit=limit,
                             where="stream", complete=True))
    if dict(Counter(r.user_id for r in records)) != held:
        v.append("per-user counts in Redis differ from the stream")
    blocked = blocked_times(text_map(await redis.hgetall(keyspace.blocklist)))
    v.extend(issuance_breaches(view, records, blocked, "stream"))
    foreign = [r.entry_id for r in records if r.campaign_id != campaign_id]
    if foreign:
        v.append(f"records of another campaign: {foreign[:5]}")
    return CampaignAudit(campaign_id, stock, remaining, granted, len(records), tuple(v))
