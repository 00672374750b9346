"""The orders API's state in Redis: each order's record (lua/order_state.lua), each coupon's
step (lua/order_coupon.lua, in the coupon's own slot), and the list of orders with work
left (the hold's end, steps to finish), which the order sweep polls."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from flashclaim.coupons import slot_of_coupon
from flashclaim.keys import KeySpace
from flashclaim.store.scripts import OrderCode, OrderCouponCode, Scripts

_COUPON_SEP, _PART_SEP = "\x1e", "\x1f"  # a plan: coupons apart, a coupon's parts apart


@dataclass(frozen=True, slots=True)
class Planned:
    """A coupon of an order, and the discount it gives that order (minor units)."""

    coupon_id: str
    discount: int


def pack_plan(plan: list[Planned]) -> str:
    return _COUPON_SEP.join(f"{p.coupon_id}{_PART_SEP}{p.discount}" for p in plan)


def unpack_plan(text: str) -> list[Planned]:
    if not text:
        return []
    return [Planned(cid, int(d)) for cid, d in
            (part.split(_PART_SEP) for part in text.split(_COUPON_SEP))]


@dataclass(frozen=True, slots=True)
class OrderRecord:
    order_id: str
    state: str  # locking, locked, confirmed, cancelled, refunded
    applied: bool  # the coupon steps of this state are all done
    plan: list[Planned]
    gmv: int
    discount: int
    hold_until: int
    user_id: str
    reason: str  # cancelled: "cancelled" or "expired"
    channel: str


class OrderStore:
    def __init__(self, redis: Redis, scripts: Scripts, keyspace: KeySpace) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keyspace = keyspace

    async def begin(self, order_id: str, fingerprint: str, user_id: str, plan: list[Planned],
                    gmv: int, channel: str, hold_ms: int, retention_ms: int
                    ) -> tuple[OrderCode, OrderRecord]:
        discount = sum(p.discount for p in plan)
        return await self._state(order_id, "begin", fingerprint, user_id, pack_plan(plan),
                                 gmv, discount, channel, hold_ms, retention_ms)

    async def change(self, order_id: str, action: str) -> tuple[OrderCode, OrderRecord]:
        """locked, drop, confirm, cancel, expire, refund, applied (lua/order_state.lua)."""
        return await self._state(order_id, action)

    async def _state(self, order_id: str, action: str, *args: str | int
                     ) -> tuple[OrderCode, OrderRecord]:
        code, f = await self._scripts.order_state(self._keyspace.order(order_id), action, *args)
        state, applied, plan, gmv, discount, hold, user, reason, channel = f
        return code, OrderRecord(order_id, state, applied == "1", unpack_plan(plan),
                                 int(gmv or 0), int(discount or 0), int(hold or 0), user,
                                 reason, channel)

    async def coupon_step(self, action: str, coupon_id: str, order_id: str, user_id: str = "",
                          discount: int = 0, hold_until: int = 0, gmv: int = 0
                          ) -> tuple[OrderCouponCode, str, int]:
        """lock, confirm, unlock or refund one coupon for the order."""
        slot = slot_of_coupon(coupon_id)
        if slot is None:
            return OrderCouponCode.COUPON_NOT_FOUND, "", 0
        keys = self._keyspace.coupon_slot(slot)
        # The stream joins the consumers' list first: no event is written where no ledger
        # consumer looks.
        await self._redis.sadd(self._keyspace.coupon_event_streams, keys.events)
        return await self._scripts.order_coupon(keys, action, coupon_id, order_id, user_id,
                                                discount, hold_until, gmv)

    async def due(self, order_id: str, at_ms: int) -> None:
        """The order has work left from at_ms on (added before the work is started)."""
        await self._redis.zadd(self._keyspace.orders_due, {order_id: at_ms})

    async def done(self, order_id: str) -> None:
        await self._redis.zrem(self._keyspace.orders_due, order_id)

    async def due_orders(self, now_ms: int, limit: int) -> list[str]:
        found = await self._redis.zrangebyscore(self._keyspace.orders_due, "-inf", now_ms,
                                                start=0, num=limit)
        return [f.decode() if isinstance(f, bytes) else str(f) for f in found]
