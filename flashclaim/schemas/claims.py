"""A claim (grab, grant or code) and what is answered about it; the service's own answers."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from flashclaim.campaigns import COUPON_TYPES
from flashclaim.errors import invalid_request
from flashclaim.schemas.base import UNSET, Answer, Body, Channel, Id, TimeText, decode
from flashclaim.schemas.campaigns import Money
from flashclaim.stream import Source as IssuedBy
from flashclaim.validation import MAX_NONCE_DIGITS

Source = Annotated[str, msgspec.Meta(extra_json_schema={"enum": [s.value for s in IssuedBy]})]
CouponType = Annotated[str, msgspec.Meta(extra_json_schema={"enum": list(COUPON_TYPES)})]


ChallengeToken = Annotated[str, msgspec.Meta(max_length=200)]
Nonce = Annotated[str, msgspec.Meta(max_length=MAX_NONCE_DIGITS,
                                    description="decimal digits (docs/fairness.md)")]


class ClaimBody(Body, kw_only=True):
    """POST /v1/campaigns/{id}/claims and /entries (the body is optional). `challenge` and
    `nonce`: a solved proof of work, for a campaign that asks for one."""

    channel: Channel | None = None
    challenge: ChallengeToken | None = None
    nonce: Nonce | None = None


def claim_parts(body: object) -> tuple[str | None, tuple[str, str] | None]:
    """The channel, and the (challenge, nonce) when the body carries a solution."""
    b = decode(body, ClaimBody)
    if (b.challenge is None) != (b.nonce is None):
        raise invalid_request("Send challenge and nonce together.")
    proof = None if b.challenge is None or b.nonce is None else (b.challenge, b.nonce)
    return b.channel, proof


class CouponTerms(Answer, kw_only=True):
    """A coupon's kind, value and validity, as every answer about a coupon shows them."""

    coupon_id: str
    type: CouponType
    currency: str
    value: Money = UNSET
    min_spend: Money = UNSET
    percent_off: int = UNSET
    max_discount: Money = UNSET
    valid_from: TimeText
    valid_until: TimeText
    use_windows: list[dict[str, Any]] = UNSET  # the hours of the week it may be used in
    timezone: str = UNSET  # the windows' zone (the campaign's)
    sku: str = UNSET  # gift, trade_up: the item (the cart must hold it)
    cost: Money = UNSET  # gift: its stated cost
    fulfilment: str = UNSET  # gift: delivery or pickup
    price: Money = UNSET  # trade_up: what the item costs with the coupon


class GrantedCoupon(CouponTerms, kw_only=True):
    scope: dict[str, Any]
    use_channels: list[str] = UNSET  # where it may be used (absent: anywhere)
    stacking: dict[str, Any] = UNSET  # absent: {"group": "platform", "exclusive": false}


class Claim(Answer, kw_only=True):
    claim_id: str
    campaign_id: Id
    user_id: str
    seq: Annotated[int, msgspec.Meta(ge=1)]
    claimed_at: TimeText
    channel: str | None
    source: Source = UNSET
    server_time: TimeText = UNSET
    coupons: Annotated[list[GrantedCoupon], msgspec.Meta(min_length=1)]


class Record(Answer, kw_only=True):
    entry_id: str
    seq: int
    claim_id: str
    user_id: str
    source: Source = UNSET
    source_ref: str = UNSET


class Records(Answer, kw_only=True):
    """GET /v1/admin/campaigns/{id}/claims: the claim stream, a page at a time."""

    claims: list[Record]
    next: str | None


class Error(Answer, kw_only=True):
    """Every refusal: a stable code, words for a person, and the server's clock."""

    error: str
    message: str
    details: dict[str, Any] = UNSET  # some refusals: what a program needs to act on it
    server_time: TimeText = UNSET


class Health(Answer, kw_only=True):
    status: str


class Ready(Answer, kw_only=True):
    status: Annotated[str, msgspec.Meta(extra_json_schema={"const": "ready"})]
    warnings: list[str]
