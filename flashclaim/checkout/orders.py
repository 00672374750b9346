"""Orders that use coupons: quote again, lock, confirm, cancel, refund; exactly once each.

An order's coupons may live in different hash slots (each coupon's state is in its
campaign's slot), so no one script can lock them all. The order's record (its own slot,
lua/order_state.lua) is made first and says what the order is doing; each coupon then takes
its step in its own slot (lua/order_coupon.lua), every step idempotent for the order. A
lock that fails part-way unlocks what it locked and removes the record: nothing stays
half-locked. Whoever changes the record's state owns the steps that follow, so a confirm
and a cancel racing cannot both happen, and a crash between the record and the steps is
finished by the order sweep, which also ends holds that ran out. docs/checkout.md has the
argument.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from flashclaim.checkout.quote import (
    Cart,
    Combination,
    HeldCoupon,
    combine,
    judge,
    stacking_refusal,
)
from flashclaim.errors import ApiError
from flashclaim.ledger.db import Ledger
from flashclaim.ledger.wallet import held_coupons
from flashclaim.runtime.poll_loop import poll_forever
from flashclaim.schemas.checkout import DEFAULT_HOLD_S
from flashclaim.store.order_store import OrderRecord, OrderStore, Planned
from flashclaim.store.scripts import OrderCode, OrderCouponCode
from flashclaim.use_rules import UseRules

log = logging.getLogger("flashclaim")

ORDER_RETENTION_MS = 90 * 86_400_000  # an order's record in Redis (the ledger keeps its uses)
_SWEEP_BATCH = 100

HeldReader = Callable[[str], Awaitable[list[HeldCoupon]]]  # user id -> coupons held
Clock = Callable[[], Awaitable[int]]  # the server's clock, epoch ms

# The coupon step each state of an order settles into.
_STEPS = {"confirmed": "confirm", "cancelled": "unlock", "refunded": "refund"}
# A coupon's lock refused: the reason a quote would give.
_LOCK_REASONS = {OrderCouponCode.COUPON_USED: "used", OrderCouponCode.COUPON_LOCKED: "locked",
                 OrderCouponCode.COUPON_EXPIRED: "expired",
                 OrderCouponCode.COUPON_NOT_FOUND: "not_held",
                 OrderCouponCode.DISCOUNT_TOO_LARGE: "discount_too_large"}


@dataclass(frozen=True, slots=True)
class OrderRequest:
    order_id: str
    user_id: str
    cart: Cart
    coupon_ids: tuple[str, ...]
    hold_s: int = DEFAULT_HOLD_S

    def fingerprint(self) -> str:
        """The request's content: the same order id with another body is another order."""
        body = orjson.dumps([self.user_id, self.cart.channel, self.cart.currency,
                             [[i.sku, i.category, i.merchant, i.unit_price, i.quantity]
                              for i in self.cart.items], self.cart.shipping,
                             sorted(self.coupon_ids), self.hold_s])
        return hashlib.sha256(body).hexdigest()


def refused(code: str, message: str, coupons: list[dict[str, object]] | None = None
            ) -> ApiError:
    return ApiError(409, code, message, details=None if coupons is None else {"coupons": coupons})


def order_not_found(order_id: str) -> ApiError:
    return ApiError(404, "order_not_found", f"No order {order_id!r} (or it was never locked).")


class Orders:
    def __init__(self, store: OrderStore, held: HeldReader, clock: Clock) -> None:
        self._store = store
        self._held = held
        self._clock = clock

    async def place(self, req: OrderRequest) -> tuple[OrderRecord, bool]:
        """Quote the order's coupons again and lock them all for it, or none; and whether
        this request locked them (False: the same request came before)."""
        now = await self._clock()
        plan = self._plan(req, await self._held(req.user_id), now)
        await self._store.due(req.order_id, now + req.hold_s * 1000)
        code, record = await self._store.begin(
            req.order_id, req.fingerprint(), req.user_id, plan, req.cart.subtotal,
            req.cart.channel, req.hold_s * 1000, ORDER_RETENTION_MS)
        if code is OrderCode.CONFLICT:
            raise refused("order_conflict", "This order id was used for another order.")
        if record.state != "locking":  # the same request again: what it did
            return record, False
        locked: list[str] = []
        for p in record.plan:
            why = await self._lock(req, p, record.hold_until)
            if why is not None:
                await self._unlock(req.order_id, locked)
                await self._store.change(req.order_id, "drop")
                await self._store.done(req.order_id)
                raise refused("coupon_not_applicable", f"Coupon {p.coupon_id} cannot be used: "
                              f"{why}.", [{"coupon_id": p.coupon_id, "reason": why}])
            locked.append(p.coupon_id)
        code, record = await self._store.change(req.order_id, "locked")
        if code not in (OrderCode.OK, OrderCode.REPLAY):  # removed under us: a twin failed
            await self._unlock(req.order_id, locked)
            raise refused("order_conflict", "This order was refused meanwhile; send it again.")
        return record, code is OrderCode.OK

    def _plan(self, req: OrderRequest, held: list[HeldCoupon], now: int) -> list[Planned]:
        """Each asked-for coupon's discount in this order, or the refusal saying why not."""
        by_id = {c.coupon_id: c for c in held}
        if len(set(req.coupon_ids)) != len(req.coupon_ids):
            raise ApiError(400, "invalid_request", "coupon_ids must not repeat a coupon.")
        problems: list[dict[str, object]] = []
        chosen = []
        for cid in req.coupon_ids:
            coupon = by_id.get(cid)
            if coupon is None:
                problems.append({"coupon_id": cid, "reason": "not_held"})
                continue
            verdict = judge(coupon, req.cart, now, req.order_id)
            if not verdict.applicable:
                problem: dict[str, object] = {"coupon_id": cid, "reason": verdict.reason}
                if verdict.shortfall is not None:
                    problem["shortfall"] = verdict.shortfall
                problems.append(problem)
            chosen.append(coupon)
        if problems:
            raise refused("coupon_not_applicable",
                          f"{len(problems)} of the order's coupons cannot be used.", problems)
        stacking = stacking_refusal(chosen)
        if stacking is not None:
            raise refused("stacking_not_allowed",
                          "These coupons cannot be used together: " + (
                              "an exclusive coupon combines with nothing." if
                              stacking == "exclusive" else "two coupons of one group."))
        combined: Combination = combine(chosen, req.cart)
        empty = [a.coupon.coupon_id for a in combined.applied if a.discount == 0]
        if empty:
            raise refused("coupon_not_applicable", "Nothing is left for these coupons to take "
                          "off.", [{"coupon_id": c, "reason": "nothing_left"} for c in empty])
        return [Planned(a.coupon.coupon_id, a.discount) for a in combined.applied]

    async def _lock(self, req: OrderRequest, p: Planned, hold_until: int) -> str | None:
        """Lock one coupon for the order; the reason it cannot be, or None. A coupon held by
        an order whose hold ran out is freed first (that order expires), then tried again."""
        for _ in range(2):
            code, holder, holder_until = await self._store.coupon_step(
                "lock", p.coupon_id, req.order_id, req.user_id, p.discount, hold_until)
            if code is OrderCouponCode.LOCKED:
                return None
            if code is OrderCouponCode.COUPON_LOCKED and holder_until <= await self._clock():
                await self.settle(holder, "expire")
                continue
            return _LOCK_REASONS.get(code, code.value)
        return "locked"

    async def _unlock(self, order_id: str, coupon_ids: list[str]) -> None:
        for cid in coupon_ids:
            await self._store.coupon_step("unlock", cid, order_id)

    async def settle(self, order_id: str, action: str) -> OrderRecord:
        """confirm, cancel, expire or refund: the record's state changes (or not), then the
        coupons take their steps. Refusals are ApiErrors."""
        await self._store.due(order_id, 0)  # work from now on: finished even after a crash
        code, record = await self._store.change(order_id, action)
        if code is OrderCode.MISSING:
            await self._store.done(order_id)
            raise order_not_found(order_id)
        if code is OrderCode.NOT_DUE:
            await self._store.due(order_id, record.hold_until)
            return record
        if not record.applied:
            record = await self.apply(record)
        if record.applied and record.state != "locked":
            await self._store.done(order_id)
        elif record.state == "locked":
            await self._store.due(order_id, record.hold_until)
        if code is OrderCode.EXPIRED:
            raise refused("order_expired", "The order's hold on its coupons ran out; they are "
                          "free again.")
        if code is OrderCode.REFUSED:
            raise _wrong_state(record, action)
        return record

    async def apply(self, record: OrderRecord) -> OrderRecord:
        """The coupon steps of the record's state, then the record marked applied."""
        step = _STEPS.get(record.state)
        if step is None:
            return record
        for p in record.plan:
            code, _, _ = await self._store.coupon_step(step, p.coupon_id, record.order_id,
                                                       gmv=record.gmv)
            if code not in (OrderCouponCode.USED, OrderCouponCode.RELEASED,
                            OrderCouponCode.REFUNDED, OrderCouponCode.NOT_USED):
                # (a confirm finding the coupon not locked by this order: reconcile shows it)
                log.error("order %s: coupon %s answered %s to %s", record.order_id,
                          p.coupon_id, code.value, step)
        _, marked = await self._store.change(record.order_id, "applied")
        return marked

    async def sweep_forever(self, every_s: float = 1.0) -> None:
        async def once() -> None:
            await self.sweep()
        await poll_forever(once, asyncio.Event(), every_s, "order sweep")

    async def sweep(self) -> int:
        """Orders with work left whose time has come: holds run out, steps unfinished."""
        done = 0
        for order_id in await self._store.due_orders(await self._clock(), _SWEEP_BATCH):
            # (refused: missing, or confirmed or refunded; settle did what was left)
            with contextlib.suppress(ApiError):
                await self.settle(order_id, "expire")
            done += 1
        return done


def held_of(ledger: Ledger, user_id: str) -> list[HeldCoupon]:
    """The user's unused and locked coupons as the ledger has them (for a thread)."""
    return [_held(row) for row in held_coupons(ledger, user_id)]


def _held(r: dict[str, Any]) -> HeldCoupon:
    def amount(name: str) -> int | None:
        return None if r[name] is None else int(r[name])
    benefit = _benefit(r["use_json"] or "{}")
    return HeldCoupon(str(r["coupon_id"]), str(r["campaign_id"]), str(r["type"]),
                      str(r["currency"]), int(r["valid_from"]), int(r["valid_until"]),
                      _rules(r["scope_json"] or "{}", r["use_json"] or "{}"),
                      amount("value"), amount("min_spend"),
                      amount("percent_off"), amount("max_discount"),
                      r["order_id"] if r["status"] == "locked" else None,
                      sku=benefit[0], price=benefit[1])


@functools.lru_cache(maxsize=4096)
def _benefit(use_json: str) -> tuple[str | None, int | None]:
    """A gift's or trade-up's item, and a trade-up's price, from the ledger's text."""
    terms = orjson.loads(use_json)
    price = terms.get("price")
    return terms.get("sku"), None if price is None else int(price)


@functools.lru_cache(maxsize=4096)
def _rules(scope_json: str, use_json: str) -> UseRules:
    """A coupon's rules from the ledger's text (the coupons of one campaign share it, so it
    is parsed once; the texts are operators' definitions, and the cache is bounded)."""
    terms = orjson.loads(use_json)
    terms["scope"] = orjson.loads(scope_json)
    return UseRules.of(terms)


def _wrong_state(record: OrderRecord, action: str) -> ApiError:
    if record.state == "cancelled":
        code = "order_expired" if record.reason == "expired" else "order_cancelled"
        return refused(code, "The order was cancelled" + (
            " when its hold ran out." if record.reason == "expired" else "."))
    if record.state == "confirmed":
        return refused("order_confirmed", "The order is paid: refund it instead.")
    if record.state == "refunded":
        return refused("order_refunded", "The order was refunded.")
    if record.state == "locking":
        return refused("order_not_locked", "The order's coupons are still being locked.")
    return refused("order_not_confirmed", f"The order is {record.state}: nothing to {action}.")
