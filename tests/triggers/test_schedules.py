"""Recurring grants: the monthly VIP coupons on the 1st at 00:00 in the campaign's zone
(16:00 UTC the day before), across a restart (never twice) and a downtime (none skipped);
a dormant user recalled once until active again; bad schedules refused."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from redis.asyncio import Redis

from flashclaim.keys import KeySpace
from flashclaim.store.grant_store import GrantStore
from flashclaim.store.scripts import Scripts
from flashclaim.stream import ClaimRecord
from flashclaim.triggers.schedules import Schedules

from helpers import ADMIN, EVENTS, create_campaign, entries


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


async def schedule(client: httpx.AsyncClient, redis_client: Redis, keyspace: KeySpace,
                   body: dict[str, Any], last_run: str) -> None:
    made = await client.post("/v1/admin/schedules", headers=ADMIN, json=body)
    assert made.status_code == 201, made.text
    # as if made then (in the future: the service's own scheduler, on today's clock, finds
    # nothing due, and the test's scheduler runs it at the times it names)
    await redis_client.hset(keyspace.schedule_runs, body["schedule_id"], f"{ms(last_run)}:0")


def runner(redis_client: Redis, keyspace: KeySpace) -> Schedules:
    """A service's scheduler (a new one: a restart)."""
    scripts = Scripts(redis_client)
    return Schedules(redis_client, scripts, keyspace, GrantStore(redis_client, scripts, keyspace))


async def grants(redis_client: Redis, keyspace: KeySpace, campaign_id: str,
                 expected: int) -> list[tuple[str, str]]:
    deadline = time.monotonic() + 20
    while True:
        recs = [ClaimRecord.decode(i, f) for i, f in
                await entries(redis_client, keyspace.campaign(campaign_id).stream)]
        if len(recs) >= expected:
            return sorted((r.user_id, r.source_ref) for r in recs)
        assert time.monotonic() < deadline, f"{len(recs)} of {expected}"
        await asyncio.sleep(0.05)


async def test_monthly_vip_coupons_across_a_restart_and_a_day_boundary(
        client: httpx.AsyncClient, redis_client: Redis, keyspace: KeySpace) -> None:
    vip = await create_campaign(client, id="vip-monthly", stock=None, per_user_limit=12)
    assert vip["timezone"] == "Asia/Shanghai"
    await schedule(client, redis_client, keyspace, {
        "schedule_id": "vip", "campaign_id": "vip-monthly", "every": {"month_day": 1},
        "segment": {"users": ["vip1", "vip2"]}}, "2027-11-15T00:00:00+00:00")
    first = runner(redis_client, keyspace)
    assert await first.run_due(ms("2027-11-30T15:59:59+00:00")) == 0  # 23:59:59 in Shanghai
    assert await first.run_due(ms("2027-11-30T16:00:00+00:00")) == 1  # Dec 1, 00:00 there
    restarted = runner(redis_client, keyspace)
    assert await restarted.run_due(ms("2027-11-30T16:00:00+00:00")) == 0  # never twice
    assert await restarted.run_due(ms("2027-12-20T00:00:00+00:00")) == 0
    # down over two 1sts: both run when it is back, in order
    assert await restarted.run_due(ms("2028-01-31T16:30:00+00:00")) == 2
    assert await grants(redis_client, keyspace, "vip-monthly", 6) == [
        ("vip1", "s-vip-202712010000"), ("vip1", "s-vip-202801010000"),
        ("vip1", "s-vip-202802010000"), ("vip2", "s-vip-202712010000"),
        ("vip2", "s-vip-202801010000"), ("vip2", "s-vip-202802010000")]
    listed = (await client.get("/v1/admin/schedules", headers=ADMIN)).json()["schedules"]
    assert [(s["schedule_id"], s["runs"], s["last_run"]) for s in listed] == [
        ("vip", 3, "2028-01-31T16:00:00.000Z")]


async def test_a_dormant_user_is_recalled_once(client: httpx.AsyncClient, redis_client: Redis,
                                               keyspace: KeySpace) -> None:
    await create_campaign(client, id="come-back", stock=None, per_user_limit=10)
    day0 = datetime(2027, 3, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai

    async def active(user: str, at: datetime, n: int) -> None:
        sent = await client.post("/v1/events", headers=EVENTS, json={
            "event_id": f"act-{user}-{n}", "type": "active", "user_id": user,
            "at": at.isoformat()})
        assert sent.status_code == 202
    await active("sleeper", day0 - timedelta(days=40), 1)
    await active("regular", day0 - timedelta(days=2), 1)
    await schedule(client, redis_client, keyspace, {
        "schedule_id": "recall", "campaign_id": "come-back", "every": {"at": "09:00"},
        "segment": {"inactive_days": 30}}, (day0 - timedelta(hours=1)).isoformat())
    scheduler = runner(redis_client, keyspace)
    assert await scheduler.run_due(ms(day0.isoformat())) == 1
    assert await grants(redis_client, keyspace, "come-back", 1) == [
        ("sleeper", "s-recall-202703010900")]
    assert await scheduler.run_due(ms((day0 + timedelta(days=3)).isoformat())) == 3
    await active("sleeper", day0 + timedelta(days=4), 2)  # it came back...
    assert await scheduler.run_due(ms((day0 + timedelta(days=34)).isoformat())) == 31
    # ...and slept again: recalled a second time, 30 days after its last visit (03-05);
    # the regular one, last seen on 02-27, is recalled on 03-29, once
    assert await grants(redis_client, keyspace, "come-back", 3) == [
        ("regular", "s-recall-202703290900"), ("sleeper", "s-recall-202703010900"),
        ("sleeper", "s-recall-202704040900")]


async def test_bad_schedules_are_refused(client: httpx.AsyncClient) -> None:
    await create_campaign(client, id="c1")
    good = {"schedule_id": "s1", "campaign_id": "c1", "every": {"weekday": "monday",
                                                                "at": "20:00"},
            "segment": {"users": ["u1"]}}
    bad = [
        {**good, "every": {"weekday": "monday", "month_day": 1}},
        {**good, "every": {"at": "24:00"}},
        {**good, "every": {"month_day": 31}},
        {**good, "every": {"weekday": "someday"}},
        {**good, "segment": {}},
        {**good, "segment": {"users": ["u1"], "inactive_days": 30}},
        {**good, "campaign_id": "nope"},
    ]
    for body in bad:
        response = await client.post("/v1/admin/schedules", headers=ADMIN, json=body)
        assert response.status_code in (400, 404), (body, response.text)
    made = await client.post("/v1/admin/schedules", headers=ADMIN, json=good)
    assert made.status_code == 201 and made.json()["next_run"].endswith("T12:00:00.000Z")
    assert (await client.post("/v1/admin/schedules", headers=ADMIN, json=good)).status_code == 409
    assert (await client.delete("/v1/admin/schedules/s1", headers=ADMIN)).status_code == 204
