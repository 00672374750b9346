"""Operations routes (no /v1 prefix): liveness, readiness, the API description."""

from __future__ import annotations

import contextlib

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flashclaim.errors import unavailable
from flashclaim.schemas.base import encode
from flashclaim.schemas.claims import Health, Ready
from flashclaim.store.connection import StoreError, server_warnings
from flashclaim.store.live import live_figures
from flashclaim.stream import LEDGER_GROUP
from flashclaim.web.http import answer, error_response, json_response
from flashclaim.web.live_metrics import live_metrics
from flashclaim.web.metrics import exposition
from flashclaim.web.openapi import openapi_document
from flashclaim.web.services import services

_OPENAPI = openapi_document()
_ALIVE = encode(Health(status="ok"))  # the cheapest answer: the benchmarks' ceiling


async def healthz(request: Request) -> Response:
    return Response(_ALIVE, media_type="application/json")


async def readyz(request: Request) -> Response:
    s = services(request)
    try:
        await s.scripts.ensure_loaded()
        s.warnings = await server_warnings(s.redis)
    except StoreError as exc:
        return error_response(unavailable(f"Redis is not ready: {exc.__class__.__name__}."))
    return answer(Ready(status="ready", warnings=s.warnings))


async def metrics(request: Request) -> Response:
    """This process's claim counters, then the shared live-campaign and ledger figures."""
    s = services(request)
    body, content_type = exposition()
    with contextlib.suppress(StoreError):  # this process's metrics are still worth a scrape
        figures = await live_figures(s.redis, s.keyspace, await s.campaigns.now(), LEDGER_GROUP)
        body += live_metrics(figures)
    return Response(body, media_type=content_type)


async def openapi_json(request: Request) -> Response:
    return json_response(_OPENAPI)


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
