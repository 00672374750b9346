"""Routes for grab buttons: list and read campaigns (the claim is claim_endpoint).

Every body carries "server_time" (the Redis clock the claim is decided on), so a
countdown runs on the server's time, not the phone's.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flashclaim.campaigns import CampaignView
from flashclaim.errors import invalid_request
from flashclaim.schemas.campaigns import Campaign, CampaignList, campaign_answer
from flashclaim.timefmt import to_rfc3339
from flashclaim.validation import CHANNEL_RE
from flashclaim.web.http import answer, campaign_id_of, personal
from flashclaim.web.services import Services, services


def _channel(request: Request) -> str | None:
    """?channel=: the channel a page would grab on (a campaign limited to others refuses)."""
    channel = request.query_params.get("channel")
    if channel is not None and not CHANNEL_RE.fullmatch(channel):
        raise invalid_request("channel must match " + CHANNEL_RE.pattern)
    return channel


async def _with_standings(s: Services, request: Request, views: list[CampaignView],
                          now: int) -> list[Campaign]:
    """Each campaign's public view; with the caller's identity (optional here) also what
    this user may do: claimed, claimed_today (null without a daily limit), can_claim and
    the refusal a grab now would get."""
    bodies = [campaign_answer(v, now) for v in views]
    if not s.authenticator.presented(request.headers):
        return bodies
    who = s.authenticator.authenticate(request.headers)
    standings = await s.campaigns.standings(views, who.user_id, who.tags, _channel(request),
                                            now)
    blocked = await s.claims.blocklist.is_blocked(who.user_id)
    for body, standing in zip(bodies, standings, strict=True):
        refusal = standing.refusal
        if blocked and refusal not in ("not_started", "ended", "paused", "not_eligible"):
            refusal = "blocked"  # claim.lua decides the blocklist after eligibility
        body.claimed, body.claimed_today = standing.claimed, standing.claimed_today
        body.can_claim, body.refusal = refusal is None, refusal
    return bodies


async def list_campaigns(request: Request) -> Response:
    s = services(request)
    now = await s.campaigns.now()
    bodies = await _with_standings(s, request, await s.campaigns.list_open(now), now)
    return personal(answer(CampaignList(campaigns=bodies, server_time=to_rfc3339(now))),
                    request)


async def get_campaign(request: Request) -> Response:
    s = services(request)
    view = await s.campaigns.get(campaign_id_of(request))
    now = await s.campaigns.now()
    [body] = await _with_standings(s, request, [view], now)
    body.server_time = to_rfc3339(now)
    return personal(answer(body), request)


routes = [
    Route("/v1/campaigns", list_campaigns, methods=["GET"]),
    Route("/v1/campaigns/{campaign_id}", get_campaign, methods=["GET"]),
]
