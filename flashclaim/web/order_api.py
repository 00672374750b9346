"""The use side over HTTP: quotes (the checkout system's, and a user's own), and orders that
lock, confirm, cancel and refund coupons (docs/checkout.md)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flashclaim.checkout.orders import OrderRequest
from flashclaim.coupons import ORDER_ID_RE
from flashclaim.errors import invalid_request
from flashclaim.schemas.base import decode
from flashclaim.schemas.checkout import MyQuoteBody, OrderBody, QuoteBody
from flashclaim.web.http import answer, personal, read_json
from flashclaim.web.order_answers import cart_of, order_answer
from flashclaim.web.services import Services, services

MAX_CHECKOUT_BODY = 65_536


async def _body(request: Request, s: Services) -> object:
    return await read_json(request, MAX_CHECKOUT_BODY, required=True,
                           body_deadline_s=s.settings.body_timeout_s)


async def _quote(s: Services, user_id: str, body: MyQuoteBody) -> Response:
    quoted = await s.quotes.quote(user_id, cart_of(body), await s.campaigns.now())
    return Response(quoted, media_type="application/json")


async def checkout_quote(request: Request) -> Response:
    s = services(request)
    body = decode(await _body(request, s), QuoteBody)
    return await _quote(s, body.user_id, body)


async def my_quote(request: Request) -> Response:
    s = services(request)
    who = s.authenticator.authenticate(request.headers)
    body = decode(await _body(request, s), MyQuoteBody)
    return personal(await _quote(s, who.user_id, body), request)


async def place_order(request: Request) -> Response:
    s = services(request)
    body = decode(await _body(request, s), OrderBody)
    record, locked_now = await s.orders.place(OrderRequest(
        body.order_id, body.user_id, cart_of(body), tuple(body.coupon_ids), body.hold_seconds))
    return answer(order_answer(record), 201 if locked_now else 200)


def _order_id(request: Request) -> str:
    order_id: str = request.path_params["order_id"]
    if not ORDER_ID_RE.fullmatch(order_id):
        raise invalid_request("order_id must be 1-64 characters of A-Za-z0-9_.:-.")
    return order_id


def _settle(action: str) -> Callable[[Request], Awaitable[Response]]:
    """POST /orders/{order_id}/<action>: confirm, cancel or refund."""
    async def handler(request: Request) -> Response:
        s = services(request)
        record = await s.orders.settle(_order_id(request), action)
        return answer(order_answer(record))
    return handler


routes = [
    Route("/quote", checkout_quote, methods=["POST"]),
    Route("/orders", place_order, methods=["POST"]),
    Route("/orders/{order_id}/confirm", _settle("confirm"), methods=["POST"]),
    Route("/orders/{order_id}/cancel", _settle("cancel"), methods=["POST"]),
    Route("/orders/{order_id}/refund", _settle("refund"), methods=["POST"]),
]
public_routes = [Route("/v1/me/quote", my_quote, methods=["POST"])]
