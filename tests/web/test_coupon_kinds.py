"""Kinds of coupon through the API (on Valkey and on the cluster): random face values drawn
from a fixed multiset, exact under a crowd and seen in the claim, the stream, the wallet and
the report; what such a campaign refuses."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import orjson
from redis.asyncio import Redis

from flashclaim.keys import KeySpace
from flashclaim.settings import Settings
from flashclaim.timefmt import parse_rfc3339, to_rfc3339

from helpers import (
    ADMIN,
    CHECKOUT,
    NAMESPACE,
    SyncRedis,
    app_client,
    claim,
    consume,
    create_campaign,
    entries,
    stats,
    use,
    users_at_home,
)

KS = KeySpace(NAMESPACE)

BLIND_BOX = {"type": "random_cash", "values": [
    {"value": 100, "count": 14}, {"value": 500, "count": 5}, {"value": 3000, "count": 1}]}


async def test_a_blind_box_hands_out_exactly_its_values(
        settings: Settings, redis_client: Redis, sync_redis: SyncRedis, tmp_path: Path) -> None:
    async with app_client(dataclasses.replace(settings, data_dir=tmp_path)) as client:
        made = await create_campaign(client, stock=None, coupons=[BLIND_BOX])
        cid = made["id"]
        assert made["stock"] == 20 and made["coupons"][0]["values"] == BLIND_BOX["values"]
        replies = await asyncio.gather(*[claim(client, cid, f"friend{i}") for i in range(60)])
        granted = [r.json() for r in replies if r.status_code == 201]
        assert len(granted) == 20 and Counter(r.status_code for r in replies)[410] == 40
        drawn = Counter(g["coupons"][0]["value"] for g in granted)
        assert drawn == {100: 14, 500: 5, 3000: 1}  # ¥14 + ¥25 + ¥30, exactly
        assert (await stats(client, cid))["remaining"] == 0
        # the stream's records carry the drawn value too
        records = await entries(redis_client, KS.campaign(cid).stream)
        assert Counter(orjson.loads(f["claim"])["coupons"][0]["value"]
                       for _, f in records) == drawn
        consume(sync_redis, None, tmp_path)
        lucky = next(g for g in granted if g["coupons"][0]["value"] == 3000)
        wallet = await client.get("/v1/me/coupons", headers={"X-User-Id": lucky["user_id"]})
        assert [(c["type"], c["value"]) for c in wallet.json()["coupons"]] == [("cash", 3000)]
        report = (await client.get(f"/v1/admin/campaigns/{cid}/report", headers=ADMIN)).json()
        assert [(f["value"], f["coupons"]) for f in report["face_values"]] == [
            (100, 14), (500, 5), (3000, 1)]


async def test_a_blind_box_over_buckets_hands_out_exactly_its_values(
        client: httpx.AsyncClient, redis_client: Redis) -> None:
    """The same multiset spread over three buckets: each holds a proportional part, stock
    moves to where the claims are with its values, and the crowd still draws exactly it."""
    made = await create_campaign(client, stock=None, buckets=3, coupons=[BLIND_BOX])
    cid = made["id"]
    parts = KS.buckets(cid, 3)
    held = [str(await redis_client.hget(p.meta, "values_left")) for p in parts]
    units = [sum(int(x.split(":")[1]) for x in h.split(",")) for h in held]
    assert sum(units) == 20 and min(units) >= 6  # shared out at creation
    one_bucket = users_at_home(1, 3, 30, prefix="home1-")  # these drain bucket 1 first
    replies = await asyncio.gather(*[claim(client, cid, u)
                                     for u in one_bucket + [f"any{i}" for i in range(30)]])
    granted = [r.json() for r in replies if r.status_code == 201]
    assert len(granted) == 20
    assert Counter(g["coupons"][0]["value"] for g in granted) == {100: 14, 500: 5, 3000: 1}
    for p in parts:  # every bucket's multiset is spent, none went below zero
        left = str(await redis_client.hget(p.meta, "values_left"))
        assert all(int(x.split(":")[1]) == 0 for x in left.split(",")), left


async def test_what_a_blind_box_refuses(client: httpx.AsyncClient) -> None:
    cash = {"type": "cash", "value": 100}
    for extra, why in (({"stock": 7}, "stock"),
                       ({"stock": None, "coupons": [BLIND_BOX, BLIND_BOX]}, "at most one"),
                       ({"stock": None, "budget": {"amount": 10_000, "currency": "CNY"}},
                        "budget"),
                       ({"stock": None, "coupons": [{"type": "random_cash", "values": [
                           {"value": 100, "count": 1}, {"value": 100, "count": 2}]}]},
                        "once")):
        body = {"name": "box", "coupons": [BLIND_BOX], **extra}
        refused = await client.post("/v1/admin/campaigns", headers=ADMIN, json=body)
        assert refused.status_code == 400 and why in refused.json()["message"], refused.text
    made = await create_campaign(client, stock=None, coupons=[BLIND_BOX, cash])
    cid = made["id"]
    more = await client.post(f"/v1/admin/campaigns/{cid}/stock", headers=ADMIN,
                             json={"delta": 5})
    assert (more.status_code, more.json()["error"]) == (409, "stock_fixed")
    patched = await client.patch(f"/v1/admin/campaigns/{cid}", headers=ADMIN,
                                 json={"coupons": [cash]})
    assert (patched.status_code, patched.json()["error"]) == (409, "coupons_fixed")
    renamed = await client.patch(f"/v1/admin/campaigns/{cid}", headers=ADMIN,
                                 json={"name": "Blind box"})  # anything else may change
    assert renamed.status_code == 200, renamed.text
    plain = await create_campaign(client)
    into = await client.patch(f"/v1/admin/campaigns/{plain['id']}", headers=ADMIN,
                              json={"coupons": [BLIND_BOX]})
    assert into.status_code in (400, 409)  # a campaign does not become a blind box
    granted = await claim(client, cid, "pack-user")
    assert granted.status_code == 201  # a pack of the drawn value and a fixed ¥1
    assert [c["value"] for c in granted.json()["coupons"]][1] == 100


async def test_personal_values_given_by_a_grant(client: httpx.AsyncClient,
                                                redis_client: Redis) -> None:
    """千人千券: a cash coupon worth ¥5 by default, ¥1 to ¥20 as each grant's user is given."""
    made = await create_campaign(client, stock=100, coupons=[
        {"type": "cash", "value": 500, "personal": {"min": 100, "max": 2000}}])
    cid = made["id"]
    assert made["coupons"][0]["personal"] == {"min": 100, "max": 2000}
    for users, why in (([{"user_id": "a", "value": 2001}], "from 100 to 2000"),
                       ([{"user_id": "a", "value": 99}], "from 100 to 2000")):
        refused = await client.post(f"/v1/admin/campaigns/{cid}/grants", headers=ADMIN,
                                    json={"grant_id": "bad", "users": users})
        assert refused.status_code == 400 and why in refused.json()["message"], refused.text
    submitted = await client.post(f"/v1/admin/campaigns/{cid}/grants", headers=ADMIN, json={
        "grant_id": "vip-values", "users": [{"user_id": "vip", "value": 1800},
                                            {"user_id": "new", "value": 100}, "plain"]})
    assert submitted.status_code in (201, 202), submitted.text
    deadline = asyncio.get_running_loop().time() + 20
    while (await stats(client, cid))["granted"] < 3:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    grab = await claim(client, cid, "grabber")
    assert grab.json()["coupons"][0]["value"] == 500  # a grab gets the default
    records = await entries(redis_client, KS.campaign(cid).stream)
    values = {f["user_id"]: orjson.loads(f["claim"])["coupons"][0]["value"] for _, f in records}
    assert values == {"vip": 1800, "new": 100, "plain": 500, "grabber": 500}
    # the write-back holds each coupon to its own value
    vip_coupon = next(orjson.loads(f["claim"])["coupons"][0]["coupon_id"]
                      for _, f in records if f["user_id"] == "vip")
    over = await use(client, vip_coupon, "redeem", "o-1", 1801)
    assert (over.status_code, over.json()["error"]) == (400, "discount_exceeds_coupon")
    assert (await use(client, vip_coupon, "redeem", "o-1", 1800)).status_code == 200
    plain = await create_campaign(client)
    refused = await client.post(f"/v1/admin/campaigns/{plain['id']}/grants", headers=ADMIN,
                                json={"grant_id": "g", "users": [{"user_id": "a", "value": 5}]})
    assert refused.status_code == 400 and "personal" in refused.json()["message"]
    for coupon, extra in (({"type": "cash", "value": 500, "personal": {"min": 600, "max": 900}},
                           {}),
                          ({"type": "cash", "value": 500, "personal": {"min": 100, "max": 900}},
                           {"budget": {"amount": 10_000, "currency": "CNY"}})):
        bad = await client.post("/v1/admin/campaigns", headers=ADMIN,
                                json={"name": "p", "stock": 5, "coupons": [coupon], **extra})
        assert bad.status_code == 400, bad.text


async def test_time_of_day_windows_through_claim_wallet_quote_and_use(
        settings: Settings, sync_redis: SyncRedis, tmp_path: Path) -> None:
    """A pack of two: one usable all of today (Shanghai), one only tomorrow. The claim and
    the wallet carry the windows; the quote and the write-back refuse tomorrow's today and
    say when it opens."""
    shanghai = ZoneInfo("Asia/Shanghai")
    today = datetime.now(shanghai)
    if today.hour == 23 and today.minute >= 58:  # a pack made at midnight would straddle it
        today += timedelta(minutes=3)
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    tomorrow_opens = datetime.combine(today.date() + timedelta(days=1), datetime.min.time(),
                                      shanghai)
    async with app_client(dataclasses.replace(settings, data_dir=tmp_path)) as client:
        made = await create_campaign(client, timezone="Asia/Shanghai", coupons=[
            {"type": "cash", "value": 300, "use_windows": [
                {"days": [days[today.weekday()]], "from": "00:00", "to": "24:00"}]},
            {"type": "cash", "value": 500, "use_windows": [
                {"days": [days[(today.weekday() + 1) % 7]], "from": "00:00", "to": "24:00"}]}])
        for bad in ({"from": "18:00", "to": "18:00"}, {"from": "25:00", "to": "26:00"},
                    {"days": ["someday"], "from": "10:00", "to": "11:00"}):
            refused = await client.post("/v1/admin/campaigns", headers=ADMIN, json={
                "name": "w", "stock": 5,
                "coupons": [{"type": "cash", "value": 100, "use_windows": [bad]}]})
            assert refused.status_code == 400, bad
        granted = (await claim(client, made["id"], "night-owl")).json()
        now_one, later_one = granted["coupons"]
        assert later_one["timezone"] == "Asia/Shanghai"
        assert later_one["use_windows"] == [{"days": [days[(today.weekday() + 1) % 7]],
                                             "from": "00:00", "to": "24:00"}]
        consume(sync_redis, None, tmp_path)
        wallet = (await client.get("/v1/me/coupons", headers={"X-User-Id": "night-owl"})
                  ).json()["coupons"]
        opens = {c["coupon_id"]: c.get("usable_from") for c in wallet}
        assert parse_rfc3339(opens[later_one["coupon_id"]]) == int(
            tomorrow_opens.timestamp() * 1000)
        quoted = await client.post("/v1/checkout/quote", headers=CHECKOUT, json={
            "user_id": "night-owl", "channel": "app", "currency": "CNY",
            "items": [{"sku": "apple", "category": "fruit", "merchant": "m1",
                       "unit_price": 1_000, "quantity": 2}]})
        by_id = {c["coupon_id"]: c for c in quoted.json()["coupons"]}
        assert by_id[now_one["coupon_id"]]["applicable"] is True
        assert by_id[later_one["coupon_id"]]["reason"] == "outside_window"
        refused = await use(client, later_one["coupon_id"], "redeem", "o-1", 500)
        assert (refused.status_code, refused.json()["error"]) == (409, "outside_window")
        assert to_rfc3339(int(tomorrow_opens.timestamp() * 1000)) in refused.json()["message"]
        assert (await use(client, now_one["coupon_id"], "redeem", "o-2", 300)).status_code == 200


async def test_a_gift_and_a_trade_up_from_claim_to_report(
        settings: Settings, sync_redis: SyncRedis, tmp_path: Path) -> None:
    """A free tea cup picked up in store (it costs the shop ¥9) and "spend ¥50, a cola for
    ¥1": granted, in the wallet, quoted with their items, used by an order, and counted in
    the report at the gift's cost."""
    cup = {"sku": "tea-cup", "category": "gifts", "merchant": "m1", "unit_price": 1_500,
           "quantity": 1}
    tea = {"sku": "oolong", "category": "tea", "merchant": "m1", "unit_price": 4_000,
           "quantity": 2}
    cola = {"sku": "cola", "category": "drinks", "merchant": "m1", "unit_price": 600,
            "quantity": 1}
    async with app_client(dataclasses.replace(settings, data_dir=tmp_path)) as client:
        made = await create_campaign(client, coupons=[
            {"type": "gift", "sku": "tea-cup", "cost": 900, "fulfilment": "pickup"},
            {"type": "trade_up", "sku": "cola", "price": 100, "min_spend": 5_000,
             "stacking": {"group": "merchant"}}])
        assert made["coupons"][0]["fulfilment"] == "pickup"
        got = await claim(client, made["id"], "tea-lover")
        assert got.status_code == 201, got.text
        granted = got.json()["coupons"]
        gift, trade = granted
        assert (gift["type"], gift["sku"], gift["cost"], gift["fulfilment"]) == (
            "gift", "tea-cup", 900, "pickup")
        assert (trade["type"], trade["sku"], trade["price"], trade["min_spend"]) == (
            "trade_up", "cola", 100, 5_000)
        consume(sync_redis, None, tmp_path)
        wallet = (await client.get("/v1/me/coupons", headers={"X-User-Id": "tea-lover"})
                  ).json()["coupons"]
        assert {(c["type"], c.get("cost"), c.get("sku")) for c in wallet} == {
            ("gift", 900, "tea-cup"), ("trade_up", None, "cola")}
        body = {"user_id": "tea-lover", "channel": "app", "currency": "CNY"}
        without = (await client.post("/v1/checkout/quote", headers=CHECKOUT,
                                     json={**body, "items": [tea]})).json()
        assert {c["reason"] for c in without["coupons"]} == {"item_not_in_cart"}
        quoted = (await client.post("/v1/checkout/quote", headers=CHECKOUT,
                                    json={**body, "items": [tea, cup, cola]})).json()
        assert quoted["best"]["discount"] == 1_500 + 500  # the cup free, the cola for ¥1
        placed = await client.post("/v1/checkout/orders", headers=CHECKOUT, json={
            **body, "order_id": "tea-1", "items": [tea, cup, cola],
            "coupon_ids": [gift["coupon_id"], trade["coupon_id"]]})
        assert placed.status_code == 201, placed.text
        confirmed = await client.post("/v1/checkout/orders/tea-1/confirm", headers=CHECKOUT)
        assert confirmed.status_code == 200, confirmed.text
        consume(sync_redis, None, tmp_path)
        report = (await client.get(f"/v1/admin/campaigns/{made['id']}/report",
                                   headers=ADMIN)).json()
        assert report["used"] == 2
        assert report["discount_cost"] == {"CNY": 900 + 500}  # the gift at its cost
        refused = await client.post("/v1/admin/campaigns", headers=ADMIN, json={
            "name": "t", "stock": 5, "budget": {"amount": 10_000, "currency": "CNY"},
            "coupons": [{"type": "trade_up", "sku": "x", "price": 1, "min_spend": 100}]})
        assert refused.status_code == 400
