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
- When a claim finds its home bucket sold out, the service moves stock in from the
  bucket holding the most (`refill`) and asks claim.lua once more. A user is refused
  `sold_out` only when every other bucket it read held none: stock in transfer at that
  moment is sellable again within TRANSFER_GRACE_MS plus one sweep.
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

from redis.asyncio import Redis

from flashclaim.campaigns import BUCKET_OWN, CampaignView
from flashclaim.keys import CampaignKeys, KeySpace, bucket_key_id, home_bucket
from flashclaim.packed import Transfer
from flashclaim.runtime.poll_loop import poll_forever
from flashclaim.store.connection import run_pipeline, server_time_ms, text_map
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
class Route:
    """Where one user's claims on one campaign are decided."""

    campaign_id: str
    buckets: int
    bucket: int

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


class BucketRouter:
    def __init__(self, redis: Redis, scripts: Scripts, keyspace: KeySpace,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keyspace = keyspace
        self._clock = clock
        self._layouts: dict[str, tuple[int, float]] = {}  # campaign -> (buckets, until)
        # One read in flight per campaign, in a task of its own: a crowd's first taps share
        # it, and a tap that goes away does not cancel it for the others (an entry lives
        # only while its read does).
        self._reading: dict[str, asyncio.Task[int]] = {}

    async def count(self, campaign_id: str) -> int:
        """How many buckets the campaign has (1 for an unknown id: claim.lua says not found)."""
        known = self._layouts.get(campaign_id)
        if known is not None and known[1] > self._clock():
            return known[0]
        reading = self._reading.get(campaign_id)
        if reading is None:
            reading = self._reading[campaign_id] = asyncio.create_task(
                self._read_count(campaign_id))
            reading.add_done_callback(lambda done: self._read_done(campaign_id, done))
        return await asyncio.shield(reading)

    def _read_done(self, campaign_id: str, done: asyncio.Task[int]) -> None:
        del self._reading[campaign_id]
        if not done.cancelled():
            done.exception()  # retrieved, also when every tap waiting for it went away

    async def _read_count(self, campaign_id: str) -> int:
        found, buckets = await self._redis.hmget(self._keyspace.campaign(campaign_id).meta,
                                                 ["id", "buckets"])
        if found is None:
            return 1
        n = int(buckets or 1)
        if len(self._layouts) >= _LAYOUT_ENTRIES:
            del self._layouts[next(iter(self._layouts))]
        self._layouts[campaign_id] = (n, self._clock() + _LAYOUT_TTL_S)
        return n

    async def route(self, campaign_id: str, user_id: str) -> Route:
        n = await self.count(campaign_id)
        return Route(campaign_id, n, home_bucket(user_id, n))

    async def refill(self, route: Route) -> bool:
        """After the route's bucket answered sold out: make stock sellable there if any
        bucket holds some. True: ask the bucket again (stock moved in, or another claim's
        refill moved some in meanwhile, or a transfer is on its way); False: no bucket
        held stock and none was moving when read, so the campaign is sold out."""
        parts = self._keyspace.buckets(route.campaign_id, route.buckets)
        async with self._redis.pipeline(transaction=False) as pipe:
            for keys in parts:
                pipe.hget(keys.meta, "remaining")
                pipe.hlen(keys.transfers_out)
            replies = await run_pipeline(pipe)
        held = [int(x or 0) for x in replies[0::2]]
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


async def move_stock(redis: Redis, scripts: Scripts, parts: list[CampaignKeys], src: int,
                     dst: int, most: int | None = None) -> int:
    """One logged transfer from bucket src to bucket dst: half of src's stock, or at most
    `most`. Returns the amount given (taken by dst unless dst does not exist yet)."""
    transfer_id = f"{src}-{dst}-{secrets.token_hex(8)}"
    amount = await scripts.bucket_give(parts[src], transfer_id, dst, most)
    if amount:
        await _finish(redis, scripts, parts[src], parts[dst], transfer_id, amount)
    return amount


async def _finish(redis: Redis, scripts: Scripts, src: CampaignKeys, dst: CampaignKeys,
                  transfer_id: str, amount: int) -> bool:
    """Take a given transfer into its bucket (once), then settle it out of the log."""
    if await scripts.bucket_take(dst, transfer_id, amount) < 0:
        return False  # the bucket is not created yet: the sweeper creates it, then retries
    await redis.hdel(src.transfers_out, transfer_id)
    return True


async def create_buckets(redis: Redis, scripts: Scripts, keyspace: KeySpace, campaign_id: str,
                         n: int, stock: int | None) -> None:
    """After bucket 0 was created with all the stock: create the others and give each its
    share. A crash here leaves stock in bucket 0 (claims move it on demand) and buckets
    to create (the sweeper creates them): nothing is lost or sold twice."""
    parts = keyspace.buckets(campaign_id, n)
    await mirror_definition(redis, scripts, keyspace, campaign_id, n)
    if stock is None:
        return
    for b in range(1, n):
        share = stock // n + (1 if b < stock % n else 0)
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
        await scripts.mirror_campaign(parts[b], b, n, defv, meta["stock"] == "", fields)


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
                        redis, scripts, keys, parts[t.to], transfer_id, t.amount):
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
            pipe.hmget(keys.meta, ["remaining", "granted"])
            pipe.hvals(keys.transfers_out)
        replies = await pipe.execute()
    counters, logs = replies[0::2], replies[1::2]
    unlimited = counters[0][0] in (b"", "")
    remaining = None if unlimited else sum(int(r or 0) for r, _ in counters)
    in_transfer = sum(Transfer.unpack(e).amount for entries in logs for e in entries)
    return Totals(remaining, sum(int(g or 0) for _, g in counters), in_transfer)


async def summed_view(redis: Redis, keyspace: KeySpace, view: CampaignView) -> CampaignView:
    """A bucketed campaign's counters are its buckets' sums; stock in transfer between two
    buckets is unclaimed, so it counts as remaining."""
    if view.buckets == 1:
        return view
    t = await totals(redis, keyspace, view.id, view.buckets)
    remaining = None if t.remaining is None else t.remaining + t.in_transfer
    return replace(view, remaining=remaining, granted=t.granted, in_transfer=t.in_transfer)


def bucket_seq(k: int, bucket: int, n: int) -> int:
    """The seq of bucket `bucket`'s k-th grant (k from 1), as claim.lua gives it."""
    return (k - 1) * n + bucket + 1


