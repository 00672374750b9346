"""What /metrics shows of the shared state: live campaigns and the ledger, read from Redis
at scrape time (so every worker and every instance reports the same figures).

Campaigns appear only while live (started, not ended), at most MAX_LIVE_CAMPAIGNS of them
(the latest started): the metrics' label cardinality is bounded.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from flashclaim.campaigns import CampaignView
from flashclaim.keys import KeySpace
from flashclaim.store.buckets import summed_view
from flashclaim.store.connection import text_map
from flashclaim.store.reads import ledger_lags, run_async

MAX_LIVE_CAMPAIGNS = 100


@dataclass(frozen=True, slots=True)
class LiveCampaign:
    id: str
    granted: int
    remaining: int | None  # None: unlimited stock
    ledger_lag: int  # claim-stream entries the ledger has not committed yet
    budget: int | None = None  # minor units; None: no budget
    committed: int = 0


@dataclass(frozen=True, slots=True)
class LiveFigures:
    campaigns: list[LiveCampaign]
    event_lag: int  # coupon events the ledger has not applied yet
    ledger_counts: dict[str, int]  # the ledger consumers' counters (KeySpace.ledger_stats)
    alert_counts: dict[str, int]  # risk alerts ever raised, per rule


async def live_figures(redis: Redis, keyspace: KeySpace, now_ms: int, group: str
                       ) -> LiveFigures:
    started = await redis.zrevrangebyscore(keyspace.open_campaigns, now_ms, "-inf", start=0,
                                           num=MAX_LIVE_CAMPAIGNS)
    pipe = redis.pipeline(transaction=False)
    for campaign_id in started:
        pipe.hgetall(keyspace.campaign(str(campaign_id)).meta)
    views = [await summed_view(redis, keyspace, CampaignView.from_meta(text_map(m)))
             for m in await pipe.execute() if m]
    live = [v for v in views if v.status(now_ms) != "ended" and now_ms >= v.starts_at]
    campaigns = []
    for v in live:
        streams = [p.stream for p in keyspace.buckets(v.id, v.buckets)]
        behind = sum(await run_async(redis, ledger_lags(streams, group)))
        campaigns.append(LiveCampaign(v.id, v.granted, v.remaining, behind, v.budget,
                                      v.committed))
    event_streams = [str(s) for s in await redis.smembers(keyspace.coupon_event_streams)]
    event_lag = sum(await run_async(redis, ledger_lags(event_streams, group)))
    stats = text_map(await redis.hgetall(keyspace.ledger_stats))
    alerts = text_map(await redis.hgetall(keyspace.risk_alert_counts))
    return LiveFigures(campaigns, event_lag, {k: int(v) for k, v in stats.items()},
                       {k: int(v) for k, v in alerts.items()})
