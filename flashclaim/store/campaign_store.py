"""Campaigns in Redis: create, read (with live stats), list, pause/resume, stock changes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import orjson
from redis.asyncio import Redis

from flashclaim.campaigns import (
    MAX_STOCK,
    STATUSES,
    CampaignSpec,
    CampaignView,
    meta_fields,
    patched_fields,
)
from flashclaim.errors import ApiError, campaign_not_found
from flashclaim.keys import CampaignKeys, KeySpace, bucket_key_id, home_bucket
from flashclaim.schemas.campaigns import BudgetFigures, CampaignStats
from flashclaim.schemas.claims import Record, Records
from flashclaim.store.buckets import create_buckets, mirror_definition, move_stock, summed_view
from flashclaim.store.connection import server_time_ms, text, text_map
from flashclaim.store.scripts import Scripts, StockCode
from flashclaim.stream import LAST_ENTRY, entry_order
from flashclaim.zones import DEFAULT_TIMEZONE, local_day

# GET /v1/campaigns shows at most this many, soonest start first.
LIST_LIMIT = 200


RECORDS_LIMIT_RANGE = (1, 10_000)  # records per page of the admin claims listing
CAMPAIGNS_LIMIT_RANGE = (1, 500)  # campaigns per page of the admin listing
_TIE_ROOM = 64  # campaigns created in the same millisecond a page can step over
_UNTIL_FOREVER = "+inf"


@dataclass(frozen=True, slots=True)
class Standing:
    """One user's place in one campaign, for a grab button (claim.lua still decides)."""

    claimed: int
    claimed_today: int | None  # None: the campaign has no daily limit (nothing is counted)
    refusal: str | None  # the code a grab now would be refused with (stock aside); None: may

    @property
    def can_claim(self) -> bool:
        return self.refusal is None


class CampaignStore:
    def __init__(self, redis: Redis, scripts: Scripts, keyspace: KeySpace) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keyspace = keyspace

    async def now(self) -> int:
        return await server_time_ms(self._redis)

    async def create(self, spec: CampaignSpec, now_ms: int) -> CampaignView:
        keys = self._keyspace.campaign(spec.id)
        # Registry and indexes first: a crash in between leaves an id that points to
        # nothing (skipped by readers), never a campaign that consumers cannot find.
        # (NX: an id already taken keeps its own entries.)
        await self._redis.zadd(self._keyspace.registry, {spec.id: now_ms}, nx=True)
        await self._index(spec.id, spec.starts_at, spec.ends_at, nx=True)
        # Bucketed: indexed first, like the registry (readers check the campaign's own meta).
        indexed = spec.buckets > 1 and await self._redis.hsetnx(
            self._keyspace.bucketed, spec.id, spec.buckets)
        if spec.holdout is not None:  # the ledger's list of holdout streams to carry
            await self._redis.sadd(self._keyspace.holdout_streams, *(
                keys_.holdout for keys_ in self._keyspace.buckets(spec.id, spec.buckets)))
        if spec.draw is not None:  # the drawer's list (a member naming no draw is dropped)
            await self._redis.zadd(self._keyspace.draws_due, {spec.id: spec.draw.draw_at},
                                   nx=True)
        created = await self._scripts.create_campaign(keys, meta_fields(spec, now_ms))
        if created != 1:
            if indexed:
                await self._redis.hdel(self._keyspace.bucketed, spec.id)
            if created == -1:  # the entries just made are this request's: nobody else's
                await self._unindex(spec.id)
                raise ApiError(409, "campaign_retired",
                               f"Campaign {spec.id!r} existed and was retired; its records are "
                               "in the ledger under this id. Choose another id.")
            raise ApiError(409, "campaign_exists", f"A campaign with id {spec.id!r} exists.")
        if spec.buckets > 1:
            await create_buckets(self._redis, self._scripts, self._keyspace, spec.id,
                                 spec.buckets)
        return await self.get(spec.id)

    async def _index(self, campaign_id: str, starts_at: int, ends_at: int | None,
                     nx: bool = False) -> None:
        """The open index (GET /v1/campaigns) and the end index (the retention sweep)."""
        await self._redis.zadd(self._keyspace.open_campaigns, {campaign_id: starts_at}, nx=nx)
        ends = self._keyspace.campaign_ends
        if ends_at is not None:
            await self._redis.zadd(ends, {campaign_id: ends_at}, nx=nx)
        elif not nx:
            await self._redis.zrem(ends, campaign_id)

    async def _unindex(self, campaign_id: str) -> None:
        for index in (self._keyspace.registry, self._keyspace.open_campaigns,
                      self._keyspace.campaign_ends):
            await self._redis.zrem(index, campaign_id)

    async def get(self, campaign_id: str) -> CampaignView:
        meta = text_map(await self._redis.hgetall(self._keyspace.campaign(campaign_id).meta))
        if not meta:
            raise campaign_not_found(campaign_id)
        return await self._summed(CampaignView.from_meta(meta))

    async def _summed(self, view: CampaignView) -> CampaignView:
        return await summed_view(self._redis, self._keyspace, view)

    async def _parts(self, campaign_id: str) -> list[CampaignKeys]:
        """The keys of each of the campaign's buckets, as many as its own meta says."""
        n = await self._redis.hget(self._keyspace.campaign(campaign_id).meta, "buckets")
        return self._keyspace.buckets(campaign_id, int(n or 1))

    async def _mirror(self, campaign_id: str) -> None:
        """After a change to bucket 0's definition: copy it to the other buckets now (the
        sweeper redoes a copy this process did not finish)."""
        parts = await self._parts(campaign_id)
        if len(parts) > 1:
            await mirror_definition(self._redis, self._scripts, self._keyspace, campaign_id,
                                    len(parts))

    async def names(self, campaign_ids: list[str]) -> dict[str, str | None]:
        """Each campaign's name, in one round trip (None: gone after its retention)."""
        pipe = self._redis.pipeline(transaction=False)
        for campaign_id in campaign_ids:
            pipe.hget(self._keyspace.campaign(campaign_id).meta, "definition")
        found = await pipe.execute()
        return {campaign_id: None if raw is None else str(orjson.loads(raw)["name"])
                for campaign_id, raw in zip(campaign_ids, found, strict=True)}

    async def standings(self, views: list[CampaignView], user_id: str,
                        tags: tuple[str, ...], channel: str | None, now_ms: int
                        ) -> list[Standing]:
        """The user's standing in each campaign, in one round trip (blocklist aside)."""
        pipe = self._redis.pipeline(transaction=False)
        for view in views:
            keys = self._keyspace.campaign(
                bucket_key_id(view.id, home_bucket(user_id, view.buckets), view.buckets))
            pipe.hget(keys.users, user_id)
            pipe.hget(keys.daily, user_id)
        replies = await pipe.execute()
        return [_standing(view, int(held or 0), today, tags, channel, now_ms)
                for view, held, today in zip(views, replies[0::2], replies[1::2], strict=True)]

    async def stats(self, view: CampaignView) -> CampaignStats:
        """The live counts of a campaign just read (its counters are not read again)."""
        rejected: dict[str, int] = {}
        recorded = 0
        for keys in self._keyspace.buckets(view.id, view.buckets):
            for code, n in text_map(await self._redis.hgetall(keys.rejected)).items():
                rejected[code] = rejected.get(code, 0) + int(n)
            recorded += await self._recorded(keys.stream)
        stats = CampaignStats(granted=view.granted, remaining=view.remaining,
                              recorded=recorded, rejected=dict(sorted(rejected.items())))
        if view.budget is not None:
            currency = str(view.definition["coupons"][0]["currency"])
            stats.budget = BudgetFigures(amount=view.budget, currency=currency,
                                         committed=view.committed,
                                         remaining=view.budget - view.committed)
        return stats

    async def top_up_budget(self, campaign_id: str, delta: int) -> CampaignView:
        code, _ = await self._scripts.top_up_budget(self._keyspace.campaign(campaign_id), delta)
        if code == "campaign_not_found":
            raise campaign_not_found(campaign_id)
        if code == "no_budget":
            raise ApiError(409, "no_budget", "This campaign has no budget to top up.")
        return await self.get(campaign_id)

    async def _recorded(self, stream: str) -> int:
        """Entries ever added to the claim stream (trimming does not lower it)."""
        if not await self._redis.exists(stream):
            return 0
        info: dict[str, Any] = await self._redis.xinfo_stream(stream)
        return int(info["entries-added"])

    async def records(self, campaign_id: str, cursor: tuple[int, str], limit: int
                      ) -> Records:
        """A page of the claim streams: what was recorded, for load-test verdicts and audits.
        cursor: (bucket, entry id after which to read; "" from the start). A campaign with
        buckets is read bucket after bucket; its entry ids carry "<bucket>/" before them."""
        found, n = await self._redis.hmget(self._keyspace.campaign(campaign_id).meta,
                                           ["id", "buckets"])
        if found is None:
            raise campaign_not_found(campaign_id)
        parts = self._keyspace.buckets(campaign_id, int(n or 1))
        bucket, after = cursor
        claims: list[Record] = []
        while bucket < len(parts) and len(claims) < limit:
            # nothing follows the last possible id ("(" would overflow): the next bucket
            last = bool(after) and entry_order(after) == LAST_ENTRY
            page = [] if last else await self._redis.xrange(
                parts[bucket].stream, "(" + after if after else "-", "+",
                count=limit - len(claims)) or []
            mark = f"{bucket}/" if len(parts) > 1 else ""
            claims += [Record(entry_id=mark + str(entry_id), seq=int(fields["seq"]),
                              claim_id=str(fields["claim_id"]),
                              user_id=str(fields["user_id"]),
                              source=str(fields.get("source", "grab")),
                              source_ref=str(fields.get("source_ref", "")))
                       for entry_id, fields in page if fields]
            if len(claims) < limit:
                bucket, after = bucket + 1, ""
        return Records(claims=claims,
                       next=claims[-1].entry_id if len(claims) == limit else None)

    async def all_ids(self) -> list[str]:
        ids = await self._redis.zrange(self._keyspace.registry, 0, -1)
        return [str(i) for i in ids]

    async def list_open(self, now_ms: int) -> list[CampaignView]:
        """Campaigns that are scheduled or live, soonest start first.

        Reads the open index only (campaigns not yet ended), never the registry of
        every campaign ever made; an ended campaign found there is dropped from it.
        """
        index = self._keyspace.open_campaigns
        ids = [str(i) for i in await self._redis.zrange(index, 0, -1)]
        metas = await self._metas(ids)
        views = [await self._summed(CampaignView.from_meta(m)) for m in metas if m]
        over = [i for i, m in zip(ids, metas, strict=True) if not m]
        over += [v.id for v in views if v.status(now_ms) == "ended"]
        if over:
            await self._redis.zrem(index, *over)
        open_views = [v for v in views
                      if v.listed and v.status(now_ms) in ("scheduled", "live")]
        return open_views[:LIST_LIMIT]  # the index is ordered by starts_at

    async def _metas(self, ids: list[str]) -> list[dict[str, str]]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for campaign_id in ids:
                pipe.hgetall(self._keyspace.campaign(campaign_id).meta)
            return [text_map(m) for m in await pipe.execute()]

    async def list_all(self, status: str | None, after: tuple[int, str] | None, limit: int,
                       now_ms: int) -> tuple[list[CampaignView], tuple[int, str] | None]:
        """Every campaign, oldest first, `limit` a page; with `status`, only those in it.
        The cursor is the (created_at, id) of the last campaign of the previous page."""
        assert status is None or status in STATUSES
        found: list[CampaignView] = []
        cursor = after
        while len(found) < limit:
            low = cursor[0] if cursor else "-inf"
            page = await self._redis.zrange(self._keyspace.registry, low, _UNTIL_FOREVER,
                                            byscore=True, offset=0, num=limit + _TIE_ROOM,
                                            withscores=True)
            pairs = cast(list[tuple[bytes | str, float]], page)
            members = [(int(score), text(m)) for m, score in pairs]
            members = [x for x in members if cursor is None or x > cursor][:limit]
            if not members:
                return found, None
            for (created, campaign_id), meta in zip(members, await self._metas(
                    [m for _, m in members]), strict=True):
                cursor = (created, campaign_id)
                if meta:
                    view = await self._summed(CampaignView.from_meta(meta))
                    if status is None or view.status(now_ms) == status:
                        found.append(view)
                        if len(found) == limit:
                            return found, cursor
        return found, cursor

    async def patch(self, spec: CampaignSpec, base: CampaignView) -> CampaignView:
        """Apply a PATCH built on `base`; 409 if it changed meanwhile (the caller retries)."""
        coupons_change = spec.body["coupons"] != (base.accepted or {}).get("coupons")
        code, detail = await self._scripts.update_campaign(
            self._keyspace.campaign(base.id), base.rev, coupons_change, spec.ends_at,
            patched_fields(spec))
        if code == "campaign_not_found":
            raise campaign_not_found(base.id)
        if code == "conflict":
            raise ApiError(409, "conflict", "The campaign changed meanwhile; try again.")
        if code == "ended":
            raise ApiError(409, "campaign_ended", "An ended campaign cannot change.")
        if code == "coupons_fixed":
            raise ApiError(409, "coupons_fixed",
                           f"Coupons cannot change: {detail} claims were granted with them.")
        if code == "ends_in_past":
            raise ApiError(400, "invalid_request",
                           "ends_at must be in the future (POST .../end ends it now).")
        await self._index(base.id, base.starts_at, spec.ends_at)
        await self._mirror(base.id)
        return await self.get(base.id)

    async def end(self, campaign_id: str) -> CampaignView:
        keys = self._keyspace.campaign(campaign_id)
        code, detail = await self._scripts.end_campaign(keys)
        if code == "campaign_not_found":
            raise campaign_not_found(campaign_id)
        if code == "already_ended":
            raise ApiError(409, "campaign_ended", "This campaign has already ended.")
        await self._redis.zrem(self._keyspace.open_campaigns, campaign_id)
        await self._redis.zadd(self._keyspace.campaign_ends, {campaign_id: int(detail)})
        await self._mirror(campaign_id)
        return await self.get(campaign_id)

    async def set_paused(self, campaign_id: str, paused: bool) -> CampaignView:
        if not await self._scripts.set_paused(self._keyspace.campaign(campaign_id), paused):
            raise campaign_not_found(campaign_id)
        await self._mirror(campaign_id)
        return await self.get(campaign_id)

    async def adjust_stock(self, campaign_id: str, delta: int) -> CampaignView:
        """Stock is added to and withdrawn from bucket 0 (claims spread it from there); a
        withdrawal larger than bucket 0 holds first gathers the other buckets' stock."""
        keys = self._keyspace.campaign(campaign_id)
        code, stock, remaining = await self._scripts.adjust_stock(keys, delta, MAX_STOCK)
        if code is StockCode.INSUFFICIENT_STOCK and await self._gather(campaign_id):
            code, stock, remaining = await self._scripts.adjust_stock(keys, delta, MAX_STOCK)
        if code is StockCode.CAMPAIGN_NOT_FOUND:
            raise campaign_not_found(campaign_id)
        if code is StockCode.INSUFFICIENT_STOCK:
            raise ApiError(
                409, "insufficient_stock",
                f"Cannot withdraw {-delta}: only {remaining} remain unclaimed.",
            )
        if code is StockCode.UNLIMITED_STOCK:
            raise ApiError(409, "unlimited_stock", "This campaign's stock is unlimited.")
        if code is StockCode.STOCK_FIXED:
            raise ApiError(409, "stock_fixed", "This campaign's stock is its random_cash "
                                               "coupon's face values, fixed at creation.")
        if code is StockCode.STOCK_LIMIT:
            raise ApiError(
                409, "stock_limit", f"Total stock would exceed {MAX_STOCK} (it is {stock})."
            )
        return await self.get(campaign_id)


    async def _gather(self, campaign_id: str) -> bool:
        """Move the other buckets' stock into bucket 0; False for a campaign with one
        bucket (nothing to gather)."""
        parts = await self._parts(campaign_id)
        for b in range(1, len(parts)):
            remaining = int(await self._redis.hget(parts[b].meta, "remaining") or 0)
            if remaining > 0:
                await move_stock(self._redis, self._scripts, parts, b, 0, remaining)
        return len(parts) > 1


def _standing(view: CampaignView, claimed: int, today: bytes | str | None,
              tags: tuple[str, ...], channel: str | None, now_ms: int) -> Standing:
    """What claim.lua would answer this user now, in its order (window, pause, eligibility,
    limits), without the rate limits and stock: the grab button's view."""
    d = view.definition
    daily = view.per_user_daily_limit
    claimed_today = None
    if daily is not None:
        claimed_today = 0
        day, _, count = text(today or "").partition(":")
        if day and int(day) == local_day(d.get("timezone", DEFAULT_TIMEZONE), now_ms):
            claimed_today = int(count)
    held_tags = set(tags)
    eligible = (not d["channels"] or channel in d["channels"]) and \
        (not d["segments"] or bool(held_tags & set(d["segments"]))) and \
        not held_tags & set(d.get("exclude_segments", []))
    status = view.status(now_ms)
    refusal: str | None = None
    if status in ("scheduled", "ended", "paused"):
        refusal = {"scheduled": "not_started"}.get(status, status)
    elif not eligible:
        refusal = "not_eligible"
    elif claimed >= view.per_user_limit:
        refusal = "already_claimed"
    elif daily is not None and claimed_today is not None and claimed_today >= daily:
        refusal = "daily_limit"
    elif status == "sold_out":
        refusal = "sold_out"
    return Standing(claimed, claimed_today, refusal)

