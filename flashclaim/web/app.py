"""The ASGI app: routes, error mapping, and the lifespan that owns the Redis client."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flashclaim.errors import ApiError, store_failure
from flashclaim.runtime.lifeline import tie_to_parent
from flashclaim.settings import Settings
from flashclaim.store.connection import client_fault
from flashclaim.web import (
    admin_api,
    blocklist_api,
    checkout_api,
    code_api,
    grant_api,
    ops_api,
    pages_api,
    public_api,
    report_api,
    template_api,
    wallet_api,
)
from flashclaim.web.claim_endpoint import ClaimEndpoint, ClaimFrontDoor
from flashclaim.web.http import error_response, json_response
from flashclaim.web.services import Services

log = logging.getLogger("flashclaim")

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "invalid_request")
    return json_response({"error": code, "message": str(exc.detail)}, exc.status_code,
                         dict(exc.headers or {}))


async def _redis_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RedisError)
    return error_response(store_failure(exc))


async def _server_error(request: Request, exc: Exception) -> Response:
    fault = client_fault(exc)
    if fault is not None:
        return error_response(store_failure(fault))
    log.exception("unhandled error", exc_info=exc)
    return json_response({"error": "internal", "message": "Internal error."}, 500)


def create_app(settings: Settings | None = None) -> ClaimFrontDoor:
    tie_to_parent()  # a worker of `serve --workers N` dies with serve, even on SIGKILL
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = Services.build(settings)
        app.state.services = services
        try:
            await services.check_server()
        except RedisError as exc:  # start anyway; /readyz reports it until Redis answers
            log.warning("Redis not reachable at start-up: %s", exc)
        # Everything built so far lives as long as the process: keep it out of the
        # collector's way, and collect young objects less often (each claim allocates).
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        background = [asyncio.create_task(services.flush_gate_forever()),
                      asyncio.create_task(services.claims.blocklist.refresh_forever()),
                      asyncio.create_task(services.grant_runner.run_forever()),
                      asyncio.create_task(services.claims.buckets.sweep_forever()),
                      asyncio.create_task(services.codes.generate_forever())]
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            await services.flush_gate()
            await services.close()

    admin_routes = [*admin_api.routes, *template_api.routes, *blocklist_api.routes,
                    *grant_api.routes, *code_api.routes, *checkout_api.routes,
                    *report_api.routes]
    public_routes = [*public_api.routes, *code_api.public_routes, *wallet_api.routes]
    routes = {"all": [*public_routes, *admin_routes, *ops_api.routes, *pages_api.all_routes],
              "public": [*public_routes, *ops_api.routes, *pages_api.public_routes],
              "admin": [*admin_routes, *ops_api.routes, *pages_api.admin_routes]}[settings.role]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            RedisError: _redis_error,
            Exception: _server_error,
        },
    )
    if settings.role == "admin":
        return ClaimFrontDoor(app, None)  # the admin listener takes no claims
    claim = ClaimEndpoint(app, settings.max_in_flight)
    app.router.routes.append(Route("/v1/campaigns/{campaign_id}/claims", claim, methods=["POST"]))
    return ClaimFrontDoor(app, claim)
