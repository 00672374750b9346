"""Operator grants (and server-to-server triggers), behind the admin bearer token."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flashclaim.campaigns import personal_bounds
from flashclaim.errors import invalid_request
from flashclaim.schemas.issuance import grant_body
from flashclaim.store.grant_store import (
    GRANT_USERS_LIMIT_RANGE,
    MAX_GRANT_BODY,
    grant_request,
)
from flashclaim.validation import CAMPAIGN_ID_RE, ascii_int
from flashclaim.web.http import answer, campaign_id_of, query_limit, read_json
from flashclaim.web.services import services

audit = logging.getLogger("flashclaim.audit")


async def submit_grant(request: Request) -> Response:
    """Queue users for a grant; 202 with its state. Idempotent per (grant_id, user)."""
    s = services(request)
    campaign_id = campaign_id_of(request)
    body = await read_json(request, MAX_GRANT_BODY, required=True,
                           body_deadline_s=s.settings.body_timeout_s)
    grant = grant_request(grant_body(body))
    valued = [u for u in grant.users if u.value is not None]
    if valued:  # personal values: within the bounds the campaign's coupon sets
        bounds = personal_bounds((await s.campaigns.get(campaign_id)).definition)
        if bounds is None:
            raise invalid_request("This campaign has no coupon with personal values.")
        wrong = next((u for u in valued if not bounds[0] <= (u.value or 0) <= bounds[1]), None)
        if wrong is not None:
            raise invalid_request(f"{wrong.user_id}: value must be from {bounds[0]} to "
                                  f"{bounds[1]}.")
    status = await s.grants.submit(campaign_id, grant)
    s.grant_runner.wake()
    audit.info("grant submitted campaign=%s grant=%s users=%d", campaign_id, grant.grant_id,
               len(grant.users))
    return answer(status, 202)


async def get_grant(request: Request) -> Response:
    s = services(request)
    campaign_id = campaign_id_of(request)
    grant_id = request.path_params["grant_id"]
    if not CAMPAIGN_ID_RE.fullmatch(grant_id):
        raise invalid_request("A grant id is 1-64 chars of A-Za-z0-9_-.")
    cursor = ascii_int(request.query_params.get("cursor", "0"), 9)
    if cursor is None:
        raise invalid_request("cursor must be the `next` of a previous page.")
    limit = query_limit(request, GRANT_USERS_LIMIT_RANGE, 1000)
    status = await s.grants.status(campaign_id, grant_id)
    users, after = await s.grants.users_page(campaign_id, grant_id, cursor, limit)
    status.users, status.next = users, None if after is None else str(after)
    return answer(status)


routes = [
    Route("/campaigns/{campaign_id}/grants", submit_grant, methods=["POST"]),
    Route("/campaigns/{campaign_id}/grants/{grant_id}", get_grant, methods=["GET"]),
]
