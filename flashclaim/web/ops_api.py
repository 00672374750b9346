"""Operations routes (no /v1 prefix): liveness, readiness, the API description."""

from __future__ import annotations

import contextlib

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flashclaim.errors import unavailable
from flashclaim.store.connection import server_warnings
from flashclaim.web.http import error_response, json_response
from flashclaim.web.live_metrics import live_metrics
from flashclaim.web.metrics import exposition
from flashclaim.web.openapi import openapi_document
from flashclaim.web.services import services

_OPENAPI = openapi_document()


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    s = services(request)
    try:
        await s.redis.ping()
        loaded = await s.redis.script_exists(*s.scripts.shas)
        if not all(loaded):
            # After a restart or SCRIPT FLUSH: load now rather than on a claim.
            for source, ok in zip(s.scripts.sources, loaded, strict=True):
                if not ok:
                    await s.redis.script_load(source)  # the same text: the same SHA
        s.warnings = await server_warnings(s.redis)
    except RedisError as exc:
        return error_response(unavailable(f"Redis is not ready: {exc.__class__.__name__}."))
    return json_response({"status": "ready", "warnings": s.warnings})


async def metrics(request: Request) -> Response:
    """This process's claim counters, then the shared live-campaign and ledger figures."""
    s = services(request)
    body, content_type = exposition()
    with contextlib.suppress(RedisError):  # this process's metrics are still worth a scrape
        body += await live_metrics(s.redis, s.keyspace, await s.campaigns.now())
    return Response(body, media_type=content_type)


async def openapi_json(request: Request) -> Response:
    return json_response(_OPENAPI)


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
