"""A/B holdouts: a campaign's control group, by a stable hash of the user id, and the
records the uplift report compares the groups with.

claim.lua decides it (lua/claim.lua, `in_control`) for every claim, grant, code and entry;
this is the same rule in Python, for reports and tests: the first 32 bits of
SHA-1("<salt>:<user id>"), modulo 100, below the holdout's percentage."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

TREATMENT = "treatment"
CONTROL = "control"


def group_of(salt: str, user_id: str, percent: int) -> str:
    digest = hashlib.sha1(f"{salt}:{user_id}".encode(), usedforsecurity=False).hexdigest()
    return CONTROL if int(digest[:8], 16) % 100 < percent else TREATMENT


HOLDOUT_FIELDS = ("v", "campaign_id", "user_id", "at", "source")
PURCHASE_FIELDS = ("v", "event_id", "user_id", "amount", "order_id", "at")


@dataclass(frozen=True, slots=True)
class ControlDecision:
    """A control user's first decision (claim.lua's holdout stream entry)."""

    campaign_id: str
    user_id: str
    at: int  # epoch ms, Redis clock
    source: str  # grab, code, grant, entry

    @classmethod
    def decode(cls, fields: dict[str, str]) -> ControlDecision:
        if fields.get("v") != "1" or any(f not in fields for f in HOLDOUT_FIELDS):
            raise ValueError("not a holdout entry of version 1")
        return cls(fields["campaign_id"], fields["user_id"], int(fields["at"]),
                   fields["source"])


@dataclass(frozen=True, slots=True)
class Purchase:
    """An `order_paid` event (POST /v1/events), as the uplift report counts it: the order's
    goods (`amount`, minor units) by a user at a time; its `order_id` when the sender gives
    one (an order the checkout API confirmed too is counted once)."""

    event_id: str
    user_id: str
    amount: int
    order_id: str  # "" when none was given
    at: int  # epoch ms

    def fields(self) -> dict[str, str | int]:
        return {"v": "1", "event_id": self.event_id, "user_id": self.user_id,
                "amount": self.amount, "order_id": self.order_id, "at": self.at}

    @classmethod
    def decode(cls, fields: dict[str, str]) -> Purchase:
        if fields.get("v") != "1" or any(f not in fields for f in PURCHASE_FIELDS):
            raise ValueError("not a purchase entry of version 1")
        return cls(fields["event_id"], fields["user_id"], int(fields["amount"]),
                   fields["order_id"], int(fields["at"]))
