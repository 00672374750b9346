"""POST /v1/campaigns/{id}/claims as a bare ASGI endpoint: the hot path of a flash sale.

Profiled under load, Starlette's middleware, router and Request/Response objects
cost more than the claim itself (docs/benchmarks.md). So the claim route is one
ASGI endpoint, reached two ways: as the Starlette route (which keeps the route
table, 405s and /openapi.json true), and directly through ClaimFrontDoor, which
sits in front of the Starlette app and hands it every other request.
"""

from __future__ import annotations

import ipaddress
import logging
import time

import orjson
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.types import Message, Receive, Scope, Send

from flashclaim.claim.decision import failure_answer
from flashclaim.claim.idempotency import checked_key
from flashclaim.claim.identity import Identity
from flashclaim.errors import (
    CLAIM_REJECTIONS,
    ApiError,
    invalid_request,
    unavailable,
)
from flashclaim.schemas.claims import claim_channel
from flashclaim.validation import campaign_id
from flashclaim.web.http import (
    Empty,
    TapHeaders,
    body_chunks,
    deadline_kept,
    error_body,
    parse_json,
    read_body,
    with_server_time,
)
from flashclaim.web.metrics import record_claim
from flashclaim.web.services import Services

log = logging.getLogger("flashclaim")

_PREFIX, _SUFFIX = "/v1/campaigns/", "/claims"
_JSON = (b"content-type", b"application/json")
_INTERNAL = b'{"error":"internal","message":"Internal error."}'
# Error bodies worth encoding once: claim.lua's rejections, whose messages are fixed. Any
# message that could carry client input (a field name, say) is encoded each time, so
# the cache is bounded by this set times the few Retry-After values.
_CACHEABLE = frozenset((code, message) for code, (_, message) in CLAIM_REJECTIONS.items())
_MAX_CACHED = 512
_MAX_BODIES = 256


class ClaimEndpoint:
    """The claim, from raw ASGI to raw ASGI."""

    def __init__(self, max_in_flight: int) -> None:
        # The channel of each body seen (a grab button sends the same few bytes every tap):
        # bounded, as the bodies are the clients' choice; a body that is refused is not kept.
        self._channels: dict[bytes, str | None] = {}
        self._rejections: dict[tuple[str, str, int | None], bytes] = {}  # encoded once each
        self._max_in_flight = max_in_flight
        self._in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        extra: list[tuple[bytes, bytes]] = []
        started = time.perf_counter()
        try:
            status, body = await self._claim(scope, receive)
            outcome = "granted" if status == 201 else "replay"
        except Exception as exc:
            # Worked out in a helper, so no local of this frame holds the exception: its
            # traceback holds this frame, and a local naming it would make a reference cycle
            # on every refused claim (garbage only the cyclic collector frees, in pauses).
            outcome, status, body = self._refusal(exc, extra)
        record_claim(outcome, time.perf_counter() - started)
        body = with_server_time(body)  # a grab button's countdown runs on the server's clock
        await send({"type": "http.response.start", "status": status,
                    "headers": [_JSON, (b"content-length", str(len(body)).encode()), *extra]})
        await send({"type": "http.response.body", "body": body})

    def _refusal(self, exc: Exception, extra: list[tuple[bytes, bytes]]
                 ) -> tuple[str, int, bytes]:
        """(outcome, status, body) of a claim that failed; a Retry-After goes into `extra`."""
        err = failure_answer(exc)
        if err is None:
            log.error("unhandled error in a claim", exc_info=exc)
            return "internal", 500, _INTERNAL
        if err.retry_after is not None:
            extra.append((b"retry-after", str(err.retry_after).encode()))
        return err.code, err.status, self._error(err)

    @property
    def cached_bodies(self) -> int:
        return len(self._rejections)

    def _error(self, err: ApiError) -> bytes:
        key = (err.code, err.message, err.retry_after)
        body = self._rejections.get(key)
        if body is None:
            body = error_body(err)
            if (err.code, err.message) in _CACHEABLE and len(self._rejections) < _MAX_CACHED:
                self._rejections[key] = body
        return body

    async def _claim(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        s: Services = scope["state"]["services"]  # built by the app's lifespan
        campaign, who, channel, idempotency_key, headers = await self._read(s, scope, receive)
        ip = client_ip(scope, headers, s.settings.client_ip_header) \
            if s.settings.ip_rate_limit else None
        # In flight only from here: a client still sending its body holds no slot.
        self._in_flight += 1
        try:
            if self._in_flight > self._max_in_flight:  # shed, rather than queue to a timeout
                raise unavailable("The service is shedding load; try again shortly.")
            outcome = await s.claims.claim(campaign, who, channel, idempotency_key, ip)
        finally:
            self._in_flight -= 1
        return outcome.status, orjson.dumps(outcome.claim)

    async def _read(self, s: Services, scope: Scope, receive: Receive) -> tuple[
            str, Identity, str | None, str | None, TapHeaders]:
        """The whole request, validated; the body complete and within its deadline."""
        campaign = campaign_id(scope["path_params"]["campaign_id"])
        headers = TapHeaders(scope["headers"])
        who = s.authenticator.authenticate(headers)
        idempotency_key = checked_key(headers.get("idempotency-key"))
        body = await read_body(headers, body_chunks(receive), s.settings.max_claim_body,
                               required=False, body_deadline_s=s.settings.body_timeout_s,
                               deadline_kept=deadline_kept(scope))
        channel = None if isinstance(body, Empty) else self._channel_of(body)
        return campaign, who, channel, idempotency_key, headers


    def _channel_of(self, body: bytes) -> str | None:
        if body in self._channels:
            return self._channels[body]
        channel = claim_channel(parse_json(body))  # (a refused body raises: not kept)
        if len(self._channels) < _MAX_BODIES:
            self._channels[body] = channel
        return channel


def client_ip(scope: Scope, headers: TapHeaders | Headers, trusted_header: str | None) -> str:
    """The client's address: from the header a trusted proxy sets, else the peer of the
    connection. Only what the proxy appended counts: the last element of the LAST such
    header line (a client can send its own lines and elements before it)."""
    lines = headers.getlist(trusted_header) if trusted_header else []
    raw = lines[-1] if lines else None
    if raw:
        candidate = raw.split(",")[-1].strip()
    else:
        peer = scope.get("client")
        candidate = peer[0] if peer else "unknown"
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        if raw:
            raise invalid_request(f"{trusted_header} does not end with an IP address.") from None
        return "unknown"  # a peer without an address (a unix socket): one bucket for all


class ClaimFrontDoor:
    """Claims go straight to the endpoint; everything else to the Starlette app."""

    def __init__(self, app: Starlette, endpoint: ClaimEndpoint | None) -> None:
        self.starlette = app
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.endpoint is not None and scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.startswith(_PREFIX) and path.endswith(_SUFFIX):
                raw_id = path[len(_PREFIX):-len(_SUFFIX)]
                if raw_id and "/" not in raw_id:  # as Starlette's {campaign_id}
                    scope["path_params"] = {"campaign_id": raw_id}
                    await self.endpoint(scope, receive, send)
                    return
        if scope["type"] == "http" and scope["path"].startswith("/v1/admin"):
            send = _no_store(send)  # admin data is never cached, by a browser or a proxy
        await self.starlette(scope, receive, send)


def _no_store(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            if not any(name.lower() == b"cache-control" for name, _ in headers):
                message["headers"] = [*headers, (b"cache-control", b"no-store")]
        await send(message)
    return sending
