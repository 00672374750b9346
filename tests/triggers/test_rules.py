"""Grants triggered by events, the coupon-operations plan's cases with exact outcomes: the
new-user pack within 3 days of signup (not on day 4), a coupon after the first paid order
over ¥100, both sides of a referral rewarded once after the referee's first paid order;
idempotent per event; the events token; bad rules and events refused."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from redis.asyncio import Redis

from flashclaim.keys import KeySpace
from flashclaim.stream import ClaimRecord

from helpers import ADMIN, EVENTS, create_campaign, entries

DAY = timedelta(days=1)
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


async def send(client: httpx.AsyncClient, event_id: str, kind: str, user: str,
               at: datetime = T0, **attributes: Any) -> httpx.Response:
    return await client.post("/v1/events", headers=EVENTS, json={
        "event_id": event_id, "type": kind, "user_id": user, "at": at.isoformat(),
        "attributes": attributes})


async def rule(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await client.post("/v1/admin/rules", headers=ADMIN, json=body)
    assert response.status_code == 201, response.text


async def granted(client: httpx.AsyncClient, redis_client: Redis, keyspace: KeySpace,
                  campaign_id: str, expected: int) -> list[tuple[str, str]]:
    """(user, source) of the campaign's grants, once there are `expected` (the grant
    runner works in the background), and still `expected` a moment later."""
    deadline = time.monotonic() + 20
    while True:
        recs = [ClaimRecord.decode(i, f)
                for i, f in await entries(redis_client, keyspace.campaign(campaign_id).stream)]
        if len(recs) >= expected:
            break
        assert time.monotonic() < deadline, f"{len(recs)} of {expected} grants"
        await asyncio.sleep(0.05)
    return sorted((r.user_id, r.source) for r in recs)


async def test_the_new_user_pack_within_three_days_of_signup(
        client: httpx.AsyncClient, redis_client: Redis, keyspace: KeySpace) -> None:
    pack = await create_campaign(client, id="new-user-pack", stock=None)
    await rule(client, {"rule_id": "welcome", "on": "active",
                        "when": {"within_days_of_signup": 3},
                        "grant": {"campaign_id": pack["id"]}})
    for user in ("early", "late"):
        assert (await send(client, f"s-{user}", "signup", user)).status_code == 202
    on_day_2 = await send(client, "a1", "active", "early", T0 + 2 * DAY)
    assert on_day_2.status_code == 202 and on_day_2.json()["matched"] == ["welcome"]
    on_day_4 = await send(client, "a2", "active", "late", T0 + 4 * DAY)
    assert on_day_4.json()["matched"] == []
    again = await send(client, "a1", "active", "early", T0 + 2 * DAY)  # delivered twice
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["grants"] == on_day_2.json()["grants"]
    assert await granted(client, redis_client, keyspace, pack["id"], 1) == [("early", "grant")]
    listed = (await client.get("/v1/admin/rules", headers=ADMIN)).json()["rules"]
    assert [(r["rule_id"], r["grants_made"]) for r in listed] == [("welcome", 1)]


async def test_a_coupon_after_the_first_paid_order_over_100(
        client: httpx.AsyncClient, redis_client: Redis, keyspace: KeySpace) -> None:
    thanks = await create_campaign(client, id="first-order", stock=None)
    await rule(client, {"rule_id": "first-100", "on": "order_paid",
                        "when": {"min_amount": 10_000, "first_only": True},
                        "grant": {"campaign_id": thanks["id"]}})
    assert (await send(client, "o1", "order_paid", "big", amount=12_000)).json()["matched"] == [
        "first-100"]
    assert (await send(client, "o2", "order_paid", "big", amount=20_000)).json()["matched"] == []
    assert (await send(client, "o3", "order_paid", "small", amount=5_000)).json()[
        "matched"] == []
    assert (await send(client, "o4", "order_paid", "small", amount=50_000)).json()[
        "matched"] == []  # over 100, but not the first
    assert await granted(client, redis_client, keyspace, thanks["id"], 1) == [("big", "grant")]


async def test_both_sides_of_a_referral_rewarded_once(
        client: httpx.AsyncClient, redis_client: Redis, keyspace: KeySpace) -> None:
    reward = await create_campaign(client, id="referral-reward", stock=None)
    await rule(client, {"rule_id": "referral", "on": "order_paid",
                        "when": {"referee_first_paid_order": True},
                        "grant": {"campaign_id": reward["id"]}, "to": "both"})
    assert (await send(client, "r1", "referral", "newbie", referrer="host")).status_code == 202
    first = await send(client, "p1", "order_paid", "newbie", amount=3_000)
    assert first.json()["matched"] == ["referral"]
    second = await send(client, "p2", "order_paid", "newbie", amount=9_000)
    assert second.json()["matched"] == []
    unreferred = await send(client, "p3", "order_paid", "loner", amount=9_000)
    assert unreferred.json()["matched"] == []
    assert await granted(client, redis_client, keyspace, reward["id"], 2) == [
        ("host", "grant"), ("newbie", "grant")]


async def test_events_need_their_token_and_bad_input_is_refused(
        client: httpx.AsyncClient) -> None:
    campaign = await create_campaign(client)
    body = {"event_id": "e1", "type": "signup", "user_id": "u1"}
    assert (await client.post("/v1/events", json=body)).status_code == 401
    assert (await client.post("/v1/events", json=body, headers=ADMIN)).status_code == 401
    bad_events = [
        {**body, "type": "Sign Up"},
        {**body, "user_id": "a b"},
        {**body, "event_id": ""},
        {"event_id": "e2", "type": "referral", "user_id": "u1", "attributes": {}},
        {"event_id": "e3", "type": "referral", "user_id": "u1",
         "attributes": {"referrer": "u1"}},
        {"event_id": "e4", "type": "order_paid", "user_id": "u1",
         "attributes": {"amount": 1.5}},
        {**body, "surprise": 1},
    ]
    for bad in bad_events:
        response = await client.post("/v1/events", json=bad, headers=EVENTS)
        assert response.status_code == 400, bad
    bad_rules = [
        {"rule_id": "r", "on": "signup", "grant": {"campaign_id": "nope"}},
        {"rule_id": "r", "on": "signup", "grant": {"campaign_id": campaign["id"]}, "to": "both"},
        {"rule_id": "r", "on": "signup", "when": {"referee_first_paid_order": True},
         "grant": {"campaign_id": campaign["id"]}},
        {"rule_id": "r r", "on": "signup", "grant": {"campaign_id": campaign["id"]}},
        {"rule_id": "r", "on": "signup", "when": {"within_days_of_signup": 0},
         "grant": {"campaign_id": campaign["id"]}},
    ]
    for bad in bad_rules:
        response = await client.post("/v1/admin/rules", json=bad, headers=ADMIN)
        assert response.status_code in (400, 404), (bad, response.text)
    good = {"rule_id": "r", "on": "signup", "grant": {"campaign_id": campaign["id"]}}
    assert (await client.post("/v1/admin/rules", json=good, headers=ADMIN)).status_code == 201
    assert (await client.post("/v1/admin/rules", json=good, headers=ADMIN)).status_code == 409
    assert (await client.delete("/v1/admin/rules/r", headers=ADMIN)).status_code == 204
    assert (await client.delete("/v1/admin/rules/r", headers=ADMIN)).status_code == 404
