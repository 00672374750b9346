"""A fair sale's routes: a challenge to solve before a grab or an entry, entries into a
drawn campaign and their results, and (admin) the entries the draw is recomputed from."""

from __future__ import annotations

import re
import time

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flashclaim.claim.decision import ClaimCode, rejection
from flashclaim.claim.service import render_claim
from flashclaim.errors import ApiError
from flashclaim.fair.challenge import TOKEN_TTL_MS
from flashclaim.schemas.claims import Claim, claim_parts
from flashclaim.schemas.fair import ChallengeAnswer, EntriesPage, Entry, EntryAnswer
from flashclaim.store.entry_store import ENTRIES_LIMIT_RANGE, EntryStanding
from flashclaim.timefmt import to_rfc3339
from flashclaim.web.claim_endpoint import client_ip
from flashclaim.web.http import (
    EMPTY,
    answer,
    campaign_id_of,
    personal,
    query_cursor,
    query_limit,
    read_json,
)
from flashclaim.web.services import services

_SCAN_CURSOR_RE = re.compile(r"[1-9][0-9]{0,19}")


async def challenge(request: Request) -> Response:
    """A token for this user and campaign to solve (no Redis write: it is stateless). Only
    from starts_at on: a challenge solved in advance would let a farm pre-compute its
    claims during the countdown, and the work would stop nothing at 00:00."""
    s = services(request)
    campaign_id = campaign_id_of(request)
    who = s.authenticator.authenticate(request.headers)
    bits, starts_at = await s.entries.difficulty(campaign_id)
    if bits is None:
        raise ApiError(409, "challenge_not_required", "This campaign asks for no challenge.")
    now = await s.campaigns.now()
    if now < starts_at:
        raise rejection(ClaimCode.NOT_STARTED)
    token = s.claims.fairness.challenges.issue(campaign_id, who.user_id, bits, now)
    body = ChallengeAnswer(token=token, difficulty=bits,
                           expires_at=to_rfc3339(now + TOKEN_TTL_MS), server_time=to_rfc3339(now))
    return personal(answer(body), request)


async def enter(request: Request) -> Response:
    """Enter a drawn campaign: 201, or 200 for an entry made before (idempotent)."""
    s = services(request)
    campaign_id = campaign_id_of(request)
    who = s.authenticator.authenticate(request.headers)
    body = await read_json(request, s.settings.max_claim_body, required=False,
                           body_deadline_s=s.settings.body_timeout_s)
    channel, proof = (None, None) if body is EMPTY else claim_parts(body)
    ip = client_ip(request.scope, request.headers, s.settings.client_ip_header)
    entered_at, new = await s.claims.enter(campaign_id, who, channel, ip, proof)
    standing = EntryStanding(entered_at, "open", None)
    return personal(answer(_entry(campaign_id, who.user_id, standing), 201 if new else 200),
                    request)


async def my_entry(request: Request) -> Response:
    """Whether the caller entered, and (once drawn) whether it won: its claim if so."""
    s = services(request)
    campaign_id = campaign_id_of(request)
    who = s.authenticator.authenticate(request.headers)
    standing = await s.entries.standing(campaign_id, who.user_id)
    return personal(answer(_entry(campaign_id, who.user_id, standing)), request)


def _entry(campaign_id: str, user_id: str, standing: EntryStanding) -> EntryAnswer:
    claim = None
    if standing.claim is not None:
        claim = msgspec.convert(render_claim(standing.claim), Claim)
    result = "pending"
    if claim is not None:
        result = "won"
    elif standing.draw_state == "done":
        result = "lost"
    entered_at = standing.entered_at
    return EntryAnswer(campaign_id=campaign_id, user_id=user_id,
                       entered=entered_at is not None,
                       entered_at=None if entered_at is None else to_rfc3339(entered_at),
                       result=result, claim=claim,
                       server_time=to_rfc3339(int(time.time() * 1000)))


async def entries(request: Request) -> Response:
    """Every entrant, a page at a time (the draw's input: with the seed, its winners)."""
    s = services(request)
    campaign_id = campaign_id_of(request)
    cursor = query_cursor(request, _SCAN_CURSOR_RE)
    limit = query_limit(request, ENTRIES_LIMIT_RANGE, 1000)
    rows, nxt = await s.entries.page(campaign_id, int(cursor or 0), limit)
    page = EntriesPage(entries=[Entry(user_id=u, entered_at=to_rfc3339(at)) for u, at in rows],
                       next=str(nxt) if nxt else None)
    return answer(page)


routes = [Route("/campaigns/{campaign_id}/entries", entries, methods=["GET"])]
public_routes = [
    Route("/v1/campaigns/{campaign_id}/challenge", challenge, methods=["GET"]),
    Route("/v1/campaigns/{campaign_id}/entries", enter, methods=["POST"]),
    Route("/v1/campaigns/{campaign_id}/entries/me", my_entry, methods=["GET"]),
]
