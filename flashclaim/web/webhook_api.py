"""Webhook endpoints (admin): create (the secret shown once), list, delete, the deliveries
of one, and replays."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flashclaim.errors import invalid_request
from flashclaim.schemas.base import UNSET, decode, epoch_ms
from flashclaim.schemas.webhooks import (
    DeadEvent,
    Deliveries,
    Delivery,
    ReplayBody,
    Replayed,
    Webhook,
    WebhookList,
    webhook_create,
)
from flashclaim.timefmt import to_rfc3339
from flashclaim.web.http import answer, query_limit, read_json
from flashclaim.web.services import services
from flashclaim.webhooks.endpoints import Endpoint

DELIVERIES_LIMIT_RANGE = (1, 1000)


def _shown(e: Endpoint, waiting: int | None = None, secret: bool = False) -> Webhook:
    return Webhook(id=e.id, url=e.url, events=list(e.events), expiring_days=e.expiring_days,
                   created_at=to_rfc3339(e.created_at), secret=e.secret if secret else UNSET,
                   waiting=UNSET if waiting is None else waiting)


async def create(request: Request) -> Response:
    s = services(request)
    body = webhook_create(await read_json(request, s.settings.max_admin_body, required=True,
                                          body_deadline_s=s.settings.body_timeout_s))
    endpoint = await s.webhooks.create(body.url, body.events, body.expiring_days)
    return answer(_shown(endpoint, secret=True), 201)


async def list_webhooks(request: Request) -> Response:
    s = services(request)
    return answer(WebhookList(webhooks=[_shown(e) for e in await s.webhooks.all()]))


async def delete(request: Request) -> Response:
    s = services(request)
    await s.webhooks.delete(request.path_params["webhook_id"])
    return Response(status_code=204)


async def deliveries(request: Request) -> Response:
    s = services(request)
    endpoint_id = request.path_params["webhook_id"]
    limit = query_limit(request, DELIVERIES_LIMIT_RANGE, 100)
    rows, waiting = await s.webhooks.deliveries(endpoint_id, limit)
    dead = await s.webhooks.dead(endpoint_id, limit)
    return answer(Deliveries(
        deliveries=[Delivery(event_id=r["event_id"], type=r["type"], attempt=int(r["attempt"]),
                             status=int(r["status"]), ms=int(r["ms"]), error=r["error"],
                             at=to_rfc3339(int(r["at"]))) for r in rows],
        waiting=waiting,
        dead=[DeadEvent(event_id=d["id"], type=d["type"], attempts=int(d["attempts"]),
                        last_status=int(d["last_status"]), last_error=d["last_error"])
              for d in dead]))


async def replay(request: Request) -> Response:
    s = services(request)
    body = decode(await read_json(request, s.settings.max_admin_body, required=True,
                                  body_deadline_s=s.settings.body_timeout_s), ReplayBody)
    if body.event_id is None and body.from_ is None:
        raise invalid_request("Send event_id, or from (and optionally until).")
    since = None if body.from_ is None else epoch_ms(body.from_, "from")
    until = None if body.until is None else epoch_ms(body.until, "until")
    queued = await s.webhooks.replay(request.path_params["webhook_id"], body.event_id, since,
                                     until)
    return answer(Replayed(queued=queued), 202)


routes = [
    Route("/webhooks", create, methods=["POST"]),
    Route("/webhooks", list_webhooks, methods=["GET"]),
    Route("/webhooks/{webhook_id}", delete, methods=["DELETE"]),
    Route("/webhooks/{webhook_id}/deliveries", deliveries, methods=["GET"]),
    Route("/webhooks/{webhook_id}/replay", replay, methods=["POST"]),
]
