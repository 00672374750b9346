"""Operator routes, behind the admin bearer token."""

from __future__ import annotations

import logging

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flashclaim.campaigns import STATUSES, CampaignView, values_left
from flashclaim.errors import ApiError, invalid_request
from flashclaim.schemas.base import decode
from flashclaim.schemas.campaigns import (
    AdminCampaign,
    AdminCampaignList,
    BudgetTopUp,
    StockDelta,
    campaign_answer,
    campaign_patch,
    campaign_spec,
    template_refs,
)
from flashclaim.store.campaign_store import CAMPAIGNS_LIMIT_RANGE, RECORDS_LIMIT_RANGE
from flashclaim.stream import split_records_cursor
from flashclaim.timefmt import to_rfc3339
from flashclaim.validation import CAMPAIGN_ID_RE, ascii_int
from flashclaim.web.http import (
    answer,
    campaign_id_of,
    query_limit,
    read_json,
)
from flashclaim.web.services import Services, services

audit = logging.getLogger("flashclaim.audit")


async def create_campaign(request: Request) -> Response:
    s = services(request)
    body = await read_json(request, s.settings.max_admin_body, required=True,
                           body_deadline_s=s.settings.body_timeout_s)
    now = await s.campaigns.now()
    spec = campaign_spec(body, now, await s.templates.lookup(template_refs(body)))
    if spec.cap_group is not None and not await s.cap_groups.exists(spec.cap_group):
        raise invalid_request(f"cap_group {spec.cap_group!r} does not exist: "
                              "PUT /v1/admin/cap-groups/{name} first.")
    view = await s.campaigns.create(spec, now)
    audit.info("campaign created id=%s stock=%d", view.id, view.stock)
    return answer(campaign_answer(view, now), 201)


async def get_campaign(request: Request) -> Response:
    s = services(request)
    campaign_id = campaign_id_of(request)
    view = await s.campaigns.get(campaign_id)
    await s.flush_gate()  # this process's answers from memory; other workers' within a second
    return answer(await _with_stats(s, view))


async def _with_stats(s: Services, view: CampaignView) -> AdminCampaign:
    shown = campaign_answer(view, await s.campaigns.now())
    return AdminCampaign(**msgspec.structs.asdict(shown), stats=await s.campaigns.stats(view))


async def list_campaigns(request: Request) -> Response:
    """Every campaign, oldest first, paged; ?status= keeps one status."""
    s = services(request)
    status = request.query_params.get("status")
    if status is not None and status not in STATUSES:
        raise invalid_request(f"status must be one of {', '.join(STATUSES)}.")
    limit = query_limit(request, CAMPAIGNS_LIMIT_RANGE, 100)
    after = _campaign_cursor(request.query_params.get("cursor", ""))
    now = await s.campaigns.now()
    views, last = await s.campaigns.list_all(status, after, limit, now)
    shown = [campaign_answer(v, now) for v in views]
    for c, v in zip(shown, views, strict=True):
        c.granted, c.created_at = v.granted, to_rfc3339(v.created_at)
    return answer(AdminCampaignList(campaigns=shown,
                                    next=None if last is None else f"{last[0]}.{last[1]}"))


def _campaign_cursor(raw: str) -> tuple[int, str] | None:
    if not raw:
        return None
    created, _, campaign = raw.partition(".")
    created_ms = ascii_int(created, 15)
    if created_ms is None or not CAMPAIGN_ID_RE.fullmatch(campaign):
        raise invalid_request("cursor must be the `next` of a previous page.")
    return created_ms, campaign


_PATCH_ATTEMPTS = 3  # PATCHes racing on one campaign: each retries on the newer revision


async def patch_campaign(request: Request) -> Response:
    s = services(request)
    campaign_id = campaign_id_of(request)
    body = await read_json(request, s.settings.max_admin_body, required=True,
                           body_deadline_s=s.settings.body_timeout_s)
    templates = await s.templates.lookup(template_refs(body))
    for attempt in range(_PATCH_ATTEMPTS):
        base = await s.campaigns.get(campaign_id)
        now = await s.campaigns.now()
        spec = campaign_patch(body, base.accepted or {}, now, templates)
        if "coupons" in body and (base.random or values_left(spec.coupons)):
            raise ApiError(409, "coupons_fixed", "A random_cash campaign's coupons (the "
                           "multiset of face values its stock is) are fixed at creation.")
        try:
            view = await s.campaigns.patch(spec, base)
        except ApiError as exc:
            if exc.code == "conflict" and attempt + 1 < _PATCH_ATTEMPTS:
                continue
            raise
        s.claims.campaign_changed(campaign_id)
        audit.info("campaign patched id=%s fields=%s", campaign_id, ",".join(sorted(body)))
        return answer(campaign_answer(view, now))
    raise AssertionError("unreachable")  # the last attempt returns or raises


async def end_campaign(request: Request) -> Response:
    s = services(request)
    view = await s.campaigns.end(campaign_id_of(request))
    s.claims.campaign_changed(view.id)
    audit.info("campaign ended id=%s", view.id)
    return answer(campaign_answer(view, await s.campaigns.now()))


async def pause(request: Request) -> Response:
    return await _set_paused(request, True)


async def resume(request: Request) -> Response:
    return await _set_paused(request, False)


async def _set_paused(request: Request, paused: bool) -> Response:
    s = services(request)
    view = await s.campaigns.set_paused(campaign_id_of(request), paused)
    s.claims.campaign_changed(view.id)
    audit.info("campaign %s id=%s", "paused" if paused else "resumed", view.id)
    return answer(campaign_answer(view, await s.campaigns.now()))


async def adjust_stock(request: Request) -> Response:
    s = services(request)
    campaign_id = campaign_id_of(request)
    delta = decode(await read_json(request, s.settings.max_admin_body, required=True,
                                   body_deadline_s=s.settings.body_timeout_s), StockDelta).delta
    if delta == 0:
        raise invalid_request("delta must not be 0.")
    view = await s.campaigns.adjust_stock(campaign_id, delta)
    s.claims.campaign_changed(campaign_id)
    audit.info("campaign stock id=%s delta=%d stock=%d", view.id, delta, view.stock)
    return answer(campaign_answer(view, await s.campaigns.now()))


async def top_up_budget(request: Request) -> Response:
    """A top-up: the budget raised atomically with the claims; the campaign and its stats."""
    s = services(request)
    campaign_id = campaign_id_of(request)
    delta = decode(await read_json(request, s.settings.max_admin_body, required=True,
                                   body_deadline_s=s.settings.body_timeout_s), BudgetTopUp).delta
    view = await s.campaigns.top_up_budget(campaign_id, delta)
    s.claims.campaign_changed(campaign_id)
    return answer(await _with_stats(s, view))


async def records(request: Request) -> Response:
    s = services(request)
    campaign_id = campaign_id_of(request)
    after = request.query_params.get("after", "")
    cursor = split_records_cursor(after) if after else (0, "")
    if cursor is None:  # Redis refuses an id out of range: a 400, not a 503
        raise invalid_request("after must be the `next` of a previous page, such as "
                              "1731283200000-0 (or 2/1731283200000-0 with buckets).")
    limit = query_limit(request, RECORDS_LIMIT_RANGE, 1000)
    return answer(await s.campaigns.records(campaign_id, cursor, limit))


routes = [
    Route("/campaigns", create_campaign, methods=["POST"]),
    Route("/campaigns", list_campaigns, methods=["GET"]),
    Route("/campaigns/{campaign_id}", get_campaign, methods=["GET"]),
    Route("/campaigns/{campaign_id}", patch_campaign, methods=["PATCH"]),
    Route("/campaigns/{campaign_id}/end", end_campaign, methods=["POST"]),
    Route("/campaigns/{campaign_id}/pause", pause, methods=["POST"]),
    Route("/campaigns/{campaign_id}/resume", resume, methods=["POST"]),
    Route("/campaigns/{campaign_id}/stock", adjust_stock, methods=["POST"]),
    Route("/campaigns/{campaign_id}/budget", top_up_budget, methods=["POST"]),
    Route("/campaigns/{campaign_id}/claims", records, methods=["GET"]),
]
