"""Redemption write-back: the checkout system tells us a coupon was used, or released.

Service to service, behind its own bearer token (FLASHCLAIM_CHECKOUT_TOKEN), not the
admin token: a checkout system can use coupons and nothing else.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flashclaim.errors import ApiError
from flashclaim.schemas.after import coupon_use
from flashclaim.store.scripts import UseCode
from flashclaim.web.http import answer, read_json
from flashclaim.web.services import services

audit = logging.getLogger("flashclaim.audit")

# use_coupon.lua's answers: HTTP status, and the error code for refusals
_ANSWERS = {
    UseCode.USED: (200, None), UseCode.REPLAY: (200, None), UseCode.RELEASED: (200, None),
    UseCode.COUPON_USED: (409, "coupon_used"), UseCode.COUPON_EXPIRED: (410, "coupon_expired"),
    UseCode.ORDER_MISMATCH: (409, "order_mismatch"),
    UseCode.ORDER_MANAGED: (409, "order_managed"),
}
_MESSAGES = {
    "coupon_used": "This coupon was used by another order.",
    "coupon_expired": "This coupon has expired.",
    "order_mismatch": "This coupon is held by another order; only that order can release it.",
    "order_managed": "An order of /v1/checkout/orders holds this coupon: confirm, cancel or "
                     "refund that order instead.",
}


async def _use(request: Request, action: str) -> Response:
    s = services(request)
    coupon_id = request.path_params["coupon_id"]
    order_id, discount = coupon_use(await read_json(
        request, s.settings.max_claim_body, required=True,
        body_deadline_s=s.settings.body_timeout_s), action)
    use = await s.coupons.use(action, coupon_id, order_id, discount)
    status, error = _ANSWERS[use.code]
    if error is not None:
        raise ApiError(status, error, _MESSAGES[error])
    if use.code is not UseCode.REPLAY:
        audit.info("coupon %s id=%s order=%s", use.code, coupon_id, order_id)
    return answer(use.state, status)


async def redeem(request: Request) -> Response:
    return await _use(request, "redeem")


async def release(request: Request) -> Response:
    return await _use(request, "release")


routes = [
    Route("/{coupon_id}/redeem", redeem, methods=["POST"]),
    Route("/{coupon_id}/release", release, methods=["POST"]),
]
