"""Routes for grab buttons: list and read campaigns (the claim is claim_endpoint)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flashclaim.web.http import campaign_id_of, json_response
from flashclaim.web.services import services


async def list_campaigns(request: Request) -> Response:
    store = services(request).campaigns
    now = await store.now()
    return json_response({"campaigns": [v.public(now) for v in await store.list_open(now)]})


async def get_campaign(request: Request) -> Response:
    store = services(request).campaigns
    view = await store.get(campaign_id_of(request))
    return json_response(view.public(await store.now()))


routes = [
    Route("/v1/campaigns", list_campaigns, methods=["GET"]),
    Route("/v1/campaigns/{campaign_id}", get_campaign, methods=["GET"]),
]
