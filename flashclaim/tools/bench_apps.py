"""The two yardsticks `flashclaim bench` measures the service against, each run under the same
uvicorn and listener as the service (`python -m flashclaim.tools.bench_apps KIND HOST PORT`):

- `bare`: the cheapest refusal an ASGI app can give: it reads the request body and answers a
  fixed 410 with a JSON body. A tap answered from memory can at best cost this.
- `naive`: the obvious claim service: Starlette and redis-py's asyncio client, one EVALSHA of
  the same claim.lua per request (no coalescing, no gate), the same server and fsync.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from flashclaim.claim.decision import ClaimRequest
from flashclaim.coupons import new_claim_id
from flashclaim.keys import KeySpace
from flashclaim.settings import Settings
from flashclaim.store.scripts import Scripts

_GONE = orjson.dumps({"error": "sold_out", "message": "All coupons have been claimed."})
_HEADERS = [(b"content-type", b"application/json"),
            (b"content-length", str(len(_GONE)).encode())]
_READY = [(b"content-type", b"application/json"), (b"content-length", b"2")]


async def bare(scope: Scope, receive: Receive, send: Send) -> None:
    """Read the body, answer 410 (lifespan events are acknowledged)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["method"] == "GET":  # readiness, for the bench to wait on
        await send({"type": "http.response.start", "status": 200, "headers": _READY})
        await send({"type": "http.response.body", "body": b"{}"})
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 410, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _GONE})


def naive() -> Starlette:
    """One EVALSHA per claim: POST /v1/campaigns/{campaign_id}/claims with X-User-Id."""
    settings = Settings.from_env()
    keyspace = KeySpace(settings.namespace)
    held: dict[str, Scripts] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        redis = Redis.from_url(settings.redis_url or "", decode_responses=True)
        held["scripts"] = Scripts(redis)
        yield
        await redis.aclose()

    async def claim(request: Request) -> Response:
        campaign_id = request.path_params["campaign_id"]
        user = request.headers["x-user-id"]
        claim_id = new_claim_id(campaign_id)
        await request.body()
        [(code, payload, _)] = await held["scripts"].claim(
            keyspace.campaign(campaign_id),
            [ClaimRequest(claim_id, "r:" + claim_id, user, (), None, None)])
        if code == "granted":
            return Response(payload, 201, media_type="application/json")
        return Response(orjson.dumps({"error": code}), 410, media_type="application/json")

    async def ready(request: Request) -> Response:
        return Response(b"{}", media_type="application/json")

    return Starlette(routes=[Route("/v1/campaigns/{campaign_id}/claims", claim,
                                   methods=["POST"]),
                             Route("/readyz", ready, methods=["GET"])], lifespan=lifespan)


if __name__ == "__main__":
    from flashclaim.web.listener import run

    kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    run(host, port, 1, Settings.from_env(),
        app={"bare": "flashclaim.tools.bench_apps:bare",
             "naive": "flashclaim.tools.bench_apps:naive"}[kind], factory=kind == "naive")
