"""After the grab: the checkout's write-back, the user's wallet, and the reports."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from flashclaim.coupons import ORDER_ID_RE
from flashclaim.schemas.base import UNSET, Answer, Body, Id, TimeText, decode, whole
from flashclaim.schemas.campaigns import Money
from flashclaim.schemas.claims import CouponTerms, Source

OrderId = Annotated[str, msgspec.Meta(pattern=whole(ORDER_ID_RE))]
Bucket = Annotated[str, msgspec.Meta(extra_json_schema={"enum": ["minute", "hour", "day"]})]


class CouponRedeem(Body, kw_only=True):
    """POST /v1/admin/coupons/{coupon_id}/redeem: this order used the coupon."""

    order_id: OrderId
    discount: Money


class CouponRelease(Body, kw_only=True):
    """POST /v1/admin/coupons/{coupon_id}/release: the order was cancelled."""

    order_id: OrderId


def coupon_use(body: object, action: str) -> tuple[str, int]:
    """(order id, discount) of a write-back body; a release takes no discount."""
    if action == "redeem":
        redeem = decode(body, CouponRedeem)
        return redeem.order_id, redeem.discount
    return decode(body, CouponRelease).order_id, 0


class CouponState(Answer, kw_only=True):
    coupon_id: str
    campaign_id: Id
    user_id: str
    valid_until: TimeText
    status: Annotated[str, msgspec.Meta(extra_json_schema={"enum": ["used", "unused"]})]
    order_id: str = UNSET
    discount: Money = UNSET
    used_at: TimeText = UNSET


class WalletCoupon(CouponTerms, kw_only=True):
    campaign_id: Id
    campaign_name: str | None
    claim_id: str
    source: Source
    status: Annotated[str, msgspec.Meta(
        extra_json_schema={"enum": ["unused", "locked", "used", "refunded", "expired"]})]
    claimed_at: TimeText
    order_id: str = UNSET  # locked, used, refunded: the order
    discount: Money = UNSET
    used_at: TimeText = UNSET
    hold_until: TimeText = UNSET  # locked: the order's hold ends then
    scope: dict[str, Any] = UNSET
    use_channels: list[str] = UNSET
    stacking: dict[str, Any] = UNSET
    usable_from: Annotated[TimeText, msgspec.Meta(
        description="unused, with windows: when it may be used next (now, if now)")] = UNSET


class Wallet(Answer, kw_only=True):
    """GET /v1/me/coupons: the caller's coupons, newest first."""

    coupons: list[WalletCoupon]
    next: str | None
    server_time: TimeText


class Figures(Answer, kw_only=True):
    """What a group of claims came to."""

    claims: int
    coupons: int
    used: int
    use_rate: float | None
    expired: int
    discount_cost: Annotated[dict[str, int], msgspec.Meta(
        description="per currency, minor units")]
    orders: int  # distinct orders (of the orders API) the used coupons paid towards
    gmv: Annotated[dict[str, int], msgspec.Meta(
        description="those orders' goods before the discount, per currency, minor units")]
    discount_per_order: dict[str, int]  # per currency, minor units, rounded
    refunded_orders: int
    refunded_discount: dict[str, int]
    roi: dict[str, float | None] = UNSET  # with ?margin=: (margin x gmv - cost) / cost


class TimelinePoint(Answer, kw_only=True):
    at: TimeText
    claims: int
    uses: int


class FaceValueFigures(Answer, kw_only=True):
    """Coupons issued (and used) of one face value: a random coupon's draws among them."""

    currency: str
    value: int
    coupons: int
    used: int


class ChannelFigures(Figures, kw_only=True):
    channel: str


class SegmentFigures(Figures, kw_only=True):
    segment: str


class SourceFigures(Figures, kw_only=True):
    source: str


class CampaignFigures(Figures, kw_only=True):
    campaign_id: str


class Splits(Figures, kw_only=True):
    """The totals, split by channel, segment and source, and over time."""

    by_channel: list[ChannelFigures]
    by_segment: list[SegmentFigures]
    by_source: list[SourceFigures]
    timeline: list[TimelinePoint]
    face_values: list[FaceValueFigures]


class CampaignReport(Splits, kw_only=True):
    """GET /v1/admin/campaigns/{id}/report."""

    campaign_id: Id
    name: str | None
    issued: int | None
    claim_rate: float | None
    bucket: Bucket
    ledger_lag: int | None = UNSET  # (the service's answer: not in `flashclaim report`)
    server_time: TimeText = UNSET


class Report(Splits, kw_only=True):
    """GET /v1/admin/report: every campaign's claims made in [from, to)."""

    from_: TimeText = msgspec.field(name="from")
    to: TimeText
    bucket: Bucket
    campaigns: list[CampaignFigures]
    server_time: TimeText


class UpliftGroup(Answer, kw_only=True):
    """One group of a holdout campaign over the period (minor units; per user: rounded)."""

    users: int
    buyers: int
    orders: int
    gmv: int
    gmv_per_user: int | None
    discount_cost: int
    profit: Annotated[int, msgspec.Meta(description="margin x gmv - discount_cost")]
    profit_per_user: int | None


class Uplift(Answer, kw_only=True):
    """GET /v1/admin/campaigns/{id}/uplift: treatment (granted) against control (held out)."""

    campaign_id: str
    percent: int  # the holdout's share of users in control
    from_: TimeText = msgspec.field(name="from")
    to: TimeText
    margin: float
    treatment: UpliftGroup
    control: UpliftGroup
    uplift_per_user: Annotated[int | None, msgspec.Meta(
        description="profit per treated user - profit per control user")]
    ci95: Annotated[list[int] | None, msgspec.Meta(
        description="the uplift's 95 % confidence interval [low, high]")]
    server_time: TimeText
