"""Prometheus metrics: claims by outcome and their latency, for GET /metrics.

Per process; with several workers `serve` sets PROMETHEUS_MULTIPROC_DIR so that any
worker's /metrics reports the sum over all of them.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

CLAIMS = Counter("flashclaim_claims", "Claims answered, by outcome (granted, replay, or the "
                 "error code)", ["outcome"])
LATENCY = Histogram("flashclaim_claim_seconds", "Time to answer a claim",
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0))
_children: dict[str, Counter] = {}


def record_claim(outcome: str, seconds: float) -> None:
    child = _children.get(outcome)
    if child is None:
        child = _children[outcome] = CLAIMS.labels(outcome)
    child.inc()
    LATENCY.observe(seconds)


def exposition() -> tuple[bytes, str]:
    """The text format, and its content type."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
