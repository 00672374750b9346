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
EVENTS = ("redeemed", "released")


@dataclass(frozen=True, slots=True)
class CouponEvent:
    """One entry of a slot's coupon-event stream (written by lua/use_coupon.lua)."""

    entry_id: str
    event: str  # "redeemed" or "released"
    coupon_id: str
    campaign_id: str
    user_id: str
    order_id: str
    discount: int  # minor units; 0 for a release
    at: int  # epoch ms, Redis clock

    @classmethod
    def decode(cls, entry_id: str, fields: dict[str, str]) -> CouponEvent:
        missing = [f for f in EVENT_FIELDS if f not in fields]
        if missing or fields["v"] != "1" or fields["event"] not in EVENTS:
            raise EventError(f"entry {entry_id}: not a coupon event of version 1")
        try:
            return cls(entry_id, fields["event"], fields["coupon_id"], fields["campaign_id"],
                       fields["user_id"], fields["order_id"], int(fields["discount"]),
                       int(fields["at"]))
        except ValueError as exc:
            raise EventError(f"entry {entry_id}: {exc}") from None

    @property
    def order(self) -> tuple[int, int]:
        """The entry id as a sortable pair: events of one coupon apply in this order."""
        ms, _, seq = self.entry_id.partition("-")
        return int(ms), int(seq or 0)
