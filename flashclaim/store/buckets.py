"""A hot campaign spread over several buckets, so its claims use several Redis masters.

A campaign created with `"buckets": n` keeps n copies of its decision state, each under
its own hash tag (keys.bucket_key_id), placed on different masters. Cross-slot
atomicity does not exist, so nothing here needs it:

- Each user has one home bucket (keys.home_bucket): every claim of that user is decided
  there by claim.lua, against the user's counts kept there. Per-user and daily limits,
  replays and rate limits stay exact, with no cross-bucket read.
- Each bucket sells only its own `remaining`. Stock moves between buckets in two
  scripts: bucket_give.lua takes it out of one bucket and logs the transfer, then
  bucket_take.lua adds it to the other once per transfer id. Between the two the
  stock is in neither bucket: never sold twice, only briefly unsellable. A crash in
  between leaves the log entry, which the sweeper (`sweep`) completes.
- When a claim finds its home bucket sold out (or out of budget), the service moves
  stock in from the bucket that can sell the most (`refill`) and asks claim.lua once
  more. A user is refused `sold_out` only when every other bucket it read held none:
  stock in transfer at that moment is sellable again within TRANSFER_GRACE_MS plus one
  sweep.
- A budget is shared the same way: each bucket holds a share of it, and a transfer moves
  grants' worth of both (units of one pack's stock and its face value of budget), so
  the buckets' budgets plus what is in transfer are the campaign's budget at all times.
- Bucket 0 holds the definition; the others copy it (mirror_campaign.lua), at once
  after each admin change and again on every sweep (a crashed copy is redone).

docs/design.md gives the whole argument.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import orjson
from redis.asyncio import Redis

from flashclaim.campaigns import BUCKET_OWN, CampaignView
from flashclaim.keys import CampaignKeys, KeySpace, bucket_key_id, home_bucket
from flashclaim.packed import Transfer
from flashclaim.runtime.poll_loop import poll_forever
from flashclaim.store.connection import run_pipeline, server_time_ms, text, text_map
from flashclaim.store.reads import bucketed_campaigns, run_async
from flashclaim.store.scripts import Scripts

log = logging.getLogger("flashclaim")

TRANSFER_GRACE_MS = 2000  # older transfers still in the log are completed by the sweeper
SWEEP_EVERY_S = 1.0
_TRANSFER_WAIT_S = 0.005  # a live transfer completes in two round trips
REFILL_ROUNDS = 8  # a claim asks its bucket again at most this many times
_LAYOUT_TTL_S = 5.0  # a campaign's bucket count never changes; the bound covers a re-created id
_LAYOUT_ENTRIES = 100_000  # only campaigns that exist are remembered, and at most this many


@dataclass(frozen=True, slots=True)
class Layout:
    """What the claim path needs of a campaign before claim.lua: its bucket count, and its
    cap group with the coupons a grant holds (docs/design.md, "Caps across campaigns")."""

    buckets: int = 1
    cap_group: str = ""  # "" when the campaign is in none
    pack: int = 1


@dataclass(frozen=True, slots=True)
class Route:
    """Where one user's claims on one campaign are decided."""

    campaign_id: str
    buckets: int
    bucket: int
    cap_group: str = ""
    pack: int = 1

    @property
    def key_id(self) -> str:
        """What the bucket's keys (and its claim ids) are named after."""
        return bucket_key_id(self.campaign_id, self.bucket, self.buckets)


@dataclass(frozen=True, slots=True)
class Totals:
    """A bucketed campaign's counters, summed over its buckets."""

    remaining: int | None  # None: unlimited stock
    granted: int
    in_transfer: int  # given by one bucket, not yet taken by another
    budget: int | None = None  # the buckets' budgets and what is in transfer; None: none
    committed: int = 0


def capacity(meta: list[str]) -> int:
    """How many more grants a bucket can sell, from its [remaining, budget, committed,
    unit_cost] (as bucket_give.lua counts it: an unlimited bucket without budget: none to
    give, so 0)."""
    remaining, budget, committed, unit_cost = (int(x) if x else None for x in meta)
    affords = None
    if budget is not None and unit_cost:
        affords = (budget - (committed or 0)) // unit_cost
    if remaining is None:
        return max(affords or 0, 0)
    return max(remaining if affords is None else min(remaining, affords), 0)


class BucketRouter:
    def __init__(self, redis: Redis, scripts: Scripts, keyspace: KeySpace,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keyspace = keyspace
        self._clock = clock
        self._layouts: dict[str, tuple[Layout, float]] = {}  # campaign -> (layout, until)
        # One read in flight per campaign, in a task of its own: a crowd's first taps share
        # it, and a tap that goes away does not cancel it for the others (an entry lives
        # only while its read does).
        self._reading: dict[str, asyncio.Task[Layout]] = {}

    async def count(self, campaign_id: str) -> int:
        """How many buckets the campaign has (1 for an unknown id: claim.lua says not found)."""
        return (await self.layout(campaign_id)).buckets

    async def layout(self, campaign_id: str) -> Layout:
        """The campaign's layout, read at most _LAYOUT_TTL_S ago (a cap group is set at
        creation, like the bucket count; the bound covers a re-created id)."""
        known = self._layouts.get(campaign_id)
        if known is not None and known[1] > self._clock():
            return known[0]
        reading = self._reading.get(campaign_id)
        if reading is None:
            reading = self._reading[campaign_id] = asyncio.create_task(
                self._read_layout(campaign_id))
            reading.add_done_callback(lambda done: self._read_done(campaign_id, done))
        return await asyncio.shield(reading)

    def _read_done(self, campaign_id: str, done: asyncio.Task[Layout]) -> None:
        del self._reading[campaign_id]
        if not done.cancelled():
            done.exception()  # retrieved, also when every tap waiting for it went away

    async def _read_layout(self, campaign_id: str) -> Layout:
        found, buckets, cap_group, coupons = [text(x) for x in await self._redis.hmget(
            self._keyspace.campaign(campaign_id).meta, ["id", "buckets", "cap_group", "coupons"])]
        if not found:
            return Layout()
        layout = Layout(int(buckets or 1), cap_group or "",
                        len(orjson.loads(coupons)) if cap_group and coupons else 1)
        if len(self._layouts) >= _LAYOUT_ENTRIES:
            del self._layouts[next(iter(self._layouts))]
        self._layouts[campaign_id] = (layout, self._clock() + _LAYOUT_TTL_S)
        return layout

    async def route(self, campaign_id: str, user_id: str) -> Route:
        layout = await self.layout(campaign_id)
        return Route(campaign_id, layout.buckets, home_bucket(user_id, layout.buckets),
                     layout.cap_group, layout.pack)

    async def refill(self, route: Route) -> bool:
        """After the route's bucket answered sold out (or out of budget): make grants
        sellable there if any bucket can sell some. True: ask the bucket again (units moved
        in, or another claim's refill moved some in meanwhile, or a transfer is on its
        way); False: no bucket could sell and nothing was moving when read, so the
        campaign is sold out (or its budget spent)."""
        parts = self._keyspace.buckets(route.campaign_id, route.buckets)
        async with self._redis.pipeline(transaction=False) as pipe:
            for keys in parts:
                pipe.hmget(keys.meta, _CAPACITY_FIELDS)
                pipe.hlen(keys.transfers_out)
            replies = await run_pipeline(pipe)
        held = [capacity([text(x) for x in meta]) for meta in replies[0::2]]
        if held[route.bucket] > 0:
            return True
        donors = sorted(((n, b) for b, n in enumerate(held) if b != route.bucket and n > 0),
                        reverse=True)
        for _, donor in donors:
            if await move_stock(self._redis, self._scripts, parts, donor, route.bucket):
                return True
        if any(replies[1::2]):  # stock between two buckets: ready in a moment
            await asyncio.sleep(_TRANSFER_WAIT_S)
            return True
        return False

    async def sweep_forever(self) -> None:
        async def once() -> None:
            await sweep(self._redis, self._scripts, self._keyspace)

        await poll_forever(once, asyncio.Event(), SWEEP_EVERY_S, "bucket sweep")


_CAPACITY_FIELDS = ["remaining", "budget", "committed", "unit_cost"]


async def move_stock(redis: Redis, scripts: Scripts, parts: list[CampaignKeys], src: int,
                     dst: int, most: int | None = None) -> int:
    """One logged transfer from bucket src to bucket dst: half of what src can sell, or at
    most `most` units (each a pack of stock and, with a budget, its face value of budget).
    Returns the units given (taken by dst unless dst does not exist yet)."""
    transfer_id = f"{src}-{dst}-{secrets.token_hex(8)}"
    units, budget, values = await scripts.bucket_give(parts[src], transfer_id, dst, most)
    if units:
        await _finish(redis, scripts, parts[src], parts[dst], transfer_id,
                      Transfer(dst, units, 0, budget, values))
    return units


async def _finish(redis: Redis, scripts: Scripts, src: CampaignKeys, dst: CampaignKeys,
                  transfer_id: str, t: Transfer) -> bool:
    """Take a given transfer into its bucket (once), then settle it out of the log."""
    if await scripts.bucket_take(dst, transfer_id, t.amount, t.budget, t.values) < 0:
        return False  # the bucket is not created yet: the sweeper creates it, then retries
    await redis.hdel(src.transfers_out, transfer_id)
    return True


async def create_buckets(redis: Redis, scripts: Scripts, keyspace: KeySpace, campaign_id: str,
                         n: int) -> None:
    """After bucket 0 was created with all the stock and budget: create the others and give
    each its share of the grants bucket 0 can sell (whole packs of stock and of budget;
    what a budget holds beyond a whole pack stays in bucket 0). A crash here leaves them
    in bucket 0 (claims move them on demand) and buckets to create (the sweeper creates
    them): nothing is lost or sold twice."""
    parts = keyspace.buckets(campaign_id, n)
    await mirror_definition(redis, scripts, keyspace, campaign_id, n)
    units = capacity([text(x) for x in await redis.hmget(parts[0].meta, _CAPACITY_FIELDS)])
    for b in range(1, n):
        share = units // n + (1 if b < units % n else 0)
        if share:
            await move_stock(redis, scripts, parts, 0, b, share)


async def mirror_definition(redis: Redis, scripts: Scripts, keyspace: KeySpace,
                            campaign_id: str, n: int) -> None:
    """Copy bucket 0's definition to every bucket behind it (creating missing ones)."""
    parts = keyspace.buckets(campaign_id, n)
    meta = text_map(await redis.hgetall(parts[0].meta))
    if not meta:
        return
    defv = int(meta.get("defv") or 0)
    async with redis.pipeline(transaction=False) as pipe:
        for keys in parts[1:]:
            pipe.hget(keys.meta, "defv")
        behind = [b for b, v in enumerate(await pipe.execute(), start=1)
                  if v is None or int(v) < defv]
    if not behind:
        return
    fields = [x for k, v in meta.items() if k not in BUCKET_OWN for x in (k, v)]
    for b in behind:
        await scripts.mirror_campaign(parts[b], b, n, defv, meta["stock"] == "",
                                      meta.get("budget", "") != "", fields)


async def sweep(redis: Redis, scripts: Scripts, keyspace: KeySpace,
                grace_ms: int = TRANSFER_GRACE_MS) -> int:
    """Every bucketed campaign: copy its definition where behind, and complete transfers
    left in the log longer than grace_ms (their giver crashed or stalled).
    Idempotent, so every service may run it at once. Returns the transfers completed."""
    done = 0
    now = await server_time_ms(redis)
    for campaign_id, n in (await run_async(redis, bucketed_campaigns(keyspace))).items():
        await mirror_definition(redis, scripts, keyspace, campaign_id, n)
        parts = keyspace.buckets(campaign_id, n)
        for keys in parts:
            log_ = text_map(await redis.hgetall(keys.transfers_out))
            for transfer_id, entry in log_.items():
                t = Transfer.unpack(entry)
                if now - t.at >= grace_ms and await _finish(
                        redis, scripts, keys, parts[t.to], transfer_id, t):
                    done += 1
                    log.info("campaign %s: completed stock transfer %s (%s coupons)",
                             campaign_id, transfer_id, t.amount)
    return done


async def totals(redis: Redis, keyspace: KeySpace, campaign_id: str, n: int) -> Totals:
    """Remaining, granted and in-transfer stock over the campaign's buckets (read bucket by
    bucket: under traffic, a sum of moments, exact once claims stop)."""
    parts = keyspace.buckets(campaign_id, n)
    async with redis.pipeline(transaction=False) as pipe:
        for keys in parts:
            pipe.hmget(keys.meta, ["remaining", "granted", "budget", "committed"])
            pipe.hvals(keys.transfers_out)
        replies = await pipe.execute()
    counters, logs = replies[0::2], replies[1::2]
    unlimited = counters[0][0] in (b"", "")
    remaining = None if unlimited else sum(int(c[0] or 0) for c in counters)
    moving = [Transfer.unpack(e) for entries in logs for e in entries]
    budgeted = counters[0][2] not in (b"", "", None)
    budget = (sum(int(c[2] or 0) for c in counters) + sum(t.budget for t in moving)
              if budgeted else None)
    return Totals(remaining, sum(int(c[1] or 0) for c in counters),
                  sum(t.amount for t in moving), budget, sum(int(c[3] or 0) for c in counters))


async def summed_view(redis: Redis, keyspace: KeySpace, view: CampaignView) -> CampaignView:
    """A bucketed campaign's counters are its buckets' sums; stock (and budget) in transfer
    between two buckets is unclaimed, so it counts as remaining."""
    if view.buckets == 1:
        return view
    t = await totals(redis, keyspace, view.id, view.buckets)
    remaining = None if t.remaining is None else t.remaining + t.in_transfer
    return replace(view, remaining=remaining, granted=t.granted, in_transfer=t.in_transfer,
                   budget=t.budget, committed=t.committed)


def bucket_seq(k: int, bucket: int, n: int) -> int:
    """The seq of bucket `bucket`'s k-th grant (k from 1), as claim.lua gives it."""
    return (k - 1) * n + bucket + 1


