"""Coupons after the grab, in Redis: the checkout system's redeem and release."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from flashclaim.coupons import slot_of_coupon
from flashclaim.errors import ApiError
from flashclaim.keys import KeySpace
from flashclaim.schemas.after import CouponState
from flashclaim.store.scripts import Scripts, UseCode
from flashclaim.timefmt import to_rfc3339


def coupon_not_found(coupon_id: str) -> ApiError:
    return ApiError(404, "coupon_not_found", f"No coupon with id {coupon_id!r}.")


@dataclass(frozen=True, slots=True)
class CouponUse:
    code: UseCode
    state: CouponState


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
        code, reply = await self._scripts.use_coupon(keys, action, coupon_id, order_id,
                                                     discount)
        if code is UseCode.COUPON_NOT_FOUND:
            raise coupon_not_found(coupon_id)
        campaign, user, till, order, given, at = reply
        if code is UseCode.DISCOUNT_TOO_LARGE:  # until the checkout computes it, bounded here
            raise ApiError(400, "discount_exceeds_coupon",
                           f"This coupon takes at most {given} off an order (minor units).")
        state = CouponState(coupon_id=coupon_id, campaign_id=campaign, user_id=user,
                            valid_until=to_rfc3339(int(till)), status="unused")
        if order:
            state.status, state.order_id = "used", order
            state.discount, state.used_at = int(given), to_rfc3339(int(at))
        return CouponUse(code, state)
