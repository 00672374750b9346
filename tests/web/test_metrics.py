"""Claim metrics are tallied per claim and handed to Prometheus in bulk: the result is what
observing each claim would have given."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.metrics import MetricWrapperBase

from flashclaim.settings import Settings
from flashclaim.web.metrics import CLAIMS, LATENCY, LATENCY_BUCKETS, flush_claims, record_claim
from flashclaim.web.services import Services

from helpers import app_client


def samples(metric: MetricWrapperBase) -> dict[tuple[str, str], float]:
    return {(s.name.rsplit("_", 1)[-1], s.labels.get("le", s.labels.get("outcome", ""))): s.value
            for family in metric.collect() for s in family.samples
            if not s.name.endswith("_created")}


def test_a_bulk_flush_equals_observing_each_claim() -> None:
    durations = [0.0004, 0.001, 0.0011, 0.0025, 0.003, 0.04, 0.7, 1.0, 3.5] * 7
    reference = Histogram("reference_seconds", "each observed", buckets=LATENCY_BUCKETS,
                          registry=CollectorRegistry())
    for d in durations:
        reference.observe(d)
    flush_claims()
    before, before_claims = samples(LATENCY), samples(CLAIMS)
    for d in durations:
        record_claim("sold_out", d)
    assert samples(LATENCY) == before  # tallied, not handed over yet
    flush_claims()
    after = samples(LATENCY)
    expected = samples(reference)
    # (the sum is a float added to what other tests recorded: equal up to rounding)
    assert {k: after[k] - before.get(k, 0.0) for k in after} == pytest.approx(expected)
    grown = samples(CLAIMS)[("total", "sold_out")] - before_claims.get(("total", "sold_out"), 0)
    assert grown == len(durations)


async def test_the_services_once_a_second_job_hands_the_tally_over(settings: Settings) -> None:
    """With several workers a scrape reads every worker's shared counters, but only the
    scraped worker flushes at the scrape: the others' claims arrive through the job that
    runs every second (Services.flush_gate)."""
    app = app_client(settings)
    async with app:
        services: Services = app.state["services"]
        flush_claims()
        before = samples(CLAIMS).get(("total", "paused"), 0.0)
        record_claim("paused", 0.002)
        assert samples(CLAIMS).get(("total", "paused"), 0.0) == before
        await services.flush_gate()
        assert samples(CLAIMS)[("total", "paused")] == before + 1
