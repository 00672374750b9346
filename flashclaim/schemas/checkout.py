"""The use side's bodies and answers: a cart to quote, an order to lock, what applies."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from flashclaim.campaigns import MAX_MONEY
from flashclaim.coupons import ORDER_ID_RE
from flashclaim.schemas.base import (
    UNSET,
    Answer,
    Body,
    Channel,
    Currency,
    TimeText,
    UserId,
    whole,
)
from flashclaim.schemas.campaigns import Money, RuleId
from flashclaim.schemas.claims import CouponTerms

MAX_ITEMS = 100
MAX_QUANTITY = 10_000
MAX_ORDER_COUPONS = 10
OrderId = Annotated[str, msgspec.Meta(pattern=whole(ORDER_ID_RE))]
CouponId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Quantity = Annotated[int, msgspec.Meta(ge=1, le=MAX_QUANTITY)]
UnitPrice = Annotated[int, msgspec.Meta(ge=0, le=MAX_MONEY, description="minor units")]
DEFAULT_HOLD_S = 15 * 60  # how long a lock holds an order's coupons, unless it says
HoldSeconds = Annotated[int, msgspec.Meta(ge=1, le=86_400)]


class CartItem(Body, kw_only=True):
    """One order line: `unit_price` x `quantity`, in minor units. `category` and `merchant`
    are what a coupon's scope matches (empty: matches no include list of that kind)."""

    sku: RuleId
    category: RuleId | None = None
    merchant: RuleId | None = None
    unit_price: UnitPrice
    quantity: Quantity


Items = Annotated[list[CartItem], msgspec.Meta(min_length=1, max_length=MAX_ITEMS)]


class MyQuoteBody(Body, kw_only=True):
    """POST /v1/me/quote: the caller's own cart (the user from the request's identity)."""

    channel: Channel
    currency: Currency = "CNY"
    items: Items
    shipping: Money = 0


class QuoteBody(MyQuoteBody, kw_only=True):
    """POST /v1/checkout/quote: a user's cart, from the checkout system."""

    user_id: UserId


class OrderBody(Body, kw_only=True):
    """POST /v1/checkout/orders: quote these coupons again and lock them for the order."""

    order_id: OrderId
    user_id: UserId
    channel: Channel
    currency: Currency = "CNY"
    items: Items
    shipping: Money = 0
    coupon_ids: Annotated[list[CouponId], msgspec.Meta(min_length=1,
                                                        max_length=MAX_ORDER_COUPONS)]
    hold_seconds: HoldSeconds = DEFAULT_HOLD_S


# A discount over the cart's lines: one amount per line, in the cart's order, adding up to it.
Split = Annotated[list[int], msgspec.Meta(description="the discount of each cart line, in order")]


class QuotedCoupon(CouponTerms, kw_only=True):
    """A coupon the user holds, judged alone against the cart."""

    campaign_id: str
    scope: dict[str, Any]
    use_channels: list[str] = UNSET
    stacking: dict[str, Any]
    usable_from: TimeText = UNSET  # with windows: when it may be used next (now, if now)
    applicable: bool
    reason: Annotated[str, msgspec.Meta(extra_json_schema={"enum": [
        "currency", "not_yet_valid", "expired", "outside_window", "locked", "wrong_channel",
        "item_not_in_cart", "out_of_scope", "below_min_spend"]})] = UNSET
    shortfall: int = UNSET  # below_min_spend: in-scope spend still needed
    scope_amount: int  # the in-scope items' amount
    discount: int = UNSET  # applicable: what it takes off alone
    split: Split = UNSET


class AppliedCoupon(Answer, kw_only=True):
    coupon_id: str
    discount: int
    split: Split


class BestCombination(Answer, kw_only=True):
    coupon_ids: list[str]
    discount: int
    total: int  # subtotal - discount + shipping
    coupons: list[AppliedCoupon]


class QuoteAnswer(Answer, kw_only=True):
    user_id: str
    currency: str
    subtotal: int  # the goods before any discount
    shipping: int
    coupons: list[QuotedCoupon]
    best: BestCombination
    server_time: TimeText


class OrderCoupon(Answer, kw_only=True):
    coupon_id: str
    discount: int  # its part of the order's discount


class OrderAnswer(Answer, kw_only=True):
    order_id: str
    user_id: str
    state: Annotated[str, msgspec.Meta(extra_json_schema={"enum": [
        "locking", "locked", "confirmed", "cancelled", "refunded"]})]
    reason: str = UNSET  # cancelled: "cancelled" or "expired"
    channel: str
    gmv: int  # the goods before the discount
    discount: int
    hold_until: TimeText
    coupons: list[OrderCoupon]
