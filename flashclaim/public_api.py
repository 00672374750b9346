"""Routes for grab buttons: list and read campaigns, claim."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flashclaim.errors import invalid_request
from flashclaim.http import EMPTY, json_response, read_json
from flashclaim.services import services
from flashclaim.validation import CAMPAIGN_ID_RE, CHANNEL_RE, IDEMPOTENCY_KEY_RE, Obj


def campaign_id_of(request: Request) -> str:
    campaign_id: str = request.path_params["campaign_id"]
    if not CAMPAIGN_ID_RE.match(campaign_id):
        raise invalid_request("A campaign id is 1-64 chars of A-Za-z0-9_-.")
    return campaign_id


async def list_campaigns(request: Request) -> Response:
    store = services(request).campaigns
    now = await store.now()
    return json_response({"campaigns": [v.public(now) for v in await store.list_open(now)]})


async def get_campaign(request: Request) -> Response:
    store = services(request).campaigns
    view = await store.get(campaign_id_of(request))
    return json_response(view.public(await store.now()))


async def claim(request: Request) -> Response:
    s = services(request)
    campaign_id = campaign_id_of(request)
    who = s.authenticator.authenticate(request.headers)
    idempotency_key = request.headers.get("idempotency-key")
    if idempotency_key is not None and not IDEMPOTENCY_KEY_RE.match(idempotency_key):
        raise invalid_request("Idempotency-Key must be 1-255 printable ASCII characters.")
    body = await read_json(request, s.settings.max_claim_body, required=False)
    channel = None
    if body is not EMPTY:
        o = Obj(body, "body")
        channel = o.string("channel", CHANNEL_RE, max_len=32, default="") or None
        o.done()
    outcome = await s.claims.claim(campaign_id, who, channel, idempotency_key)
    return json_response(outcome.claim, outcome.status)


routes = [
    Route("/v1/campaigns", list_campaigns, methods=["GET"]),
    Route("/v1/campaigns/{campaign_id}", get_campaign, methods=["GET"]),
    Route("/v1/campaigns/{campaign_id}/claims", claim, methods=["POST"]),
]
