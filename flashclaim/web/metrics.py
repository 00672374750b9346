"""Prometheus metrics: claims by outcome and their latency, for GET /metrics.

Per process; with several workers `serve` sets PROMETHEUS_MULTIPROC_DIR so that any
worker's /metrics reports the sum over all of them.

A claim only adds to plain counters here (`record_claim`); `flush_claims` hands them to the
Prometheus objects in bulk, at every scrape of this process and once a second from the
service's background job, so another worker's scrape sees this worker's claims at most a
second late. (Each Prometheus update takes a lock and, in multiprocess mode, writes a
memory-mapped file: once per claim that was a few per cent of a tap after sell-out.)
"""

from __future__ import annotations

import os
from bisect import bisect_left

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
CLAIMS = Counter("flashclaim_claims", "Claims answered, by outcome (granted, replay, or the "
                 "error code)", ["outcome"])
LATENCY = Histogram("flashclaim_claim_seconds", "Time to answer a claim",
                    buckets=LATENCY_BUCKETS)
IN_LISTENER = Counter("flashclaim_claims_in_listener", "Claims the listener answered from "
                      "memory, without an ASGI cycle (web/http_server.py); also in claims")

_outcomes: dict[str, int] = {}
_in_bucket = [0] * (len(LATENCY_BUCKETS) + 1)  # the last: above every bound (+Inf)
_seconds = [0.0]
_in_listener = [0]


def record_claim(outcome: str, seconds: float, in_listener: bool = False) -> None:
    _outcomes[outcome] = _outcomes.get(outcome, 0) + 1
    _in_listener[0] += in_listener
    # a latency equal to a bound is in that bound's bucket (Prometheus' `le`)
    _in_bucket[bisect_left(LATENCY_BUCKETS, seconds)] += 1
    _seconds[0] += seconds


def flush_claims() -> None:
    """Add what `record_claim` tallied since the last flush to the Prometheus metrics."""
    if not _outcomes:
        return
    for outcome, n in _outcomes.items():
        CLAIMS.labels(outcome).inc(n)
    _outcomes.clear()
    # Histogram has no bulk observe: its per-bucket values (not cumulative) and its sum are
    # what observe() increments (tests/web/test_live_metrics.py holds the result to it).
    for bucket, n in zip(LATENCY._buckets, _in_bucket, strict=True):
        if n:
            bucket.inc(n)
    LATENCY._sum.inc(_seconds[0])
    _in_bucket[:] = [0] * len(_in_bucket)
    _seconds[0] = 0.0
    if _in_listener[0]:
        IN_LISTENER.inc(_in_listener[0])
        _in_listener[0] = 0


def exposition() -> tuple[bytes, str]:
    """The text format, and its content type."""
    flush_claims()
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
