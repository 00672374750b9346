"""Redemption write-back: the checkout system tells us a coupon was used, or released.

Service to service, behind its own bearer token (FLASHCLAIM_CHECKOUT_TOKEN), not the
admin token: a checkout system can use coupons and nothing else.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flashclaim.campaigns import MAX_MONEY
from flashclaim.coupons import ORDER_ID_RE
from flashclaim.errors import ApiError
from flashclaim.validation import Obj
from flashclaim.web.http import json_response, read_json, require_bearer
from flashclaim.web.services import Services, services

audit = logging.getLogger("flashclaim.audit")

# use_coupon.lua's answers: HTTP status, and the error code for refusals
_ANSWERS = {
    "used": (200, None), "replay": (200, None), "released": (200, None),
    "coupon_used": (409, "coupon_used"), "coupon_expired": (410, "coupon_expired"),
    "order_mismatch": (409, "order_mismatch"),
}
_MESSAGES = {
    "coupon_used": "This coupon was used by another order.",
    "coupon_expired": "This coupon has expired.",
    "order_mismatch": "This coupon is held by another order; only that order can release it.",
}


def checkout(request: Request) -> Services:
    s = services(request)
    require_bearer(request, s.settings.checkout_token,
                   "Coupon write-back needs the checkout token.")
    return s


async def _use(request: Request, action: str) -> Response:
    s = checkout(request)
    coupon_id = request.path_params["coupon_id"]
    o = Obj(await read_json(request, s.settings.max_claim_body, required=True,
                            body_deadline_s=s.settings.body_timeout_s), "body")
    order_id = o.string("order_id", ORDER_ID_RE, max_len=64)
    discount = o.integer("discount", 0, MAX_MONEY) if action == "redeem" else 0
    o.done()
    use = await s.coupons.use(action, coupon_id, order_id, discount)
    status, error = _ANSWERS[use.code]
    if error is not None:
        raise ApiError(status, error, _MESSAGES[error])
    if use.code != "replay":
        audit.info("coupon %s id=%s order=%s", use.code, coupon_id, order_id)
    return json_response(use.body, status)


async def redeem(request: Request) -> Response:
    return await _use(request, "redeem")


async def release(request: Request) -> Response:
    return await _use(request, "release")


routes = [
    Route("/v1/admin/coupons/{coupon_id}/redeem", redeem, methods=["POST"]),
    Route("/v1/admin/coupons/{coupon_id}/release", release, methods=["POST"]),
]
