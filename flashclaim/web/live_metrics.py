"""/metrics' shared figures (store/live.py reads them) as Prometheus families."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from flashclaim.store.live import LiveFigures
from flashclaim.stream import LEDGER_GROUP

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


def live_metrics(figures: LiveFigures, group: str = LEDGER_GROUP) -> bytes:
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
    committed = GaugeMetricFamily("flashclaim_live_campaign_budget_committed",
                                  "Face value granted so far (minor units), per live campaign "
                                  "with a budget", labels=["campaign"])
    budget_left = GaugeMetricFamily("flashclaim_live_campaign_budget_remaining",
                                    "Budget left (minor units), per live campaign with one",
                                    labels=["campaign"])
    for c in figures.campaigns:
        if c.budget is not None:
            committed.add_metric([c.id], c.committed)
            budget_left.add_metric([c.id], c.budget - c.committed)
        granted.add_metric([c.id], c.granted)
        if c.remaining is not None:
            remaining.add_metric([c.id], c.remaining)
        lag.add_metric([c.id], c.ledger_lag)
    event_lag.add_metric([], figures.event_lag)
    counters: list[Metric] = []
    for name, (metric, text) in LEDGER_COUNTERS.items():
        counter = CounterMetricFamily(metric, text, labels=["group"])
        counter.add_metric([group], figures.ledger_counts.get(f"{name}:{group}", 0))
        counters.append(counter)
    alerts = CounterMetricFamily("flashclaim_alerts", "Risk alerts raised, per rule",
                                 labels=["rule"])
    for rule, count in sorted(figures.alert_counts.items()):
        alerts.add_metric([rule], count)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed([granted, remaining, lag, event_lag, committed, budget_left,
                              *counters, alerts]))
    return generate_latest(registry)
