"""The use side over HTTP: quotes (the checkout system's, and a user's own), and orders that
lock, confirm, cancel and refund coupons (docs/checkout.md)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flashclaim.checkout.orders import OrderRequest, held_of
from flashclaim.checkout.quote import Cart, HeldCoupon, Item, Quote, quote
from flashclaim.coupons import ORDER_ID_RE
from flashclaim.errors import invalid_request
from flashclaim.schemas.base import decode, encode
from flashclaim.schemas.checkout import (
    AppliedCoupon,
    BestCombination,
    MyQuoteBody,
    OrderAnswer,
    OrderBody,
    OrderCoupon,
    QuoteAnswer,
    QuoteBody,
    QuotedCoupon,
)
from flashclaim.store.order_store import OrderRecord
from flashclaim.timefmt import to_rfc3339
from flashclaim.web.http import answer, personal, read_json
from flashclaim.web.services import Services, services

MAX_CHECKOUT_BODY = 65_536


def cart_of(body: MyQuoteBody | OrderBody) -> Cart:
    return Cart(body.channel, body.currency, tuple(
        Item(i.sku, i.category or "", i.merchant or "", i.unit_price, i.quantity)
        for i in body.items), body.shipping)


def quote_bytes(user_id: str, held: list[HeldCoupon], cart: Cart, now: int) -> bytes:
    """The quote's answer, worked out and encoded whole: run on the ledger reader's thread
    with the read (a user with many coupons and a long cart is milliseconds of work that
    must not hold up the claims on the event loop)."""
    return encode(quote_answer(user_id, quote(held, cart, now), now))


def quote_answer(user_id: str, q: Quote, now: int) -> QuoteAnswer:
    coupons = []
    for v in q.verdicts:
        c = v.coupon
        shown = QuotedCoupon(
            coupon_id=c.coupon_id, campaign_id=c.campaign_id, type=c.type, currency=c.currency,
            valid_from=to_rfc3339(c.valid_from), valid_until=to_rfc3339(c.valid_until),
            scope=c.rules.scope.shown(), stacking=c.rules.stacking.shown(),
            applicable=v.applicable, scope_amount=v.scope_amount)
        for name in ("value", "min_spend", "percent_off", "max_discount"):
            if getattr(c, name) is not None:
                setattr(shown, name, getattr(c, name))
        if c.rules.use_channels:
            shown.use_channels = sorted(c.rules.use_channels)
        if v.applicable:
            per_line = [0] * len(q.cart.items)
            for n, part in zip(v.lines, v.split, strict=True):
                per_line[n] = part
            shown.discount, shown.split = v.discount, per_line
        elif v.reason is not None:
            shown.reason = v.reason
            if v.shortfall is not None:
                shown.shortfall = v.shortfall
        coupons.append(shown)
    applied = [AppliedCoupon(coupon_id=a.coupon.coupon_id, discount=a.discount,
                             split=list(a.split)) for a in q.best.applied]
    best = BestCombination(coupon_ids=[a.coupon_id for a in applied],
                           discount=q.best.discount, total=q.best.total, coupons=applied)
    return QuoteAnswer(user_id=user_id, currency=q.cart.currency, subtotal=q.cart.subtotal,
                       shipping=q.cart.shipping, coupons=coupons, best=best,
                       server_time=to_rfc3339(now))


def order_answer(r: OrderRecord) -> OrderAnswer:
    shown = OrderAnswer(order_id=r.order_id, user_id=r.user_id, state=r.state,
                        channel=r.channel, gmv=r.gmv, discount=r.discount,
                        hold_until=to_rfc3339(r.hold_until),
                        coupons=[OrderCoupon(coupon_id=p.coupon_id, discount=p.discount)
                                 for p in r.plan])
    if r.reason:
        shown.reason = r.reason
    return shown


async def _body(request: Request, s: Services) -> object:
    return await read_json(request, MAX_CHECKOUT_BODY, required=True,
                           body_deadline_s=s.settings.body_timeout_s)


async def _quote(s: Services, user_id: str, body: MyQuoteBody) -> Response:
    cart, now = cart_of(body), await s.campaigns.now()
    quoted = await s.ledger.read(lambda db: quote_bytes(user_id, held_of(db, user_id), cart, now))
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
