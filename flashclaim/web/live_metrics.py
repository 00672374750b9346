"""The shared state behind /metrics: live campaigns and the ledger, read from Redis at
scrape time (so every worker and every instance reports the same figures).

Label cardinality is bounded: campaigns appear only while live (started, not ended),
at most MAX_LIVE_CAMPAIGNS of them (the latest started); ended campaigns drop out.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.asyncio import Redis

from flashclaim.campaigns import CampaignView
from flashclaim.keys import KeySpace
from flashclaim.store.buckets import summed_view
from flashclaim.store.connection import text_map

MAX_LIVE_CAMPAIGNS = 100
LEDGER_COUNTERS = {  # field of KeySpace.ledger_stats -> (metric, help)
    "written": ("flashclaim_ledger_claims_written", "Claims the ledger consumers committed"),
    "events": ("flashclaim_ledger_events_applied", "Coupon events the ledger consumers applied"),
    "expired": ("flashclaim_ledger_coupons_expired", "Coupons the expiry sweep marked expired"),
}


class _Fixed(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


async def live_metrics(redis: Redis, keyspace: KeySpace, now_ms: int, group: str = "ledger"
                       ) -> bytes:
    """The exposition text of the live-campaign and ledger metrics."""
    granted = GaugeMetricFamily("flashclaim_live_campaign_granted",
                                "Grants so far, per live campaign", labels=["campaign"])
    remaining = GaugeMetricFamily("flashclaim_live_campaign_remaining",
                                  "Stock left, per live campaign with limited stock",
                                  labels=["campaign"])
    lag = GaugeMetricFamily("flashclaim_ledger_lag_entries",
                            "Claim-stream entries the ledger has not committed yet, per live "
                            "campaign", labels=["campaign"])
    event_lag = GaugeMetricFamily("flashclaim_ledger_event_lag_entries",
                                  "Coupon events the ledger has not applied yet")
    started = await redis.zrevrangebyscore(keyspace.open_campaigns, now_ms, "-inf", start=0,
                                           num=MAX_LIVE_CAMPAIGNS)
    pipe = redis.pipeline(transaction=False)
    for campaign_id in started:
        pipe.hgetall(keyspace.campaign(str(campaign_id)).meta)
    views = [await summed_view(redis, keyspace, CampaignView.from_meta(text_map(m)))
             for m in await pipe.execute() if m]
    live = [v for v in views if v.status(now_ms) != "ended" and now_ms >= v.starts_at]
    lags = [sum(await _lags(redis, [p.stream for p in keyspace.buckets(v.id, v.buckets)], group))
            for v in live]
    for view, behind in zip(live, lags, strict=True):
        granted.add_metric([view.id], view.granted)
        if view.remaining is not None:
            remaining.add_metric([view.id], view.remaining)
        lag.add_metric([view.id], behind)
    event_streams = [str(s) for s in await redis.smembers(keyspace.coupon_event_streams)]
    event_lag.add_metric([], sum(await _lags(redis, event_streams, group)))
    stats = text_map(await redis.hgetall(keyspace.ledger_stats))
    counters: list[Metric] = []
    for name, (metric, text) in LEDGER_COUNTERS.items():
        counter = CounterMetricFamily(metric, text, labels=["group"])
        counter.add_metric([group], int(stats.get(f"{name}:{group}", 0)))
        counters.append(counter)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed([granted, remaining, lag, event_lag, *counters]))
    return generate_latest(registry)


async def _lags(redis: Redis, streams: list[str], group: str) -> list[int]:
    """Per stream: the group's pending plus undelivered entries (all of them when the
    group has not joined yet; 0 for a stream not created yet)."""
    pipe = redis.pipeline(transaction=False)
    for stream in streams:
        pipe.xinfo_groups(stream)
        pipe.xlen(stream)
    replies: list[Any] = await pipe.execute(raise_on_error=False)
    out = []
    for groups, length in zip(replies[::2], replies[1::2], strict=True):
        if isinstance(groups, Exception):  # no such stream
            out.append(0)
            continue
        g = next((x for x in groups if str(x["name"]) == group), None)
        if g is None:
            out.append(int(length))
        else:
            out.append(int(g["pending"]) + int(g.get("lag") or 0))
    return out
