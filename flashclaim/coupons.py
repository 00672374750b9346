"""Granted coupons after the grab: ids that find their campaign's shard, and the ids
checkout systems send back.

A claim id is 24 hex characters: the first 4 are the hash slot of its campaign (so
a coupon id, "<claim id>-<n>", leads to the slot where its state lives, on Redis
Cluster too, with no global lookup), the other 20 are random (80 bits). Claims
made before this layout have no slot prefix; their coupons cannot be redeemed
through the service.
"""

from __future__ import annotations

import re
import secrets

from flashclaim.codes import campaign_slot

COUPON_ID_RE = re.compile(r"([0-9a-f]{4})[0-9a-f]{20}-([1-9][0-9]?)")
ORDER_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
SLOTS = 16384


def new_claim_id(campaign_id: str) -> str:
    return f"{campaign_slot(campaign_id):04x}{secrets.token_hex(10)}"


def slot_of_coupon(coupon_id: str) -> int | None:
    """The hash slot a coupon id names, or None when it is not one of ours."""
    match = COUPON_ID_RE.fullmatch(coupon_id)
    if match is None:
        return None
    slot = int(match.group(1), 16)
    return slot if slot < SLOTS else None
