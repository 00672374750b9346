"""JSON in and out: bounded body reading, strict decoding, error bodies."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from flashclaim.errors import ApiError, invalid_request, payload_too_large, unsupported_media_type

_JSON = "application/json"


class _Empty:
    """No body was sent (distinct from a body of `null`)."""


EMPTY = _Empty()


async def read_json(request: Request, limit: int, *, required: bool) -> Any:
    """The decoded body, or EMPTY when none was sent and none is required.

    Reads at most `limit` bytes: an oversize body is refused before it is buffered.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise invalid_request("Content-Length must be a number.")
        if int(declared) > limit:
            raise payload_too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise payload_too_large(limit)
    if not body:
        if required:
            raise invalid_request("A JSON body is required.")
        return EMPTY
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != _JSON:
        raise unsupported_media_type()
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise invalid_request("The body is not valid JSON.") from None


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(data), status_code=status, headers=headers, media_type=_JSON)


def error_response(err: ApiError) -> Response:
    headers = None if err.retry_after is None else {"Retry-After": str(err.retry_after)}
    return json_response({"error": err.code, "message": err.message}, err.status, headers)
