"""Coupon templates (versioned, copied into campaigns) and the risk blocklist."""

from __future__ import annotations

import asyncio
import time

import httpx
from redis.asyncio import Redis

from flashclaim.keys import KeySpace
from flashclaim.settings import Settings
from flashclaim.store.blocklist import Blocklist
from flashclaim.store.scripts import Scripts
from flashclaim.web.services import Services

from helpers import ADMIN, app_client, claim, create_campaign

CASH = {"type": "cash", "value": 800, "validity": {"days": 7}}


async def test_a_template_is_versioned_and_campaigns_pin_the_version_they_copy(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post("/v1/admin/templates", headers=ADMIN,
                          json={"id": "welcome", "name": "Welcome 8", "coupon": CASH})
    assert r.status_code == 201 and r.json()["version"] == 1
    first = await create_campaign(client, coupons=[{"template": "welcome"}])
    assert first["coupons"][0]["value"] == 800
    assert first["coupons"][0]["template"] == {"id": "welcome", "version": 1}
    r = await client.post("/v1/admin/templates", headers=ADMIN, json={
        "id": "welcome", "name": "Welcome 10", "coupon": {**CASH, "value": 1000}})
    assert r.json()["version"] == 2 and [v["version"] for v in r.json()["versions"]] == [2, 1]
    # the campaign made from version 1 did not change; a new one copies version 2
    granted = (await claim(client, first["id"], "u1")).json()
    assert granted["coupons"][0]["value"] == 800
    second = await create_campaign(client, coupons=[{"template": "welcome"}])
    assert second["coupons"][0]["value"] == 1000
    pinned = await create_campaign(client, coupons=[{"template": "welcome", "version": 1}])
    assert pinned["coupons"][0]["value"] == 800
    got = (await client.get("/v1/admin/templates/welcome", headers=ADMIN)).json()
    assert (got["version"], got["name"]) == (2, "Welcome 10")
    listing = (await client.get("/v1/admin/templates", headers=ADMIN)).json()
    assert [t["id"] for t in listing["templates"]] == ["welcome"]


async def test_template_errors_write_nothing(client: httpx.AsyncClient) -> None:
    for body in ({"name": "x", "coupon": {"type": "voucher"}}, {"name": "x"},
                 {"name": "x", "coupon": CASH, "extra": 1}, {"id": "a b", "name": "x",
                                                             "coupon": CASH}):
        r = await client.post("/v1/admin/templates", headers=ADMIN, json=body)
        assert r.status_code == 400, body
    assert (await client.get("/v1/admin/templates", headers=ADMIN)).json()["templates"] == []
    r = await client.post("/v1/admin/campaigns", headers=ADMIN, json={
        "name": "x", "stock": 1, "coupons": [{"template": "missing"}]})
    assert (r.status_code, r.json()["error"]) == (404, "template_not_found")
    r = await client.post("/v1/admin/campaigns", headers=ADMIN, json={
        "name": "x", "stock": 1, "coupons": [{"template": "missing", "value": 3}]})
    assert r.status_code == 400
    assert (await client.get("/v1/admin/campaigns", headers=ADMIN)).json()["campaigns"] == []
    assert (await client.get("/v1/admin/templates/nope", headers=ADMIN)).status_code == 404


async def test_a_blocked_user_is_refused_and_unblocking_restores_them(
    client: httpx.AsyncClient,
) -> None:
    c = await create_campaign(client, stock=10, per_user_limit=2)
    r = await client.put("/v1/admin/blocklist/fraud-1", headers=ADMIN,
                         json={"reason": "device farm"})
    assert r.status_code == 200 and r.json()["reason"] == "device farm"
    refused = await claim(client, c["id"], "fraud-1")
    assert (refused.status_code, refused.json()["error"]) == (403, "blocked")
    view = (await client.get(f"/v1/campaigns/{c['id']}", headers={"X-User-Id": "fraud-1"})).json()
    assert view["can_claim"] is False
    listing = (await client.get("/v1/admin/blocklist", headers=ADMIN)).json()
    assert [b["user_id"] for b in listing["blocked"]] == ["fraud-1"]
    assert (await client.delete("/v1/admin/blocklist/fraud-1", headers=ADMIN)).status_code == 204
    assert (await claim(client, c["id"], "fraud-1")).status_code == 201
    assert (await client.delete("/v1/admin/blocklist/fraud-1", headers=ADMIN)).status_code == 404
    for body in ({}, {"reason": ""}, {"reason": "x", "until": 1}):
        r = await client.put("/v1/admin/blocklist/u2", headers=ADMIN, json=body)
        assert r.status_code == 400, body
    assert (await client.put("/v1/admin/blocklist/bad%20id", headers=ADMIN,
                             json={"reason": "x"})).status_code == 400
    assert (await client.get("/v1/admin/blocklist", headers=ADMIN)).json()["blocked"] == []


async def test_another_process_sees_a_block_within_its_refresh(settings: Settings) -> None:
    """Two service processes: the block is made through one; the other refuses the user
    within about one refresh interval (1 s)."""
    async with app_client(settings) as one, app_client(settings) as other:
        c = await create_campaign(one, stock=1000, per_user_limit=100,
                                  rate_limit={"max": 1000, "per_seconds": 1})
        assert (await claim(other, c["id"], "late")).status_code == 201  # the list is read
        await one.put("/v1/admin/blocklist/late", headers=ADMIN, json={"reason": "abuse"})
        blocked_at = time.monotonic()
        deadline = blocked_at + 5
        while (await claim(other, c["id"], "late")).status_code != 403:
            assert time.monotonic() < deadline, "the other process never saw the block"
            await asyncio.sleep(0.05)
        assert time.monotonic() - blocked_at < 3  # one refresh (1 s), with room


async def test_a_block_costs_a_log_read_not_a_read_of_the_whole_list(
    redis_client: Redis, keyspace: KeySpace, settings: Settings,
) -> None:
    """200,000 users on the list: each block and unblock, in this process and in another,
    is followed through the change log; the list is read whole once per process."""
    users = [f"farm-{i}" for i in range(200_000)]
    for start in range(0, len(users), 10_000):
        await redis_client.hset(keyspace.blocklist, mapping=dict.fromkeys(
            users[start:start + 10_000], '{"reason": "farm", "blocked_at": 1}'))
    one_app, other_app = app_client(settings), app_client(settings)
    async with one_app as one, other_app as other:
        mine, theirs = blocklist_of(one_app), blocklist_of(other_app)
        c = await create_campaign(one, stock=100)
        assert (await claim(other, c["id"], "farm-7")).status_code == 403  # read whole, once
        for i in range(5):
            await one.put(f"/v1/admin/blocklist/new-{i}", headers=ADMIN, json={"reason": "x"})
        assert (await one.delete("/v1/admin/blocklist/farm-7", headers=ADMIN)).status_code \
            == 204
        await theirs.refresh()
        assert await theirs.is_blocked("new-4") and not await theirs.is_blocked("farm-7")
        assert await mine.is_blocked("new-0") and not await mine.is_blocked("farm-7")
        assert (mine.full_reads, theirs.full_reads) == (1, 1)
        page = (await one.get("/v1/admin/blocklist", headers=ADMIN,
                              params={"cursor": "farm-99998", "limit": 3})).json()
        assert [b["user_id"] for b in page["blocked"]] == ["farm-99999", "new-0", "new-1"]


def blocklist_of(app: app_client) -> Blocklist:
    """The blocklist copy of an in-process app (after its lifespan started)."""
    services: Services = app.state["services"]
    return services.claims.blocklist


async def test_a_process_behind_the_log_reads_the_list_again(
    redis_client: Redis, keyspace: KeySpace,
) -> None:
    scripts = Scripts(redis_client)
    behind = Blocklist(redis_client, scripts, keyspace)
    writer = Blocklist(redis_client, scripts, keyspace)
    await writer.block("early", "x")
    assert await behind.is_blocked("early")
    for i in range(3):
        await writer.block(f"u{i}", "x")
    await redis_client.xtrim(keyspace.blocklist_changes, minid="4-0", approximate=False)
    await behind.refresh()
    assert all([await behind.is_blocked(u) for u in ("early", "u0", "u1", "u2")])
    assert behind.full_reads == 2
