"""Events other systems send (POST /v1/events) and the rules that grant on them."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec

from flashclaim.errors import invalid_request
from flashclaim.schemas.base import (
    UNSET,
    Answer,
    Body,
    Id,
    Tag,
    Time,
    TimeText,
    UserId,
    decode,
    whole,
)

# signup, order_paid, review, share, referral, active, or a custom type of the caller's
EventTypeName = Annotated[str, msgspec.Meta(pattern=whole(re.compile(r"[a-z][a-z0-9_.-]{0,63}")))]
RuleId = Annotated[str, msgspec.Meta(pattern=whole(re.compile(r"[A-Za-z0-9_-]{1,40}")))]
EventId = Annotated[str, msgspec.Meta(min_length=1, max_length=200,
                                      pattern=whole(re.compile(r"[\x21-\x7e]+")))]
DAYS_RANGE = (1, 3650)
Days = Annotated[int, msgspec.Meta(ge=DAYS_RANGE[0], le=DAYS_RANGE[1])]


class EventBody(Body, kw_only=True):
    """POST /v1/events. `attributes` by type: order_paid `amount` (minor units) and `items`;
    referral `referrer` (the user_id is the referee); any type may carry `tags`."""

    event_id: EventId
    type: EventTypeName
    user_id: UserId
    at: Time | None = None
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)


def event_body(body: object) -> EventBody:
    e = decode(body, EventBody)
    referrer = e.attributes.get("referrer")
    if e.type == "referral" and not (isinstance(referrer, str) and referrer
                                     and referrer != e.user_id):
        raise invalid_request("A referral needs attributes.referrer: another user's id.")
    amount = e.attributes.get("amount")
    if amount is not None and (type(amount) is not int or amount < 0):
        raise invalid_request("attributes.amount must be a non-negative integer (minor units).")
    tags = e.attributes.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise invalid_request("attributes.tags must be a list of tags.")
    return e


class Conditions(Body, kw_only=True):
    """All that are set must hold."""

    within_days_of_signup: Days | None = None
    min_amount: Annotated[int, msgspec.Meta(ge=0)] | None = None
    tags_any: Annotated[list[Tag], msgspec.Meta(max_length=20)] | None = None
    first_only: bool = False  # the user's first event of this type
    referee_first_paid_order: bool = False  # order_paid: the first of a referred user


class RuleGrant(Body, kw_only=True):
    campaign_ids: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=10)]


class RuleBody(Body, kw_only=True):
    """POST /v1/admin/rules: on an event type, when the conditions hold, grant the
    campaigns (a pack) to the user, its referrer, or both."""

    rule_id: RuleId
    on: EventTypeName
    when: Conditions = msgspec.field(default_factory=Conditions)
    grant: RuleGrant
    to: Literal["user", "referrer", "both"] = "user"


def rule_body(body: object) -> RuleBody:
    # {"grant": {"campaign_id": "x"}} is the one-campaign form of campaign_ids
    if isinstance(body, dict) and isinstance(body.get("grant"), dict) \
            and "campaign_id" in body["grant"]:
        grant = dict(body["grant"])
        grant["campaign_ids"] = [grant.pop("campaign_id")]
        body = {**body, "grant": grant}
    r = decode(body, RuleBody)
    if r.to != "user" and not r.when.referee_first_paid_order:
        raise invalid_request("to: referrer or both needs when.referee_first_paid_order.")
    if r.when.referee_first_paid_order and r.on != "order_paid":
        raise invalid_request("when.referee_first_paid_order is for rules on order_paid.")
    return r


class Rule(Answer, kw_only=True):
    rule_id: str
    on: str
    when: dict[str, Any]
    grant: dict[str, Any]
    to: str
    grants_made: Annotated[int, msgspec.Meta(ge=0, description="grants this rule submitted")] = 0
    created_at: TimeText = UNSET


class RuleList(Answer, kw_only=True):
    rules: list[Rule]


class EventOutcome(Answer, kw_only=True):
    """What an event did: the rules it matched and the grants they submitted (their users
    are then decided by claim.lua, as any operator grant's)."""

    event_id: str
    duplicate: bool
    matched: list[str]
    grants: list[dict[str, str]]
