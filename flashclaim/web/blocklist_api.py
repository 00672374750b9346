"""Operator routes for the risk blocklist, behind the admin bearer token."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flashclaim.errors import ApiError, invalid_request
from flashclaim.schemas.issuance import block_reason
from flashclaim.store.blocklist import BLOCKLIST_LIMIT_RANGE
from flashclaim.validation import USER_ID_RE
from flashclaim.web.http import answer, query_cursor, query_limit, read_json
from flashclaim.web.services import services

audit = logging.getLogger("flashclaim.audit")


def _user_id(request: Request) -> str:
    user_id: str = request.path_params["user_id"]
    if not USER_ID_RE.fullmatch(user_id):
        raise invalid_request(f"A user id must match {USER_ID_RE.pattern}.")
    return user_id


async def block(request: Request) -> Response:
    s = services(request)
    user_id = _user_id(request)
    reason = block_reason(await read_json(request, s.settings.max_admin_body, required=True,
                                          body_deadline_s=s.settings.body_timeout_s))
    entry = await s.claims.blocklist.block(user_id, reason)
    audit.info("user blocked user=%s", user_id)
    return answer(entry)


async def unblock(request: Request) -> Response:
    s = services(request)
    user_id = _user_id(request)
    if not await s.claims.blocklist.unblock(user_id):
        raise ApiError(404, "not_blocked", f"User {user_id!r} is not on the blocklist.")
    audit.info("user unblocked user=%s", user_id)
    return Response(status_code=204)


async def list_blocked(request: Request) -> Response:
    s = services(request)
    after = query_cursor(request, USER_ID_RE)
    limit = query_limit(request, BLOCKLIST_LIMIT_RANGE, 100)
    return answer(await s.claims.blocklist.page(after, limit))


routes = [
    Route("/blocklist", list_blocked, methods=["GET"]),
    Route("/blocklist/{user_id}", block, methods=["PUT"]),
    Route("/blocklist/{user_id}", unblock, methods=["DELETE"]),
]
