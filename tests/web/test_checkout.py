"""Redemption write-back: one coupon is used by one order, exactly once, under concurrency."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
from redis.asyncio import Redis

from flashclaim.coupons import slot_of_coupon
from flashclaim.keys import KeySpace
from flashclaim.store.connection import server_time_ms

from helpers import ADMIN, CHECKOUT, claim, create_campaign, iso, use


async def granted_coupon(client: httpx.AsyncClient, user: str = "u1", **campaign: Any) -> str:
    c = await create_campaign(client, **campaign)
    r = await claim(client, c["id"], user)
    assert r.status_code == 201
    coupon_id: str = r.json()["coupons"][0]["coupon_id"]
    return coupon_id


async def test_redeem_replay_conflict_release(
    client: httpx.AsyncClient, redis_client: Redis, keyspace: KeySpace,
) -> None:
    coupon = await granted_coupon(client)
    first = await use(client, coupon, "redeem", "order-1")
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["status"], body["order_id"], body["discount"], body["user_id"]) == \
        ("used", "order-1", 500, "u1")
    again = await use(client, coupon, "redeem", "order-1")
    assert again.status_code == 200 and again.json() == body  # a replay: the same body
    other = await use(client, coupon, "redeem", "order-2")
    assert (other.status_code, other.json()["error"]) == (409, "coupon_used")
    wrong = await use(client, coupon, "release", "order-2")
    assert (wrong.status_code, wrong.json()["error"]) == (409, "order_mismatch")
    released = await use(client, coupon, "release", "order-1")
    assert released.status_code == 200 and released.json()["status"] == "unused"
    assert (await use(client, coupon, "redeem", "order-2")).status_code == 200
    slot = slot_of_coupon(coupon)
    assert slot is not None
    events = await redis_client.xrange(keyspace.coupon_slot(slot).events)
    assert [f["event"] for _, f in events or []] == ["redeemed", "released", "redeemed"]  # type: ignore[index]
    assert keyspace.coupon_slot(slot).events in await redis_client.smembers(
        keyspace.coupon_event_streams)


async def test_five_orders_at_once_use_a_coupon_once(client: httpx.AsyncClient) -> None:
    coupon = await granted_coupon(client)
    answers = await asyncio.gather(*(use(client, coupon, "redeem", f"o{i}") for i in range(5)))
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409, 409]


async def test_an_expired_coupon_is_refused_on_the_server_clock(
    client: httpx.AsyncClient, redis_client: Redis,
) -> None:
    until = iso(timedelta(seconds=1))
    coupon = await granted_coupon(client, coupons=[{"type": "cash", "value": 100, "validity": {
        "from": iso(timedelta(hours=-1)), "until": until}}])
    deadline = time.monotonic() + 10
    until_ms = int(datetime.fromisoformat(until).timestamp() * 1000)
    while await server_time_ms(redis_client) < until_ms:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    r = await use(client, coupon, "redeem", "late-order")
    assert (r.status_code, r.json()["error"]) == (410, "coupon_expired")


async def test_unknown_coupons_bad_bodies_and_other_tokens_change_nothing(
    client: httpx.AsyncClient, redis_client: Redis, keyspace: KeySpace,
) -> None:
    coupon = await granted_coupon(client)
    for missing in ("0000" + "0" * 20 + "-1", "not-a-coupon", coupon[:-1] + "9"):
        r = await use(client, missing, "redeem", "o1")
        assert (r.status_code, r.json()["error"]) == (404, "coupon_not_found"), missing
    for headers in ({}, ADMIN, {"Authorization": "Bearer nope"}):
        assert (await use(client, coupon, "redeem", "o1", headers=headers)).status_code == 401
    for body in ({}, {"order_id": "o1"}, {"order_id": "bad id", "discount": 1},
                 {"order_id": "o1", "discount": -1}, {"order_id": "o1", "discount": 1, "x": 1}):
        r = await client.post(f"/v1/admin/coupons/{coupon}/redeem", json=body, headers=CHECKOUT)
        assert r.status_code == 400, body
    slot = slot_of_coupon(coupon)
    assert slot is not None
    assert await redis_client.exists(keyspace.coupon_slot(slot).events) == 0
    assert (await use(client, coupon, "redeem", "o1")).status_code == 200  # still unused


async def test_a_discount_above_the_coupons_own_value_is_refused(
    client: httpx.AsyncClient, redis_client: Redis, keyspace: KeySpace,
) -> None:
    """A 5.00 coupon cannot be written back as 1e9 off (the report would sum it); a
    percentage coupon is held to its max_discount."""
    c = await create_campaign(client, stock=10, coupons=[
        {"type": "cash", "value": 500},
        {"type": "discount", "percent_off": 10, "max_discount": 3000}])
    granted = await claim(client, c["id"], "u1")
    cash, percent = (x["coupon_id"] for x in granted.json()["coupons"])
    for coupon, too_much, most in ((cash, 10**9, 500), (percent, 3001, 3000)):
        r = await use(client, coupon, "redeem", "o1", discount=too_much)
        assert (r.status_code, r.json()["error"]) == (400, "discount_exceeds_coupon")
        assert str(most) in r.json()["message"]
    slot = slot_of_coupon(cash)
    assert slot is not None
    assert await redis_client.exists(keyspace.coupon_slot(slot).events) == 0  # nothing written
    assert (await use(client, cash, "redeem", "o1", discount=500)).status_code == 200
    assert (await use(client, percent, "redeem", "o2", discount=3000)).status_code == 200
