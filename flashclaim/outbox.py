"""The events other systems are told about (webhooks), and the outbox stream they wait in.

Whatever makes an event appends it to one stream (KeySpace.outbox) after the fact it tells
of is safe: the ledger consumer after its commit (claims, coupon events, expiries,
reminders, campaign changes), the risk watcher with its alert, the drawer and the grant
runner when they finish. `flashclaim webhooks` reads the outbox with a consumer group of
its own and delivers each event to every endpoint that asked for its type
(flashclaim/webhooks/). An event's id is made from what it tells of, so an event written
twice (a crash between a write and its acknowledgement) carries the same id: receivers
dedupe on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from flashclaim.timefmt import to_rfc3339

EVENT_TYPES = (
    "claim.granted",
    "coupon.locked", "coupon.used", "coupon.released", "coupon.refunded", "coupon.expired",
    "coupon.expiring",
    "campaign.started", "campaign.sold_out", "campaign.paused", "campaign.ended",
    "grant.done", "alert.raised", "draw.done",
)
# A coupon event of the ledger (coupons.ALL_EVENTS) as the webhook type it is told as.
COUPON_EVENT_TYPES = {"locked": "coupon.locked", "redeemed": "coupon.used",
                      "confirmed": "coupon.used", "released": "coupon.released",
                      "unlocked": "coupon.released", "refunded": "coupon.refunded"}
# A campaign status (campaigns.STATUSES) reached, as the event told of it.
STATUS_EVENTS = {"live": "campaign.started", "sold_out": "campaign.sold_out",
                 "paused": "campaign.paused", "ended": "campaign.ended"}
FIELDS = ("id", "type", "campaign_id", "created_at", "data")


class OutEventError(ValueError):
    """An outbox entry that does not follow the layout."""


@dataclass(frozen=True, slots=True)
class OutEvent:
    id: str  # stable: "<type>:<what it tells of>"
    type: str  # one of EVENT_TYPES
    campaign_id: str  # "" for an event of no campaign
    created_at: int  # epoch ms
    data: dict[str, Any]

    def fields(self) -> dict[str, str]:
        return {"id": self.id, "type": self.type, "campaign_id": self.campaign_id,
                "created_at": str(self.created_at), "data": orjson.dumps(self.data).decode()}

    @classmethod
    def decode(cls, fields: dict[Any, Any]) -> OutEvent:
        f = {_s(k): _s(v) for k, v in fields.items()}
        try:
            return cls(f["id"], f["type"], f["campaign_id"], int(f["created_at"]),
                       orjson.loads(f["data"]))
        except (KeyError, ValueError) as exc:
            raise OutEventError(f"an outbox entry that does not decode: {exc}") from None

    def body(self) -> bytes:
        """What a receiver is sent: the event's JSON."""
        return orjson.dumps({"id": self.id, "type": self.type,
                             "created_at": to_rfc3339(self.created_at),
                             "campaign_id": self.campaign_id or None, "data": self.data})


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
