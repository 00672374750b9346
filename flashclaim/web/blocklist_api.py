"""Operator routes for the risk blocklist, behind the admin bearer token."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flashclaim.errors import ApiError, invalid_request
from flashclaim.store.blocklist import BLOCKLIST_LIMIT_RANGE, REASON_MAX_LEN
from flashclaim.validation import USER_ID_RE, Obj
from flashclaim.web.admin_api import admin
from flashclaim.web.http import json_response, query_cursor, query_limit, read_json

audit = logging.getLogger("flashclaim.audit")


def _user_id(request: Request) -> str:
    user_id: str = request.path_params["user_id"]
    if not USER_ID_RE.fullmatch(user_id):
        raise invalid_request(f"A user id must match {USER_ID_RE.pattern}.")
    return user_id


async def block(request: Request) -> Response:
    s = admin(request)
    user_id = _user_id(request)
    o = Obj(await read_json(request, s.settings.max_admin_body, required=True,
                            body_deadline_s=s.settings.body_timeout_s), "body")
    reason = o.string("reason", max_len=REASON_MAX_LEN)
    o.done()
    entry = await s.claims.blocklist.block(user_id, reason)
    audit.info("user blocked user=%s", user_id)
    return json_response(entry)


async def unblock(request: Request) -> Response:
    s = admin(request)
    user_id = _user_id(request)
    if not await s.claims.blocklist.unblock(user_id):
        raise ApiError(404, "not_blocked", f"User {user_id!r} is not on the blocklist.")
    audit.info("user unblocked user=%s", user_id)
    return Response(status_code=204)


async def list_blocked(request: Request) -> Response:
    s = admin(request)
    after = query_cursor(request, USER_ID_RE)
    limit = query_limit(request, BLOCKLIST_LIMIT_RANGE, 100)
    return json_response(await s.claims.blocklist.page(after, limit))


routes = [
    Route("/v1/admin/blocklist", list_blocked, methods=["GET"]),
    Route("/v1/admin/blocklist/{user_id}", block, methods=["PUT"]),
    Route("/v1/admin/blocklist/{user_id}", unblock, methods=["DELETE"]),
]
