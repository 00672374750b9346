"""A user's coupons, read from the ledger (the system of record downstream).

Status as a user sees it: `used` once the checkout system wrote it back; `expired`
when the sweep marked it or its validity has passed (on the database's side of the
clock: the caller passes now); `unused` otherwise. Newest claim first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from flashclaim.ledger.db import Cursor, Ledger
from flashclaim.use_windows import UseWindows

WALLET_STATUSES = ("unused", "locked", "used", "refunded", "expired")

_FILTERS = {
    "unused": "co.status = 'unused' AND co.valid_until_ms > ?",
    "locked": "co.status = 'locked' AND ? = ?",
    "used": "co.status = 'used' AND ? = ?",
    "refunded": "co.status = 'refunded' AND ? = ?",
    "expired": "(co.status = 'expired' OR (co.status = 'unused' AND co.valid_until_ms <= ?))",
}
_ONE_PARAM = ("unused", "expired")  # the filters that compare with now once


@dataclass(frozen=True, slots=True)
class WalletPage:
    coupons: list[dict[str, Any]]
    next: tuple[int, str] | None  # (claimed_at ms, coupon id) of the last one, if more follow


def wallet_page(ledger: Ledger, user_id: str, status: str | None, now_ms: int,
                after: tuple[int, str] | None, limit: int) -> WalletPage:
    where = ["co.user_id = ?"]
    params: list[Any] = [user_id]
    if status is not None:
        where.append(_FILTERS[status])
        params += [now_ms] if status in _ONE_PARAM else [now_ms, now_ms]
    if after is not None:
        where.append("(cl.claimed_at_ms < ? OR (cl.claimed_at_ms = ? AND co.coupon_id < ?))")
        params += [after[0], after[0], after[1]]
    sql = (
        "SELECT co.coupon_id, co.campaign_id, co.type, co.value, co.min_spend, co.percent_off,"
        " co.max_discount, co.currency, co.valid_from_ms, co.valid_until_ms, co.status,"
        " co.order_id, co.discount, co.used_at_ms, cl.claimed_at_ms, cl.claim_id, cl.source,"
        " co.scope_json, co.use_json, co.hold_until_ms"
        " FROM coupons co JOIN claims cl ON cl.claim_id = co.claim_id"
        f" WHERE {' AND '.join(where)}"
        " ORDER BY cl.claimed_at_ms DESC, co.coupon_id DESC LIMIT ?")
    params.append(limit + 1)

    def work(cur: Cursor) -> list[tuple[Any, ...]]:
        cur.execute(ledger.sql(sql), params)
        return [tuple(r) for r in cur.fetchall()]
    rows = ledger.run(work)
    more = len(rows) > limit
    rows = rows[:limit]
    coupons = [_coupon(r, now_ms) for r in rows]
    last = (int(rows[-1][14]), str(rows[-1][0])) if more and rows else None
    return WalletPage(coupons, last)


def _coupon(r: tuple[Any, ...], now_ms: int) -> dict[str, Any]:
    (coupon_id, campaign_id, kind, value, min_spend, percent_off, max_discount, currency,
     valid_from, valid_until, status, order_id, discount, used_at, claimed_at, claim_id,
     source, scope_json, use_json, hold_until) = r
    if status == "unused" and valid_until <= now_ms:
        status = "expired"
    coupon: dict[str, Any] = {
        "coupon_id": coupon_id, "campaign_id": campaign_id, "claim_id": claim_id,
        "source": source, "type": kind, "currency": currency, "status": status,
        "valid_from": valid_from, "valid_until": valid_until, "claimed_at": claimed_at,
        "scope": orjson.loads(scope_json or "{}"),
        **orjson.loads(use_json or "{}"),  # use_channels, stacking: when not the default
    }
    for name, amount in (("cost" if kind == "gift" else "value", value), ("min_spend", min_spend),
                         ("percent_off", percent_off), ("max_discount", max_discount)):
        if amount is not None:
            coupon[name] = int(amount)
    windows = UseWindows.of(coupon)
    if status == "unused" and windows is not None:  # when it may be used next
        opens = windows.usable_from(now_ms, valid_until)
        if opens is not None:
            coupon["usable_from"] = opens
    if status in ("used", "refunded"):
        coupon.update(order_id=order_id, discount=int(discount), used_at=used_at)
    elif status == "locked":
        coupon.update(order_id=order_id, discount=int(discount), hold_until=hold_until)
    return coupon


HELD_LIMIT = 200  # coupons a quote considers: those that expire first


def held_coupons(ledger: Ledger, user_id: str, limit: int = HELD_LIMIT
                 ) -> list[dict[str, Any]]:
    """The user's coupons that are unused or locked (expired ones among them, until the
    sweep marks them), soonest to expire first: what a quote judges."""
    def work(cur: Cursor) -> list[tuple[Any, ...]]:
        cur.execute(ledger.sql(
            "SELECT coupon_id, campaign_id, type, value, min_spend, percent_off, max_discount,"
            " currency, valid_from_ms, valid_until_ms, scope_json, use_json, status, order_id"
            " FROM coupons WHERE user_id = ? AND status IN ('unused', 'locked')"
            " ORDER BY valid_until_ms, coupon_id LIMIT ?"), (user_id, limit))
        return [tuple(r) for r in cur.fetchall()]
    names = ("coupon_id", "campaign_id", "type", "value", "min_spend", "percent_off",
             "max_discount", "currency", "valid_from", "valid_until", "scope_json", "use_json",
             "status", "order_id")
    return [dict(zip(names, r, strict=True)) for r in ledger.run(work)]
