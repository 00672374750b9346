"""Webhook endpoints, their deliveries and replays, as the admin API takes and shows them."""

from __future__ import annotations

import re
from typing import Annotated

import msgspec

from flashclaim.errors import invalid_request
from flashclaim.outbox import EVENT_TYPES
from flashclaim.schemas.base import UNSET, Answer, Body, Time, TimeText, decode, distinct, whole

EXPIRING_DAYS_RANGE = (1, 30)
URL_RE = re.compile(r"https?://[^\s/?#]+(?:[/?#]\S*)?")
EventType = Annotated[str, msgspec.Meta(extra_json_schema={"enum": list(EVENT_TYPES)})]


class WebhookCreate(Body, kw_only=True):
    """POST /v1/admin/webhooks: where to send which events (`coupon.expiring` comes
    `expiring_days` before a coupon's valid_until)."""

    url: Annotated[str, msgspec.Meta(max_length=2048, pattern=whole(URL_RE))]
    events: Annotated[list[EventType], msgspec.Meta(min_length=1, max_length=len(EVENT_TYPES))]
    expiring_days: Annotated[int, msgspec.Meta(ge=EXPIRING_DAYS_RANGE[0],
                                               le=EXPIRING_DAYS_RANGE[1])] = 3


def webhook_create(body: object) -> WebhookCreate:
    w = decode(body, WebhookCreate)
    unknown = sorted(set(w.events) - set(EVENT_TYPES))
    if unknown:
        raise invalid_request(f"events: unknown type {unknown[0]!r}; one of "
                              f"{', '.join(EVENT_TYPES)}.")
    w.events = distinct(w.events, "events")
    return w


class Webhook(Answer, kw_only=True):
    id: str
    url: str
    events: list[str]
    expiring_days: int
    created_at: TimeText
    secret: Annotated[str, msgspec.Meta(
        description="shown once, in the answer to the create: signs every delivery")] = UNSET
    waiting: Annotated[int, msgspec.Meta(ge=0, description="events still to deliver")] = UNSET


class WebhookList(Answer, kw_only=True):
    webhooks: list[Webhook]


class Delivery(Answer, kw_only=True):
    event_id: str
    type: str
    attempt: int
    status: Annotated[int, msgspec.Meta(description="the receiver's status; 0: no answer")]
    ms: int
    error: str
    at: TimeText


class DeadEvent(Answer, kw_only=True):
    event_id: str
    type: str
    attempts: int
    last_status: int
    last_error: str


class Deliveries(Answer, kw_only=True):
    """GET /v1/admin/webhooks/{id}/deliveries: the newest attempts first, the events still
    waiting in the endpoint's lane, and the ones given up on."""

    deliveries: list[Delivery]
    waiting: int
    dead: list[DeadEvent]


class ReplayBody(Body, kw_only=True):
    """POST /v1/admin/webhooks/{id}/replay: one event by its id, or those told in
    [from, until) (as far back as the outbox keeps them: three days)."""

    event_id: Annotated[str, msgspec.Meta(max_length=300)] | None = None
    from_: Time | None = msgspec.field(default=None, name="from")
    until: Time | None = None


class Replayed(Answer, kw_only=True):
    queued: int
