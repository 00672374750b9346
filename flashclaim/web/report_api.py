"""Campaign statistics for operators, computed from the ledger (flashclaim.ledger.report).

Reports run on their own ledger reader (thread and connection): a long report never
queues in front of users' wallet reads.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flashclaim.errors import ApiError, campaign_not_found, invalid_request
from flashclaim.ledger.db import Ledger
from flashclaim.ledger.report import BUCKETS_MS, Population, build_report, campaign_body
from flashclaim.ledger.uplift import difference, tally_groups
from flashclaim.schemas.after import Uplift
from flashclaim.store.reads import ledger_lags, run_async
from flashclaim.stream import LEDGER_GROUP
from flashclaim.timefmt import parse_rfc3339, to_rfc3339
from flashclaim.validation import MAX_TIME_MS, MIN_TIME_MS
from flashclaim.web.http import answer, campaign_id_of
from flashclaim.web.services import services

MAX_WINDOW_MS = 92 * 86_400_000  # a quarter
MAX_BUCKETS = 10_000  # timeline points one window may ask for


def _bucket(request: Request, default: str) -> str:
    bucket = request.query_params.get("bucket", default)
    if bucket not in BUCKETS_MS:
        raise invalid_request(f"bucket must be one of {', '.join(BUCKETS_MS)}.")
    return bucket


_MARGIN_RE = re.compile(r"(?:0|1)(?:\.[0-9]{1,6})?")


def _margin(request: Request) -> float | None:
    """?margin=0.3: the operator's margin rate (0 to 1), for ROI; absent: no ROI shown."""
    raw = request.query_params.get("margin")
    if raw is None:
        return None
    if not _MARGIN_RE.fullmatch(raw) or float(raw) > 1:
        raise invalid_request("margin must be a rate from 0 to 1, such as 0.3.")
    return float(raw)


def _time(request: Request, name: str) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        raise invalid_request(f"{name} is required (an RFC 3339 time).")
    try:
        ms = parse_rfc3339(raw)
    except ValueError:
        ms = -1
    if not MIN_TIME_MS <= ms <= MAX_TIME_MS:
        raise invalid_request(f"{name} must be an RFC 3339 time with an offset, "
                              "between years 2000 and 2200.")
    return ms


async def campaign_report(request: Request) -> Response:
    s = services(request)
    campaign_id = campaign_id_of(request)
    bucket = _bucket(request, "minute")
    margin = _margin(request)
    name, stock, buckets = None, None, 1
    try:
        view = await s.campaigns.get(campaign_id)
        name, stock, buckets = view.definition["name"], view.stock, view.buckets
    except ApiError:  # removed after its retention: the ledger keeps its history
        pass
    now = await s.campaigns.now()
    population = Population(campaign_id=campaign_id)

    def read(ledger: Ledger) -> Any:
        return build_report(ledger, population, now, BUCKETS_MS[bucket], margin)
    report = await s.reports.read(read)
    if name is None and report.total.claims == 0:
        raise campaign_not_found(campaign_id)
    body = campaign_body(report, campaign_id, name, stock, bucket)
    streams = [part.stream for part in s.keyspace.buckets(campaign_id, buckets)]
    body.ledger_lag = sum(await run_async(s.redis, ledger_lags(streams, LEDGER_GROUP)))
    body.server_time = to_rfc3339(now)
    return answer(body)


async def report_across_campaigns(request: Request) -> Response:
    s = services(request)
    start, end = _time(request, "from"), _time(request, "to")
    if not 0 < end - start <= MAX_WINDOW_MS:
        raise invalid_request("to must be after from, at most 92 days later.")
    bucket = _bucket(request, "hour")
    margin = _margin(request)
    if (end - start) // BUCKETS_MS[bucket] > MAX_BUCKETS:
        raise invalid_request(f"more than {MAX_BUCKETS} {bucket}s: ask for a larger bucket.")
    now = await s.campaigns.now()
    population = Population(from_ms=start, to_ms=end)
    report = await s.reports.read(
        lambda ledger: build_report(ledger, population, now, BUCKETS_MS[bucket], margin))
    return answer(report.across(start, end, bucket, now))


async def uplift(request: Request) -> Response:
    """A holdout campaign's groups compared over [from, to) at ?margin= (required)."""
    s = services(request)
    campaign_id = campaign_id_of(request)
    start, end = _time(request, "from"), _time(request, "to")
    if not 0 < end - start <= MAX_WINDOW_MS:
        raise invalid_request("to must be after from, at most 92 days later.")
    margin = _margin(request)
    if margin is None:
        raise invalid_request("margin is required: the margin rate profit is counted at.")
    view = await s.campaigns.get(campaign_id)
    if view.holdout is None:
        raise ApiError(409, "no_holdout", "This campaign has no holdout to compare with.")
    treated, control = await s.reports.read(
        lambda ledger: tally_groups(ledger, campaign_id, start, end))
    found = difference(treated.profits(margin), control.profits(margin))
    return answer(Uplift(
        campaign_id=campaign_id, percent=view.holdout[0], from_=to_rfc3339(start),
        to=to_rfc3339(end), margin=margin,
        treatment=treated.figures(margin), control=control.figures(margin),
        uplift_per_user=None if found is None else round(found[0]),
        ci95=None if found is None else [round(found[1][0]), round(found[1][1])],
        server_time=to_rfc3339(await s.campaigns.now())))


routes = [
    Route("/campaigns/{campaign_id}/report", campaign_report, methods=["GET"]),
    Route("/report", report_across_campaigns, methods=["GET"]),
    Route("/campaigns/{campaign_id}/uplift", uplift, methods=["GET"]),
]
