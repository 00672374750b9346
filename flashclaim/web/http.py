"""JSON in and out: bounded body reading, strict decoding, error bodies."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope

from flashclaim.claim.identity import HeaderLookup
from flashclaim.errors import (
    ApiError,
    incomplete_body,
    invalid_request,
    payload_too_large,
    request_timeout,
    unsupported_media_type,
)
from flashclaim.schemas.base import UNSET, Answer, encode
from flashclaim.schemas.claims import Error
from flashclaim.timefmt import to_rfc3339
from flashclaim.validation import ascii_int, campaign_id

_JSON = "application/json"


class TapHeaders:
    """A request's headers read in one pass (names arrive lower-cased from the server): the
    claim endpoint asks for a handful, and a Starlette Headers scans the list for each."""

    __slots__ = ("_first", "_raw")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._raw = raw
        first: dict[bytes, bytes] = {}
        for name, value in raw:
            if name not in first:  # the first line of a name, as Headers.get answers
                first[name] = value
        self._first = first

    def get(self, key: str, default: str | None = None) -> str | None:
        value = self._first.get(key.lower().encode("latin-1"))
        return default if value is None else value.decode("latin-1")

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower().encode("latin-1") in self._first

    def getlist(self, key: str) -> list[str]:
        name = key.lower().encode("latin-1")
        return [v.decode("latin-1") for k, v in self._raw if k == name]


class Empty:
    """No body was sent (distinct from a body of `null`)."""


EMPTY = Empty()
# In a request scope's "extensions": the listener (web/http_server.py) keeps the body's
# deadline on the connection, so reading the body needs no timer of its own.
BODY_DEADLINE_KEPT = "flashclaim.body_deadline"


async def read_json(request: Request, limit: int, *, required: bool,
                    body_deadline_s: float = 5.0) -> Any:
    """The decoded body of a Starlette request (see read_json_body)."""
    return await read_json_body(request.headers, body_chunks(request.receive), limit,
                                required=required, body_deadline_s=body_deadline_s,
                                deadline_kept=deadline_kept(request.scope))


async def _collect(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """The chunks joined, refused as soon as they pass `limit` bytes."""
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise payload_too_large(limit)
    return bytes(body)


def deadline_kept(scope: Scope) -> bool:
    """The listener keeps the request body's deadline (see BODY_DEADLINE_KEPT)."""
    return BODY_DEADLINE_KEPT in (scope.get("extensions") or {})


async def body_chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The body of an ASGI request, as it arrives. A client that disconnects before the
    last chunk sent an incomplete body: that is refused, never taken for a shorter one."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise incomplete_body()
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


async def read_json_body(
    headers: HeaderLookup, chunks: AsyncIterator[bytes], limit: int, *, required: bool,
    body_deadline_s: float = 5.0, deadline_kept: bool = False,
) -> Any:
    """The decoded body, or EMPTY when none was sent and none is required (read_body, then
    parse_json)."""
    body = await read_body(headers, chunks, limit, required=required,
                           body_deadline_s=body_deadline_s, deadline_kept=deadline_kept)
    return EMPTY if isinstance(body, Empty) else parse_json(body)


async def read_body(
    headers: HeaderLookup, chunks: AsyncIterator[bytes], limit: int, *, required: bool,
    body_deadline_s: float = 5.0, deadline_kept: bool = False,
) -> bytes | Empty:
    """The body's bytes, sent as JSON, or EMPTY when none was sent and none is required.

    Reads at most `limit` bytes: an oversize body is refused before it is buffered. The
    whole body must arrive within `body_deadline_s` seconds (a slow client holds nothing longer),
    and as long as its Content-Length says. deadline_kept: the listener keeps that deadline
    (and answers 408 itself), so no timer is armed here.
    """
    length = declared_length(headers, limit)
    body = b""
    # HTTP/1.1 framing: without Content-Length or Transfer-Encoding (or with a length of
    # 0) there is no body to read. Most taps are like this: no read, no deadline to arm.
    if _framed(headers, length):
        if deadline_kept:
            body = await _collect(chunks, limit)
        else:
            try:
                async with asyncio.timeout(body_deadline_s):
                    body = await _collect(chunks, limit)
            except TimeoutError:
                raise request_timeout(body_deadline_s) from None
    return _json_body(headers, body, length, required)


def whole_body(headers: HeaderLookup, body: bytes, limit: int, *, required: bool
               ) -> bytes | Empty:
    """read_body for a body that has all arrived (the listener holds it): the same checks,
    in the same order, with the same answers."""
    length = declared_length(headers, limit)
    if not _framed(headers, length):
        body = b""
    elif len(body) > limit:
        raise payload_too_large(limit)
    return _json_body(headers, body, length, required)


def declared_length(headers: HeaderLookup, limit: int) -> int | None:
    """The Content-Length, if sent: a number, and within `limit` (refused before any of
    the body is buffered)."""
    declared = headers.get("content-length")
    if declared is None:
        return None
    length = ascii_int(declared, 19)
    if length is None:
        raise invalid_request("Content-Length must be a number.")
    if length > limit:
        raise payload_too_large(limit)
    return length


def _framed(headers: HeaderLookup, length: int | None) -> bool:
    """Whether the request has a body to read (HTTP/1.1 framing)."""
    return length not in (None, 0) or "transfer-encoding" in headers


def _json_body(headers: HeaderLookup, body: bytes, length: int | None, required: bool
               ) -> bytes | Empty:
    """The body as read: as long as declared, present if required, sent as JSON."""
    if length is not None and len(body) != length:
        raise incomplete_body()
    if not body:
        if required:
            raise invalid_request("A JSON body is required.")
        return EMPTY
    media_type = (headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media_type != _JSON:
        raise unsupported_media_type()
    return body


def parse_json(body: bytes) -> Any:
    """The JSON value of a body; 400 when it is not JSON or an object repeats a key."""
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise invalid_request("The body is not valid JSON.") from None
    if isinstance(decoded, dict | list) and not _keys_all_distinct(body, decoded):
        _refuse_duplicate_keys(body)
    return decoded


_KEY_TOKEN = re.compile(rb'"\s*:')


def _keys_all_distinct(body: bytes | bytearray, decoded: object) -> bool:
    """A proof, without a second parse, that a flat object repeats no key: every key is
    followed by `":` (spaces allowed), so a body with no more such tokens than the object
    has keys cannot repeat one. Anything else (nested values, a `":` inside a string) is
    left to the full check. A claim body, {"channel": "app"}, takes this path."""
    if not isinstance(decoded, dict):
        return False
    if any(isinstance(v, dict | list) for v in decoded.values()):
        return False
    return len(_KEY_TOKEN.findall(body)) == len(decoded)


def _refuse_duplicate_keys(body: bytes | bytearray) -> None:
    """orjson keeps the last of repeated keys; {"stock": 1, "stock": 9} must not pass as 9."""
    def check(pairs: list[tuple[str, Any]]) -> None:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise invalid_request(f"The key {key!r} appears twice in the JSON body.")
            seen.add(key)

    json.loads(body, object_pairs_hook=check)  # orjson already accepted it: valid JSON


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A JSON answer of plain values (the API document itself; use `answer` for a shape)."""
    return Response(orjson.dumps(data), status_code=status, headers=headers, media_type=_JSON)


def answer(body: Answer, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """An answer of one of the API's shapes (flashclaim/schemas), rendered from its type."""
    return Response(encode(body), status_code=status, headers=headers, media_type=_JSON)


def personal(response: Response, request: Request) -> Response:
    """An answer that depends on who asks (a wallet, a user's view of a campaign): never
    kept by a shared cache, and varied on the identity headers where it is anonymous."""
    if "x-user-id" in request.headers or "authorization" in request.headers:
        response.headers["cache-control"] = "private, no-store"
    response.headers["vary"] = "X-User-Id, X-User-Tags, Authorization"
    return response


def error_body(err: ApiError) -> bytes:
    details = UNSET if err.details is None else err.details
    return encode(Error(error=err.code, message=err.message, details=details))


def error_response(err: ApiError) -> Response:
    headers = None if err.retry_after is None else {"Retry-After": str(err.retry_after)}
    return Response(with_server_time(error_body(err)), status_code=err.status, headers=headers,
                    media_type=_JSON)


def campaign_id_of(request: Request) -> str:
    """The validated campaign id of a route's path."""
    return campaign_id(request.path_params["campaign_id"])


def query_cursor(request: Request, pattern: re.Pattern[str]) -> str:
    """?cursor= ("" for the first page): the `next` of a previous page, or 400."""
    cursor = request.query_params.get("cursor", "")
    if cursor and not pattern.fullmatch(cursor):
        raise invalid_request("cursor must be the `next` of a previous page.")
    return cursor


def query_limit(request: Request, bounds: tuple[int, int], default: int) -> int:
    """?limit=, within its bounds, or 400."""
    raw = request.query_params.get("limit", str(default))
    low, high = bounds
    limit = ascii_int(raw, 6)
    if limit is None or not low <= limit <= high:
        raise invalid_request(f"limit must be an integer from {low} to {high}.")
    return limit


def with_server_time(body: bytes, now_ms: int | None = None) -> bytes:
    """A JSON object body with "server_time" added (a countdown trusts this, not the phone)."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    return body[:-1] + b',"server_time":"' + to_rfc3339(now).encode() + b'"}'
