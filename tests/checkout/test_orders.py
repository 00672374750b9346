"""The use side through the API, on a real Redis and a real ledger (SQLite and PostgreSQL):
quotes with exact amounts, orders that lock, confirm, cancel and refund exactly once, and the
races (20 orders for one coupon, confirm against cancel, a hold running out)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
from redis import Redis as SyncRedis

from flashclaim.keys import KeySpace
from flashclaim.ledger.db import open_ledger
from flashclaim.ledger.reconcile import reconcile_campaign
from flashclaim.settings import Settings

from helpers import (
    CARD,
    CHECKOUT,
    FRUIT,
    MEAT,
    NAMESPACE,
    app_client,
    claim,
    consume,
    create_campaign,
    ledger_settings,
    order,
    settle,
    use,
)

KS = KeySpace(NAMESPACE)
async def grant(client: httpx.AsyncClient, user: str, coupon: dict[str, Any]) -> str:
    """A campaign of this one coupon, claimed by the user: the coupon's id."""
    c = await create_campaign(client, coupons=[coupon])
    r = await claim(client, c["id"], user)
    assert r.status_code == 201, r.text
    coupon_id: str = r.json()["coupons"][0]["coupon_id"]
    return coupon_id


async def quote(client: httpx.AsyncClient, user: str, items: list[dict[str, Any]],
                **extra: Any) -> dict[str, Any]:
    r = await client.post("/v1/checkout/quote", headers=CHECKOUT, json={
        "user_id": user, "channel": "app", "currency": "CNY", "items": items, **extra})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_a_quote_says_what_applies_why_not_and_the_best(
        settings: Settings, sync_redis: SyncRedis, dsn: str, tmp_path: Path) -> None:
    s = ledger_settings(settings, dsn, tmp_path)
    async with app_client(s) as client:
        meat = await grant(client, "q1", {"type": "threshold", "value": 2_000,
                                          "min_spend": 10_000,
                                          "scope": {"categories": ["肉蛋水产"]}})
        pct = await grant(client, "q1", {"type": "discount", "percent_off": 10,
                                         "max_discount": 5_000,
                                         "scope": {"exclude_categories": ["cards"]}})
        shop = await grant(client, "q1", {"type": "cash", "value": 500,
                                          "scope": {"merchants": ["m1"]},
                                          "stacking": {"group": "merchant"}})
        store = await grant(client, "q1", {"type": "cash", "value": 300,
                                           "use_channels": ["store"]})
        await grant(client, "someone-else", {"type": "cash", "value": 9_999})
        consume(sync_redis, s.ledger_dsn, tmp_path)
        body = await quote(client, "q1", [MEAT, FRUIT, CARD], shipping=800)
        assert (body["subtotal"], body["shipping"]) == (16_000, 800)
        by_id = {c["coupon_id"]: c for c in body["coupons"]}
        assert set(by_id) == {meat, pct, shop, store}  # only the user's own
        assert (by_id[meat]["applicable"], by_id[meat]["reason"], by_id[meat]["shortfall"]) == (
            False, "below_min_spend", 1_000)
        assert (by_id[store]["applicable"], by_id[store]["reason"]) == (False, "wrong_channel")
        assert (by_id[pct]["discount"], by_id[pct]["scope_amount"]) == (1_100, 11_000)
        assert by_id[pct]["split"] == [900, 200, 0]  # over the lines, the card not in scope
        assert by_id[shop]["discount"] == 500 and by_id[shop]["stacking"] == {
            "group": "merchant", "exclusive": False}
        # best: the merchant's 5.00 first, then 10% of the 105.00 left of the same goods
        # (11.00 alone, all of it still there to take)
        best = body["best"]
        assert sorted(best["coupon_ids"]) == sorted([pct, shop])
        assert (best["discount"], best["total"]) == (1_600, 16_000 - 1_600 + 800)
        for c in best["coupons"]:
            assert sum(c["split"]) == c["discount"] and len(c["split"]) == 3
        # the user's own quote: the same, from the identity
        r = await client.post("/v1/me/quote", headers={"X-User-Id": "q1"}, json={
            "channel": "app", "items": [MEAT, FRUIT, CARD], "shipping": 800})
        assert r.status_code == 200, r.text
        assert (r.json()["coupons"], r.json()["best"]) == (body["coupons"], body["best"])
        # a little more meat and the threshold coupon applies: it is now the best platform one
        more = await quote(client, "q1", [{**MEAT, "quantity": 4}, FRUIT, CARD])
        assert sorted(more["best"]["coupon_ids"]) == sorted([meat, shop])
        assert more["best"]["discount"] == 2_500


async def test_bad_checkout_input_is_refused_and_changes_nothing(settings: Settings) -> None:
    async with app_client(settings) as client:
        for body, field in (({"user_id": "u", "channel": "app", "items": []}, "items"),
                            ({"user_id": "u", "channel": "app", "items": [
                                {**MEAT, "quantity": 0}]}, "items[0].quantity"),
                            ({"user_id": "u", "channel": "app", "items": [
                                {**MEAT, "unit_price": -1}]}, "items[0].unit_price"),
                            ({"user_id": "u", "channel": "app", "items": [MEAT], "x": 1}, "x")):
            r = await client.post("/v1/checkout/quote", headers=CHECKOUT, json=body)
            assert r.status_code == 400 and field in r.json()["message"], r.text
        r = await client.post("/v1/checkout/quote", json={"user_id": "u", "channel": "app",
                                                          "items": [MEAT]})
        assert r.status_code == 401
        assert (await settle(client, "no-such-order", "confirm")).status_code == 404
        assert (await settle(client, "bad id!", "confirm")).status_code in (400, 404)


async def test_lock_confirm_refund_reach_the_ledger_exactly_once(
        settings: Settings, sync_redis: SyncRedis, dsn: str, tmp_path: Path) -> None:
    s = ledger_settings(settings, dsn, tmp_path)
    async with app_client(s) as client:
        pct = await grant(client, "o1", {"type": "discount", "percent_off": 10,
                                         "max_discount": 5_000})
        shop = await grant(client, "o1", {"type": "cash", "value": 500,
                                          "stacking": {"group": "merchant"}})
        consume(sync_redis, s.ledger_dsn, tmp_path)
        r = await order(client, "ord-1", "o1", [pct, shop])
        assert r.status_code == 201, r.text
        locked = r.json()
        # the merchant's 5.00 first; then 10% of the goods' 160.00 (16.00), which the 155.00
        # left can pay
        assert (locked["state"], locked["gmv"], locked["discount"]) == ("locked", 16_000, 2_100)
        assert {c["coupon_id"]: c["discount"] for c in locked["coupons"]} == {
            shop: 500, pct: 1_600}
        again = await order(client, "ord-1", "o1", [pct, shop])  # a replay
        assert again.status_code == 200 and again.json() == locked
        other = await order(client, "ord-1", "o1", [pct])  # another body, same id
        assert (other.status_code, other.json()["error"]) == (409, "order_conflict")
        taken = await order(client, "ord-2", "o1", [shop])
        assert (taken.status_code, taken.json()["details"]["coupons"]) == (
            409, [{"coupon_id": shop, "reason": "locked"}])
        # the write-back cannot touch a coupon an order holds
        assert (await use(client, shop, "redeem", "ord-9", 100)).json()["error"] == \
            "order_managed"
        consume(sync_redis, s.ledger_dsn, tmp_path)
        statuses = await coupon_statuses(client, "o1")
        assert statuses == {pct: "locked", shop: "locked"}
        confirmed = await settle(client, "ord-1", "confirm")
        assert confirmed.status_code == 200 and confirmed.json()["state"] == "confirmed"
        assert (await settle(client, "ord-1", "confirm")).json()["state"] == "confirmed"
        assert (await settle(client, "ord-1", "cancel")).json()["error"] == "order_confirmed"
        consume(sync_redis, s.ledger_dsn, tmp_path)
        assert await coupon_statuses(client, "o1") == {pct: "used", shop: "used"}
        await assert_reconciled(sync_redis, s, tmp_path, locked["coupons"])
        refunded = await settle(client, "ord-1", "refund")
        assert refunded.json()["state"] == "refunded"
        consume(sync_redis, s.ledger_dsn, tmp_path)
        assert await coupon_statuses(client, "o1") == {pct: "unused", shop: "unused"}
        # free again: a new order may use them
        assert (await order(client, "ord-3", "o1", [shop])).status_code == 201


async def until_server_time_passes(client: httpx.AsyncClient, rfc3339: str) -> None:
    """Poll the server's clock (a quote's server_time) until it is past the given time."""
    deadline = time.monotonic() + 10
    while True:
        now = (await quote(client, "clock", [MEAT]))["server_time"]
        if now > rfc3339:  # (both RFC 3339 in UTC with milliseconds: text order is time order)
            return
        assert time.monotonic() < deadline, "the server's clock did not pass the hold"


async def coupon_statuses(client: httpx.AsyncClient, user: str) -> dict[str, str]:
    r = await client.get("/v1/me/coupons", headers={"X-User-Id": user})
    return {c["coupon_id"]: c["status"] for c in r.json()["coupons"]}


async def assert_reconciled(sync_redis: SyncRedis, s: Settings, tmp_path: Path,
                            coupons: list[dict[str, Any]]) -> None:
    ledger = open_ledger(s.ledger_dsn, tmp_path)
    try:
        campaigns = {str(row[0]) for row in ledger.execute(
            "SELECT DISTINCT campaign_id FROM coupons")}
        for campaign_id in campaigns:
            rec = reconcile_campaign(sync_redis, ledger, KS, campaign_id)
            assert rec.ok, (campaign_id, rec.mismatches)
    finally:
        ledger.close()


async def test_twenty_orders_for_one_coupon_one_wins(
        settings: Settings, sync_redis: SyncRedis, dsn: str, tmp_path: Path) -> None:
    s = ledger_settings(settings, dsn, tmp_path)
    async with app_client(s) as client:
        cid = await grant(client, "r1", {"type": "cash", "value": 500})
        consume(sync_redis, s.ledger_dsn, tmp_path)
        answers = await asyncio.gather(*(order(client, f"race-{n}", "r1", [cid])
                                         for n in range(20)))
        assert sorted(a.status_code for a in answers) == [201] + [409] * 19
        assert {a.json()["details"]["coupons"][0]["reason"] for a in answers
                if a.status_code == 409} == {"locked"}


async def test_confirm_and_cancel_racing_one_wins(
        settings: Settings, sync_redis: SyncRedis, dsn: str, tmp_path: Path) -> None:
    s = ledger_settings(settings, dsn, tmp_path)
    async with app_client(s) as client:
        for n in range(5):
            cid = await grant(client, "c1", {"type": "cash", "value": 500})
            consume(sync_redis, s.ledger_dsn, tmp_path)
            assert (await order(client, f"cc-{n}", "c1", [cid])).status_code == 201
            confirm, cancel = await asyncio.gather(settle(client, f"cc-{n}", "confirm"),
                                                   settle(client, f"cc-{n}", "cancel"))
            assert sorted([confirm.status_code, cancel.status_code]) == [200, 409]
            final = "confirmed" if confirm.status_code == 200 else "cancelled"
            consume(sync_redis, s.ledger_dsn, tmp_path)
            want = "used" if final == "confirmed" else "unused"
            assert (await coupon_statuses(client, "c1"))[cid] == want
        await assert_reconciled(sync_redis, s, tmp_path, [])


async def test_a_hold_that_runs_out_frees_the_coupon(
        settings: Settings, sync_redis: SyncRedis, dsn: str, tmp_path: Path) -> None:
    """A one-second hold: the order cannot be confirmed after it, and another order may
    take the coupon (the first order is expired on the way)."""
    s = ledger_settings(settings, dsn, tmp_path)
    async with app_client(s) as client:
        cid = await grant(client, "h1", {"type": "cash", "value": 500})
        consume(sync_redis, s.ledger_dsn, tmp_path)
        first = await order(client, "hold-1", "h1", [cid], hold_seconds=1)
        assert first.status_code == 201
        taken = await order(client, "hold-2", "h1", [cid])
        assert taken.json()["details"]["coupons"][0]["reason"] == "locked"
        await until_server_time_passes(client, first.json()["hold_until"])
        second = await order(client, "hold-3", "h1", [cid])
        assert second.status_code == 201, second.text
        late = await settle(client, "hold-1", "confirm")
        assert (late.status_code, late.json()["error"]) == (409, "order_expired")
        consume(sync_redis, s.ledger_dsn, tmp_path)
        assert (await coupon_statuses(client, "h1"))[cid] == "locked"
        await assert_reconciled(sync_redis, s, tmp_path, [])


async def test_an_expired_hold_is_cancelled_by_confirm(
        settings: Settings, sync_redis: SyncRedis, dsn: str, tmp_path: Path) -> None:
    s = ledger_settings(settings, dsn, tmp_path)
    async with app_client(s) as client:
        cid = await grant(client, "h2", {"type": "cash", "value": 500})
        consume(sync_redis, s.ledger_dsn, tmp_path)
        first = await order(client, "late-1", "h2", [cid], hold_seconds=1)
        assert first.status_code == 201
        await until_server_time_passes(client, first.json()["hold_until"])
        r = await settle(client, "late-1", "confirm")
        assert r.json()["error"] == "order_expired"
        consume(sync_redis, s.ledger_dsn, tmp_path)
        assert (await coupon_statuses(client, "h2"))[cid] == "unused"
