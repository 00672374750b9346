"""Coupons after the grab, in Redis: the checkout system's redeem and release."""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis

from flashclaim.coupons import slot_of_coupon
from flashclaim.errors import ApiError
from flashclaim.keys import CouponSlotKeys, KeySpace
from flashclaim.packed import IssuedCoupon
from flashclaim.schemas.after import CouponState
from flashclaim.store.connection import server_time_ms, text
from flashclaim.store.scripts import Scripts, UseCode
from flashclaim.timefmt import to_rfc3339
from flashclaim.use_windows import UseWindows

_WINDOWS_FRESH_S = 5.0
_WINDOWS_KEPT = 10_000


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
        # campaign -> (its coupons' windows by index, read until): a campaign's coupons are
        # fixed once granted, so a few seconds' copy is exact; bounded
        self._windows: dict[str, tuple[list[UseWindows | None], float]] = {}

    async def _outside_window(self, keys: CouponSlotKeys, coupon_id: str) -> int | None:
        """When a coupon with time-of-day windows may next be used, if not now (epoch ms,
        Redis clock; 0: not again within its validity); None when it may be used now (or
        has no windows, or is unknown: the script says so)."""
        entry = await self._redis.hget(keys.coupons, coupon_id)
        if entry is None:
            return None
        issued = IssuedCoupon.unpack(text(entry))
        windows = await self._campaign_windows(issued.campaign_id)
        index = int(coupon_id.rsplit("-", 1)[1]) - 1
        w = windows[index] if 0 <= index < len(windows) else None
        if w is None:
            return None
        now = await server_time_ms(self._redis)
        if w.open_at(now):
            return None
        return w.usable_from(now, issued.valid_until) or 0

    async def _campaign_windows(self, campaign_id: str) -> list[UseWindows | None]:
        known = self._windows.get(campaign_id)
        if known is not None and known[1] > time.monotonic():
            return known[0]
        raw = await self._redis.hget(self._keyspace.campaign(campaign_id).meta, "definition")
        coupons = orjson.loads(raw)["coupons"] if raw else []
        windows = [UseWindows.of(c) for c in coupons]
        if len(self._windows) >= _WINDOWS_KEPT:
            self._windows.clear()
        self._windows[campaign_id] = (windows, time.monotonic() + _WINDOWS_FRESH_S)
        return windows

    async def use(self, action: str, coupon_id: str, order_id: str, discount: int) -> CouponUse:
        slot = slot_of_coupon(coupon_id)
        if slot is None:
            raise coupon_not_found(coupon_id)
        ks = self._keyspace
        keys = ks.coupon_slot(slot)
        if action == "redeem":
            opens = await self._outside_window(keys, coupon_id)
            if opens is not None:
                raise ApiError(409, "outside_window", "This coupon may not be used at this "
                               "hour." + (f" It may be used from {to_rfc3339(opens)}."
                                          if opens else ""))
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
