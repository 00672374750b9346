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

from flashclaim.claim.decision import ClaimCode, failure_answer, rejection
from flashclaim.claim.idempotency import checked_key
from flashclaim.claim.identity import Identity
from flashclaim.errors import (
    CLAIM_REJECTIONS,
    ApiError,
    invalid_request,
    unavailable,
)
from flashclaim.schemas.claims import claim_parts
from flashclaim.validation import campaign_id
from flashclaim.web.http import (
    Empty,
    TapHeaders,
    body_chunks,
    deadline_kept,
    error_body,
    parse_json,
    read_body,
    whole_body,
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


# An answer whole: status, headers (beyond the server's own), body.
Reply = tuple[int, list[tuple[bytes, bytes]], bytes]


def _whole(status: int, body: bytes, extra: list[tuple[bytes, bytes]]) -> Reply:
    return status, [_JSON, (b"content-length", str(len(body)).encode()), *extra], body


class ClaimEndpoint:
    """The claim, from raw ASGI to raw ASGI; and, for a tap whose request the listener holds
    whole, the answer when memory has it (answer_now: no ASGI cycle at all)."""

    def __init__(self, max_in_flight: int) -> None:
        # The channel of each body seen (a grab button sends the same few bytes every tap):
        # bounded, as the bodies are the clients' choice; a body that is refused is not kept,
        # nor one with a proof of work (each is used once).
        self._channels: dict[bytes, str | None] = {}
        self._rejections: dict[tuple[str, str, int | None], bytes] = {}  # encoded once each
        self._max_in_flight = max_in_flight
        self._in_flight = 0
        # code -> (the millisecond it was made in, the reply): one per code the gate answers
        self._memory_replies: dict[ClaimCode, tuple[int, Reply]] = {}

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
        status, headers, body = self._reply(outcome, started, status, body, extra)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def answer_now(self, scope: Scope, received: bytes) -> Reply | None:
        """The answer to a tap whose body has all arrived, if it needs nothing from Redis:
        a refusal the gate knows, or the request's own error. The same checks in the same
        order as the claim path, and the same bytes. None: the claim path must run (a tap
        that may be granted, a keyed tap, a tap the claim path would shed)."""
        started = time.perf_counter()
        try:
            known = self._known_refusal(scope, received)
            if known is None:
                return None
        except Exception as exc:  # (a helper again: no cycle through this frame)
            extra: list[tuple[bytes, bytes]] = []
            outcome, status, body = self._refusal(exc, extra)
            return self._reply(outcome, started, status, body, extra, in_listener=True)
        return self._memory_reply(known, started)

    def _memory_reply(self, code: ClaimCode, started: float) -> Reply:
        """A refusal from memory, whole: made once a millisecond (its server_time changes
        no more often), as the claim path would make it (no Retry-After: the gate answers
        no rate or daily limit)."""
        now_ms = int(time.time() * 1000)
        made = self._memory_replies.get(code)
        if made is None or made[0] != now_ms:
            extra: list[tuple[bytes, bytes]] = []
            _, status, body = self._refusal(rejection(code), extra)
            made = (now_ms, _whole(status, with_server_time(body, now_ms), extra))
            self._memory_replies[code] = made
        record_claim(code.value, time.perf_counter() - started, in_listener=True)
        return made[1]

    def _reply(self, outcome: str, started: float, status: int, body: bytes,
               extra: list[tuple[bytes, bytes]], in_listener: bool = False) -> Reply:
        record_claim(outcome, time.perf_counter() - started, in_listener)
        # a grab button's countdown runs on the server's clock
        return _whole(status, with_server_time(body), extra)

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
        campaign, headers, who, idempotency_key = self._head(s, scope)
        body = await read_body(headers, body_chunks(receive), s.settings.max_claim_body,
                               required=False, body_deadline_s=s.settings.body_timeout_s,
                               deadline_kept=deadline_kept(scope))
        channel, proof = self._parts(body)
        ip = self._client_ip(s, scope, headers)
        # In flight only from here: a client still sending its body holds no slot.
        self._in_flight += 1
        try:
            if self._in_flight > self._max_in_flight:  # shed, rather than queue to a timeout
                raise unavailable("The service is shedding load; try again shortly.")
            outcome = await s.claims.claim(campaign, who, channel, idempotency_key, ip,
                                           proof=proof)
        finally:
            self._in_flight -= 1
        return outcome.status, orjson.dumps(outcome.claim)

    def _known_refusal(self, scope: Scope, received: bytes) -> ClaimCode | None:
        """_claim up to the gate, for a body that is all here (raises what _claim raises)."""
        s: Services = scope["state"]["services"]
        campaign, headers, who, idempotency_key = self._head(s, scope)
        self._parts(whole_body(headers, received, s.settings.max_claim_body, required=False))
        self._client_ip(s, scope, headers)
        if idempotency_key is not None or self._in_flight >= self._max_in_flight:
            return None  # a keyed tap's replay is in Redis; a tap to shed is _claim's
        return s.claims.refusal_from_memory(campaign, who)

    def _head(self, s: Services, scope: Scope) -> tuple[str, TapHeaders, Identity, str | None]:
        """What the request line and headers say: the campaign, the user, the key."""
        campaign = campaign_id(scope["path_params"]["campaign_id"])
        headers = TapHeaders(scope["headers"])
        who = s.authenticator.authenticate(headers)
        return campaign, headers, who, checked_key(headers.get("idempotency-key"))

    def _client_ip(self, s: Services, scope: Scope, headers: TapHeaders) -> str:
        """The address (limited per IP when set; its keyed hash goes into the stream)."""
        return client_ip(scope, headers, s.settings.client_ip_header)

    def _parts(self, body: bytes | Empty) -> tuple[str | None, tuple[str, str] | None]:
        if isinstance(body, Empty):
            return None, None
        if body in self._channels:
            return self._channels[body], None
        channel, proof = claim_parts(parse_json(body))  # (a refused body raises: not kept)
        if proof is None and len(self._channels) < _MAX_BODIES:
            self._channels[body] = channel
        return channel, proof


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
        if self.endpoint is not None and _routed_to_claims(scope):
            await self.endpoint(scope, receive, send)
            return
        if scope["type"] == "http" and scope["path"].startswith("/v1/admin"):
            send = _no_store(send)  # admin data is never cached, by a browser or a proxy
        await self.starlette(scope, receive, send)

    def answer_now(self, scope: Scope, received: bytes) -> Reply | None:
        """For the listener (web/http_server.py), which holds this request whole: its answer,
        if it is a claim memory can answer (ClaimEndpoint.answer_now); else None."""
        if self.endpoint is not None and _routed_to_claims(scope):
            return self.endpoint.answer_now(scope, received)
        return None


def _routed_to_claims(scope: Scope) -> bool:
    """Whether this is POST /v1/campaigns/{campaign_id}/claims, matched as Starlette would;
    if so, the id (one path segment) is put in the scope's path_params, as a router does."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return False
    path: str = scope["path"]
    if not (path.startswith(_PREFIX) and path.endswith(_SUFFIX)):
        return False
    raw_id = path[len(_PREFIX):-len(_SUFFIX)]
    if not raw_id or "/" in raw_id:
        return False
    scope["path_params"] = {"campaign_id": raw_id}
    return True


def _no_store(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            if not any(name.lower() == b"cache-control" for name, _ in headers):
                message["headers"] = [*headers, (b"cache-control", b"no-store")]
        await send(message)
    return sending
