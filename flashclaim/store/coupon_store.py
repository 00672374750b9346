"""Coupons after the grab, in Redis: the checkout system's redeem and release."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from flashclaim.coupons import slot_of_coupon
from flashclaim.errors import ApiError
from flashclaim.keys import KeySpace
from flashclaim.store.scripts import Scripts
from flashclaim.timefmt import to_rfc3339


def coupon_not_found(coupon_id: str) -> ApiError:
    return ApiError(404, "coupon_not_found", f"No coupon with id {coupon_id!r}.")


@dataclass(frozen=True, slots=True)
class CouponUse:
    code: str  # use_coupon.lua's answer
    body: dict[str, Any]


class CouponStore:
    def __init__(self, redis: Redis, scripts: Scripts, keyspace: KeySpace) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keyspace = keyspace

    async def use(self, action: str, coupon_id: str, order_id: str, discount: int) -> CouponUse:
        slot = slot_of_coupon(coupon_id)
        if slot is None:
            raise coupon_not_found(coupon_id)
        ks = self._keyspace
        keys = ks.coupon_slot(slot)
        # The stream joins the consumers' list first: an event is never written where no
        # ledger consumer looks (a set of at most one stream per slot).
        await self._redis.sadd(ks.coupon_event_streams, keys.events)
        reply = await self._scripts.use_coupon(keys, action, coupon_id, order_id, discount)
        code = reply[0]
        if code == "coupon_not_found":
            raise coupon_not_found(coupon_id)
        campaign, user, till, order, given, at = reply[1:]
        if code == "discount_too_large":  # until the checkout computes it, bounded here
            raise ApiError(400, "discount_exceeds_coupon",
                           f"This coupon takes at most {given} off an order (minor units).")
        body: dict[str, Any] = {
            "coupon_id": coupon_id, "campaign_id": campaign, "user_id": user,
            "valid_until": to_rfc3339(int(till)),
        }
        if order:
            body.update(status="used", order_id=order, discount=int(given),
                        used_at=to_rfc3339(int(at)))
        else:
            body["status"] = "unused"
        return CouponUse(code, body)
