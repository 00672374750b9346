"""Campaigns in Redis: create, read (with live stats), list, pause/resume, stock changes."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from flashclaim.campaigns import MAX_STOCK, CampaignSpec, CampaignView, meta_fields
from flashclaim.errors import ApiError, campaign_not_found
from flashclaim.keys import KeySpace
from flashclaim.store.connection import server_time_ms, text_map
from flashclaim.store.scripts import Scripts, StockCode
from flashclaim.stream import LAST_ENTRY, entry_order

# GET /v1/campaigns shows at most this many, soonest start first.
LIST_LIMIT = 200


RECORDS_LIMIT_RANGE = (1, 10_000)  # records per page of the admin claims listing

class CampaignStore:
    def __init__(self, redis: Redis, scripts: Scripts, keyspace: KeySpace) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keyspace = keyspace

    async def now(self) -> int:
        return await server_time_ms(self._redis)

    async def create(self, spec: CampaignSpec, now_ms: int) -> CampaignView:
        keys = self._keyspace.campaign(spec.id)
        # Registry first: a crash in between leaves an id that points to nothing
        # (skipped by readers), never a campaign that consumers cannot find.
        await self._redis.zadd(self._keyspace.registry, {spec.id: now_ms}, nx=True)
        if not await self._scripts.create_campaign(keys, meta_fields(spec, now_ms)):
            raise ApiError(409, "campaign_exists", f"A campaign with id {spec.id!r} exists.")
        return await self.get(spec.id)

    async def get(self, campaign_id: str) -> CampaignView:
        meta = text_map(await self._redis.hgetall(self._keyspace.campaign(campaign_id).meta))
        if not meta:
            raise campaign_not_found(campaign_id)
        return CampaignView.from_meta(meta)

    async def stats(self, view: CampaignView) -> dict[str, Any]:
        """The live counts of a campaign just read (its counters are not read again)."""
        keys = self._keyspace.campaign(view.id)
        rejected = text_map(await self._redis.hgetall(keys.rejected))
        return {
            "granted": view.granted,
            "remaining": view.remaining,
            "recorded": await self._recorded(keys.stream),
            "rejected": {code: int(n) for code, n in sorted(rejected.items())},
        }

    async def _recorded(self, stream: str) -> int:
        """Entries ever added to the claim stream (trimming does not lower it)."""
        if not await self._redis.exists(stream):
            return 0
        info: dict[str, Any] = await self._redis.xinfo_stream(stream)
        return int(info["entries-added"])

    async def records(self, campaign_id: str, after: str, limit: int) -> dict[str, Any]:
        """A page of the claim stream: what was recorded, for load-test verdicts and audits."""
        keys = self._keyspace.campaign(campaign_id)
        if not await self._redis.exists(keys.meta):
            raise campaign_not_found(campaign_id)
        stream = keys.stream
        if after and entry_order(after) == LAST_ENTRY:  # nothing can follow; "(" would overflow
            return {"claims": [], "next": None}
        page = await self._redis.xrange(stream, "(" + after if after else "-", "+",
                                        count=limit) or []
        claims = [{"entry_id": str(entry_id), "seq": int(fields["seq"]),
                   "claim_id": fields["claim_id"], "user_id": fields["user_id"]}
                  for entry_id, fields in page if fields]
        return {"claims": claims, "next": claims[-1]["entry_id"] if len(page) == limit else None}

    async def all_ids(self) -> list[str]:
        ids = await self._redis.zrange(self._keyspace.registry, 0, -1)
        return [str(i) for i in ids]

    async def list_open(self, now_ms: int) -> list[CampaignView]:
        """Campaigns that are scheduled or live, soonest start first."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for campaign_id in await self.all_ids():
                pipe.hgetall(self._keyspace.campaign(campaign_id).meta)
            metas = await pipe.execute()
        views = [CampaignView.from_meta(text_map(m)) for m in metas if m]
        open_views = [v for v in views if v.status(now_ms) in ("scheduled", "live")]
        return sorted(open_views, key=lambda v: (v.starts_at, v.id))[:LIST_LIMIT]

    async def set_paused(self, campaign_id: str, paused: bool) -> CampaignView:
        if not await self._scripts.set_paused(self._keyspace.campaign(campaign_id), paused):
            raise campaign_not_found(campaign_id)
        return await self.get(campaign_id)

    async def adjust_stock(self, campaign_id: str, delta: int) -> CampaignView:
        keys = self._keyspace.campaign(campaign_id)
        code, stock, remaining = await self._scripts.adjust_stock(keys, delta, MAX_STOCK)
        if code is StockCode.CAMPAIGN_NOT_FOUND:
            raise campaign_not_found(campaign_id)
        if code is StockCode.INSUFFICIENT_STOCK:
            raise ApiError(
                409, "insufficient_stock",
                f"Cannot withdraw {-delta}: only {remaining} remain unclaimed.",
            )
        if code is StockCode.STOCK_LIMIT:
            raise ApiError(
                409, "stock_limit", f"Total stock would exceed {MAX_STOCK} (it is {stock})."
            )
        return await self.get(campaign_id)
