"""Routes for grab buttons: list and read campaigns (the claim is claim_endpoint).

Every body carries "server_time" (the Redis clock the claim is decided on), so a
countdown runs on the server's time, not the phone's.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flashclaim.timefmt import to_rfc3339
from flashclaim.web.http import campaign_id_of, json_response
from flashclaim.web.services import services


async def list_campaigns(request: Request) -> Response:
    store = services(request).campaigns
    now = await store.now()
    return json_response({"campaigns": [v.public(now) for v in await store.list_open(now)],
                          "server_time": to_rfc3339(now)})


async def get_campaign(request: Request) -> Response:
    """With the caller's identity (optional here), also what this user may do."""
    s = services(request)
    view = await s.campaigns.get(campaign_id_of(request))
    who = s.authenticator.authenticate(request.headers) \
        if s.authenticator.presented(request.headers) else None
    now = await s.campaigns.now()
    body = view.public(now)
    if who is not None:
        standing = await s.campaigns.standing(view, who.user_id, who.tags, now)
        body["claimed"] = standing.claimed
        body["claimed_today"] = standing.claimed_today
        body["can_claim"] = standing.can_claim and \
            not await s.claims.blocklist.is_blocked(who.user_id)
    body["server_time"] = to_rfc3339(now)
    return json_response(body)


routes = [
    Route("/v1/campaigns", list_campaigns, methods=["GET"]),
    Route("/v1/campaigns/{campaign_id}", get_campaign, methods=["GET"]),
]
