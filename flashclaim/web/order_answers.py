"""The use side's answers: a quote and an order as the API shows them (the quote's is built
whole, in the quote worker's process: web/quote_worker.py)."""

from __future__ import annotations

from flashclaim.checkout.quote import Cart, HeldCoupon, Item, Quote, quote
from flashclaim.schemas.base import encode
from flashclaim.schemas.checkout import (
    AppliedCoupon,
    BestCombination,
    MyQuoteBody,
    OrderAnswer,
    OrderBody,
    OrderCoupon,
    QuoteAnswer,
    QuotedCoupon,
)
from flashclaim.store.order_store import OrderRecord
from flashclaim.timefmt import to_rfc3339


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
        if c.sku is not None:
            shown.sku = c.sku
        if c.price is not None:
            shown.price = c.price
        if c.rules.windows is not None:
            shown.use_windows = [s.shown() for s in c.rules.windows.slots]
            opens = c.rules.windows.usable_from(now, c.valid_until)
            if opens is not None:
                shown.usable_from = to_rfc3339(opens)
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
