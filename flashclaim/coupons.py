"""Granted coupons after the grab: ids that find their campaign's shard, and the ids
checkout systems send back.

A claim id is 24 hex characters: the first 4 are the hash slot of its campaign (so
a coupon id, "<claim id>-<n>", leads to the slot where its state lives, on Redis
Cluster too, with no global lookup), the other 20 are random (80 bits). Claims
made before this layout have no slot prefix; their coupons cannot be redeemed
through the service.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from flashclaim.codes import campaign_slot

COUPON_ID_RE = re.compile(r"([0-9a-f]{4})[0-9a-f]{20}-([1-9][0-9]?)")
ORDER_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
SLOTS = 16384


_ID_RANDOM_BYTES = 10
_POOL_BYTES = 4000  # os.urandom once per 400 ids, not once per claim (a syscall each)
_pool = bytearray()


def _reset_pool() -> None:
    _pool.clear()  # a forked child must never hand out its parent's next ids


os.register_at_fork(after_in_child=_reset_pool)


def new_claim_id(campaign_id: str) -> str:
    if len(_pool) < _ID_RANDOM_BYTES:
        _pool[:] = os.urandom(_POOL_BYTES)
    random = _pool[-_ID_RANDOM_BYTES:]
    del _pool[-_ID_RANDOM_BYTES:]
    return f"{campaign_slot(campaign_id):04x}{random.hex()}"


def slot_of_coupon(coupon_id: str) -> int | None:
    """The hash slot a coupon id names, or None when it is not one of ours."""
    match = COUPON_ID_RE.fullmatch(coupon_id)
    if match is None:
        return None
    slot = int(match.group(1), 16)
    return slot if slot < SLOTS else None


class EventError(ValueError):
    """A coupon-event entry that does not follow its schema (poison for a consumer)."""


EVENT_FIELDS = ("v", "event", "coupon_id", "campaign_id", "user_id", "order_id", "discount",
                "at")
# Version 1: the write-back's events (lua/use_coupon.lua). Version 2: the orders' events
# (lua/order_coupon.lua), with two more fields: the hold's end (locked) and the order's GMV
# (confirmed).
WRITE_BACK_EVENTS = ("redeemed", "released")
ORDER_EVENTS = ("locked", "confirmed", "unlocked", "refunded")
ALL_EVENTS = WRITE_BACK_EVENTS + ORDER_EVENTS
USED_UP = ("redeemed", "confirmed")  # the events after which a coupon is no longer unused
EVENTS = {"1": WRITE_BACK_EVENTS, "2": ORDER_EVENTS}
V2_FIELDS = ("hold_until", "gmv")


@dataclass(frozen=True, slots=True)
class CouponEvent:
    """One entry of a slot's coupon-event stream (lua/use_coupon.lua, lua/order_coupon.lua)."""

    entry_id: str
    event: str  # one of ALL_EVENTS
    coupon_id: str
    campaign_id: str
    user_id: str
    order_id: str
    discount: int  # minor units; 0 for a release
    at: int  # epoch ms, Redis clock
    hold_until: int = 0  # locked: until when the order holds it (epoch ms)
    gmv: int = 0  # confirmed: the order's goods before any discount

    @classmethod
    def decode(cls, entry_id: str, fields: dict[str, str]) -> CouponEvent:
        version = fields.get("v", "")
        needed = EVENT_FIELDS + (V2_FIELDS if version == "2" else ())
        missing = [f for f in needed if f not in fields]
        if missing or fields.get("event") not in EVENTS.get(version, ()):
            raise EventError(f"entry {entry_id}: not a coupon event of version 1 or 2")
        try:
            extra = [int(fields[f]) for f in V2_FIELDS] if version == "2" else [0, 0]
            return cls(entry_id, fields["event"], fields["coupon_id"], fields["campaign_id"],
                       fields["user_id"], fields["order_id"], int(fields["discount"]),
                       int(fields["at"]), *extra)
        except ValueError as exc:
            raise EventError(f"entry {entry_id}: {exc}") from None

    @property
    def order(self) -> tuple[int, int]:
        """The entry id as a sortable pair: events of one coupon apply in this order."""
        ms, _, seq = self.entry_id.partition("-")
        return int(ms), int(seq or 0)
