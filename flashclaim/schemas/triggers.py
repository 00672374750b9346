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
    grants_made: Annotated[int, msgspec.Meta(ge=0, description="grants this rule submitted")]
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


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
HHMM_RE = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]")
LocalTime = Annotated[str, msgspec.Meta(pattern=whole(HHMM_RE),
                                        description="HH:MM, the campaign's local time")]


class Every(Body, kw_only=True):
    """When a schedule runs, in its campaign's time zone: on `month_day` (1-28) of every
    month, or on `weekday` of every week, or (neither) every day; at `at`."""

    month_day: Annotated[int, msgspec.Meta(ge=1, le=28)] | None = None
    weekday: Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                     "sunday"] | None = None
    at: LocalTime = "00:00"


class Segment(Body, kw_only=True):
    """Who a run grants: `users` (a list, as a users file gives them), the users who sent
    an event of `event_type` (within `within_days`, default any), or the users `inactive_days`
    without an `active` event (each recalled once until active again)."""

    users: Annotated[list[UserId], msgspec.Meta(max_length=10_000)] | None = None
    event_type: EventTypeName | None = None
    within_days: Days | None = None
    inactive_days: Days | None = None


class ScheduleBody(Body, kw_only=True):
    """POST /v1/admin/schedules: a recurring grant of a campaign to a segment."""

    schedule_id: RuleId
    campaign_id: Id
    every: Every
    segment: Segment


def schedule_body(body: object) -> ScheduleBody:
    b = decode(body, ScheduleBody)
    if b.every.month_day is not None and b.every.weekday is not None:
        raise invalid_request("every: month_day or weekday, not both.")
    given = [x for x in (b.segment.users, b.segment.event_type, b.segment.inactive_days)
             if x is not None]
    if len(given) != 1:
        raise invalid_request("segment: exactly one of users, event_type, inactive_days.")
    return b


class Schedule(Answer, kw_only=True):
    schedule_id: str
    campaign_id: str
    every: dict[str, Any]
    segment: dict[str, Any]
    timezone: str
    last_run: TimeText
    runs: int
    next_run: TimeText | None = None


class ScheduleList(Answer, kw_only=True):
    schedules: list[Schedule]
