"""Routes for grab buttons: list and read campaigns (the claim is claim_endpoint)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flashclaim.http import json_response
from flashclaim.services import services
from flashclaim.validation import campaign_id


def campaign_id_of(request: Request) -> str:
    return campaign_id(request.path_params["campaign_id"])


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
