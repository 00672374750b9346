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

WALLET_STATUSES = ("unused", "used", "expired")

_FILTERS = {
    "unused": "co.status = 'unused' AND co.valid_until_ms > ?",
    "used": "co.status = 'used' AND ? = ?",
    "expired": "(co.status = 'expired' OR (co.status = 'unused' AND co.valid_until_ms <= ?))",
}


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
        params += [now_ms, now_ms] if status == "used" else [now_ms]
    if after is not None:
        where.append("(cl.claimed_at_ms < ? OR (cl.claimed_at_ms = ? AND co.coupon_id < ?))")
        params += [after[0], after[0], after[1]]
    sql = (
        "SELECT co.coupon_id, co.campaign_id, co.type, co.value, co.min_spend, co.percent_off,"
        " co.max_discount, co.currency, co.valid_from_ms, co.valid_until_ms, co.status,"
        " co.order_id, co.discount, co.used_at_ms, cl.claimed_at_ms, cl.claim_id, cl.source,"
        " co.scope_json"
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
     source, scope_json) = r
    if status == "unused" and valid_until <= now_ms:
        status = "expired"
    coupon: dict[str, Any] = {
        "coupon_id": coupon_id, "campaign_id": campaign_id, "claim_id": claim_id,
        "source": source, "type": kind, "currency": currency, "status": status,
        "valid_from": valid_from, "valid_until": valid_until, "claimed_at": claimed_at,
        "scope": orjson.loads(scope_json or "{}"),
    }
    for name, amount in (("value", value), ("min_spend", min_spend),
                         ("percent_off", percent_off), ("max_discount", max_discount)):
        if amount is not None:
            coupon[name] = int(amount)
    if status == "used":
        coupon.update(order_id=order_id, discount=int(discount), used_at=used_at)
    return coupon
