"""The ASGI app: routes, error mapping, and the lifespan that owns the Redis client."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from flashclaim.claim.decision import failure_answer
from flashclaim.errors import ApiError
from flashclaim.runtime.lifeline import tie_to_parent
from flashclaim.schemas.claims import Error
from flashclaim.settings import Settings
from flashclaim.store.connection import StoreError
from flashclaim.web import (
    admin_api,
    alert_api,
    audit,
    blocklist_api,
    cap_group_api,
    checkout_api,
    code_api,
    events_api,
    fair_api,
    grant_api,
    ops_api,
    order_api,
    pages_api,
    public_api,
    report_api,
    template_api,
    token_api,
    wallet_api,
    webhook_api,
)
from flashclaim.web.claim_endpoint import ClaimEndpoint, ClaimFrontDoor
from flashclaim.web.guards import (
    ADMIN_REFUSAL,
    CHECKOUT_REFUSAL,
    admin_token,
    checkout_token,
    guarded,
)
from flashclaim.web.http import answer, error_response
from flashclaim.web.services import Services

log = logging.getLogger("flashclaim")

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


class _Stopping(Exception):
    """The lifespan is over: the background task group stops."""


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "invalid_request")
    return answer(Error(error=code, message=str(exc.detail)), exc.status_code,
                  dict(exc.headers or {}))


async def _failure(request: Request, exc: Exception) -> Response:
    """A store failure, a fault inside the Redis client, or a bug (500, logged): the one
    mapping every route and the claim endpoint share (claim/decision.failure_answer)."""
    err = failure_answer(exc)
    if err is None:
        log.exception("unhandled error", exc_info=exc)
        return answer(Error(error="internal", message="Internal error."), 500)
    return error_response(err)


def create_app(settings: Settings | None = None) -> ClaimFrontDoor:
    tie_to_parent()  # a worker of `serve --workers N` dies with serve, even on SIGKILL
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Services]]:
        services = Services.build(settings)
        try:
            await services.check_server()
        except StoreError as exc:  # start anyway; /readyz reports it until Redis answers
            log.warning("Redis not reachable at start-up: %s", exc)
        # Everything built so far lives as long as the process: keep it out of the
        # collector's way, and collect young objects less often (each claim allocates).
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        try:
            async with asyncio.TaskGroup() as background:
                for job in (services.flush_gate_forever(),
                            services.claims.blocklist.refresh_forever(),
                            services.grant_runner.run_forever(),
                            services.claims.buckets.sweep_forever(),
                            services.codes.generate_forever(),
                            services.orders.sweep_forever(),
                            services.drawer.run_forever(),
                            services.schedules.run_forever(),
                            services.tokens.refresh_forever()):
                    background.create_task(job)
                yield {"services": services}  # each request's scope["state"]
                raise _Stopping  # ends the group: its tasks are cancelled and awaited
        except* _Stopping:
            pass
        finally:
            await services.flush_gate()
            await services.close()

    # Each guarded group is one Mount, its guard the Mount's middleware: no handler checks a
    # token. The checkout write-back (its own token) is matched before the admin API.
    admin_routes: list[BaseRoute] = [
        guarded("/v1/admin/coupons", checkout_api.routes, checkout_token, CHECKOUT_REFUSAL,
                "checkout"),
        guarded("/v1/checkout", order_api.routes, checkout_token, CHECKOUT_REFUSAL,
                "checkout"),
        *events_api.public_routes,  # its own token
        guarded("/v1/admin", [*admin_api.routes, *template_api.routes, *blocklist_api.routes,
                              *grant_api.routes, *code_api.routes, *report_api.routes,
                              *fair_api.routes, *alert_api.routes, *webhook_api.routes,
                              *events_api.routes, *token_api.routes, *audit.routes,
                              *cap_group_api.routes],
                admin_token, ADMIN_REFUSAL, inner=[Middleware(audit.AuditTrail)]),
    ]
    public_routes: list[BaseRoute] = [*public_api.routes, *code_api.public_routes,
                                      *wallet_api.routes, *order_api.public_routes,
                                      *fair_api.public_routes]
    by_role: dict[str, list[BaseRoute]] = {
        "all": [*public_routes, *admin_routes, *ops_api.routes, *pages_api.all_routes],
        "public": [*public_routes, *ops_api.routes, *pages_api.public_routes],
        "admin": [*admin_routes, *ops_api.routes, *pages_api.admin_routes]}
    routes = by_role[settings.role]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            StoreError: _failure,  # answered 503 (an Exception handler would re-raise it)
            Exception: _failure,  # a fault inside the Redis client (503) or a bug (500)
        },
    )
    if settings.role == "admin":
        return ClaimFrontDoor(app, None)  # the admin listener takes no claims
    claim = ClaimEndpoint(settings.max_in_flight)
    app.router.routes.append(Route("/v1/campaigns/{campaign_id}/claims", claim, methods=["POST"]))
    return ClaimFrontDoor(app, claim)
