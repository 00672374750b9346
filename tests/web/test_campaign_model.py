"""Issue side of the campaign model: unlimited stock, daily limits, exclusions, the grab
button's view of one user, and campaign management (list, PATCH, end, open index)."""

from __future__ import annotations

from datetime import timedelta

import httpx
from redis.asyncio import Redis

from flashclaim.keys import KeySpace
from flashclaim.store.connection import server_time_ms
from flashclaim.zones import local_day, offset_rules, zone

from helpers import ADMIN, claim, create_campaign, iso, stats


async def test_unlimited_stock_grants_without_a_count_and_refuses_stock_changes(
    client: httpx.AsyncClient,
) -> None:
    c = await create_campaign(client, stock=None, per_user_limit=1)
    assert (c["stock"], c["remaining"], c["status"]) == (None, None, "live")
    for i in range(30):
        assert (await claim(client, c["id"], f"u{i}")).status_code == 201
    assert (await claim(client, c["id"], "u0")).json()["error"] == "already_claimed"
    s = await stats(client, c["id"])
    assert (s["granted"], s["remaining"], s["recorded"]) == (30, None, 30)
    r = await client.post(f"/v1/admin/campaigns/{c['id']}/stock", json={"delta": 5},
                          headers=ADMIN)
    assert (r.status_code, r.json()["error"]) == (409, "unlimited_stock")


async def test_stock_is_required_and_null_is_the_only_unlimited(
    client: httpx.AsyncClient,
) -> None:
    for body in ({"name": "x", "coupons": [{"type": "cash", "value": 1}]},
                 {"name": "x", "stock": 0, "coupons": [{"type": "cash", "value": 1}]},
                 {"name": "x", "stock": "unlimited", "coupons": [{"type": "cash", "value": 1}]}):
        r = await client.post("/v1/admin/campaigns", json=body, headers=ADMIN)
        assert (r.status_code, r.json()["error"]) == (400, "invalid_request"), body


async def test_daily_limit_refuses_the_next_claim_today_with_retry_after(
    client: httpx.AsyncClient,
) -> None:
    c = await create_campaign(client, stock=100, per_user_limit=5, per_user_daily_limit=2,
                              timezone="Asia/Shanghai")
    assert [(await claim(client, c["id"], "u1")).status_code for _ in range(2)] == [201, 201]
    r = await claim(client, c["id"], "u1")
    assert (r.status_code, r.json()["error"]) == (409, "daily_limit")
    assert 1 <= int(r.headers["retry-after"]) <= 86_400
    seen = (await client.get(f"/v1/campaigns/{c['id']}", headers={"X-User-Id": "u1"})).json()
    assert (seen["claimed"], seen["claimed_today"], seen["can_claim"]) == (2, 2, False)
    assert (await stats(client, c["id"]))["rejected"] == {"daily_limit": 1}


async def test_yesterdays_grants_do_not_count_today(
    client: httpx.AsyncClient, redis_client: Redis, keyspace: KeySpace,
) -> None:
    c = await create_campaign(client, stock=100, per_user_limit=5, per_user_daily_limit=1,
                              timezone="America/Los_Angeles")
    today = local_day("America/Los_Angeles", await server_time_ms(redis_client))
    daily = keyspace.campaign(c["id"]).daily
    await redis_client.hset(daily, "u1", f"{today - 1}:1")  # a grant yesterday
    await redis_client.hset(daily, "u2", f"{today}:1")  # a grant today
    assert (await claim(client, c["id"], "u1")).status_code == 201
    assert (await claim(client, c["id"], "u2")).json()["error"] == "daily_limit"
    assert await redis_client.hget(daily, "u1") == f"{today}:1"


def test_zone_rules_follow_daylight_saving() -> None:
    berlin = zone("Europe/Berlin")
    # 2026-03-29 01:00 UTC Berlin moves from +01:00 to +02:00
    start, end = 1_774_400_000_000, 1_775_000_000_000
    rules = offset_rules(berlin, start, end).split(";")
    assert rules == ["3600000", "1774746000000:7200000"]
    assert offset_rules(zone("Asia/Shanghai"), start, None) == "28800000"


async def test_bad_timezones_are_refused(client: httpx.AsyncClient) -> None:
    for tz in ("Mars/Olympus", "../../etc/passwd", "Asia/Shanghai\n", ""):
        r = await client.post("/v1/admin/campaigns", headers=ADMIN, json={
            "name": "x", "stock": 1, "timezone": tz, "coupons": [{"type": "cash", "value": 1}]})
        assert r.status_code == 400, tz


async def test_excluded_segments_are_not_eligible(client: httpx.AsyncClient) -> None:
    c = await create_campaign(client, exclude_segments=["risky", "employee"])
    r = await claim(client, c["id"], "u1", tags="vip,employee")
    assert (r.status_code, r.json()["error"]) == (403, "not_eligible")
    assert (await claim(client, c["id"], "u2", tags="vip")).status_code == 201
    r = await client.post("/v1/admin/campaigns", headers=ADMIN, json={
        "name": "x", "stock": 1, "segments": ["vip"], "exclude_segments": ["vip"],
        "coupons": [{"type": "cash", "value": 1}]})
    assert r.status_code == 400


async def test_the_grab_button_sees_its_user_and_the_server_clock(
    client: httpx.AsyncClient,
) -> None:
    c = await create_campaign(client, per_user_limit=2, segments=["vip"])
    anonymous = (await client.get(f"/v1/campaigns/{c['id']}")).json()
    assert "claimed" not in anonymous and "can_claim" not in anonymous
    assert anonymous["server_time"] >= c["starts_at"]
    vip = {"X-User-Id": "u1", "X-User-Tags": "vip"}
    before = (await client.get(f"/v1/campaigns/{c['id']}", headers=vip)).json()
    assert (before["claimed"], before["can_claim"]) == (0, True)
    await claim(client, c["id"], "u1", tags="vip")
    await claim(client, c["id"], "u1", tags="vip")
    after = (await client.get(f"/v1/campaigns/{c['id']}", headers=vip)).json()
    assert (after["claimed"], after["can_claim"]) == (2, False)
    other = (await client.get(f"/v1/campaigns/{c['id']}", headers={"X-User-Id": "u9"})).json()
    assert (other["claimed"], other["can_claim"]) == (0, False)  # not in the segment
    listing = (await client.get("/v1/campaigns")).json()
    assert "server_time" in listing
    bad = await client.get(f"/v1/campaigns/{c['id']}", headers={"X-User-Id": "bad id"})
    assert bad.status_code == 400


async def test_admin_listing_pages_and_filters_by_status(client: httpx.AsyncClient) -> None:
    made = [await create_campaign(client, id=f"list-{i}") for i in range(5)]
    await client.post("/v1/admin/campaigns/list-1/pause", headers=ADMIN)
    seen: list[str] = []
    cursor = ""
    while True:
        r = await client.get("/v1/admin/campaigns", headers=ADMIN,
                             params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        page = r.json()
        seen += [c["id"] for c in page["campaigns"]]
        assert len(page["campaigns"]) <= 2
        if page["next"] is None:
            break
        cursor = page["next"]
    assert seen == [c["id"] for c in made]
    paused = (await client.get("/v1/admin/campaigns", headers=ADMIN,
                               params={"status": "paused"})).json()
    assert [c["id"] for c in paused["campaigns"]] == ["list-1"]
    for params in ({"status": "closed"}, {"limit": "0"}, {"cursor": "x.y.z"},
                   {"cursor": "12.bad id"}):
        r = await client.get("/v1/admin/campaigns", headers=ADMIN, params=params)
        assert r.status_code == 400, params


async def test_patch_changes_what_it_names_and_keeps_the_rest(client: httpx.AsyncClient) -> None:
    c = await create_campaign(client, per_user_limit=1, channels=["app"])
    assert (await claim(client, c["id"], "u1", channel="app")).status_code == 201
    assert (await claim(client, c["id"], "u1", channel="app")).json()["error"] == \
        "already_claimed"
    r = await client.patch(f"/v1/admin/campaigns/{c['id']}", headers=ADMIN, json={
        "name": "Renamed", "per_user_limit": 2, "channels": ["app", "web"],
        "ends_at": iso(timedelta(days=2))})
    assert r.status_code == 200, r.text
    patched = r.json()
    assert patched["name"] == "Renamed" and patched["channels"] == ["app", "web"]
    assert patched["coupons"] == c["coupons"] and patched["stock"] == c["stock"]
    # the raised limit holds at once in this process (the gate forgot the holder)
    assert (await claim(client, c["id"], "u1", channel="web")).status_code == 201


async def test_patch_refuses_what_it_cannot_change(client: httpx.AsyncClient) -> None:
    c = await create_campaign(client)
    url = f"/v1/admin/campaigns/{c['id']}"
    for body in ({}, {"stock": 5}, {"starts_at": iso(timedelta(hours=1))}, {"id": "x"},
                 {"timezone": "UTC"}, {"per_user_limit": 0}, {"nme": "typo"},
                 {"ends_at": iso(timedelta(hours=-1))}, {"per_user_daily_limit": 5}):
        r = await client.patch(url, headers=ADMIN, json=body)
        assert r.status_code == 400, (body, r.text)
    new_coupons = [{"type": "cash", "value": 900}]
    assert (await client.patch(url, headers=ADMIN, json={"coupons": new_coupons})).status_code \
        == 200  # nothing granted yet
    assert (await claim(client, c["id"], "u1")).json()["coupons"][0]["value"] == 900
    r = await client.patch(url, headers=ADMIN, json={"coupons": [{"type": "cash", "value": 5}]})
    assert (r.status_code, r.json()["error"]) == (409, "coupons_fixed")
    after = (await client.get(f"/v1/campaigns/{c['id']}")).json()
    assert after["coupons"][0]["value"] == 900 and after["name"] == c["name"]
    r = await client.patch("/v1/admin/campaigns/nope", headers=ADMIN, json={"name": "x"})
    assert r.status_code == 404


async def test_end_closes_the_campaign_and_drops_it_from_the_open_index(
    client: httpx.AsyncClient, redis_client: Redis, keyspace: KeySpace,
) -> None:
    c = await create_campaign(client)
    later = await create_campaign(client, starts_at=iso(timedelta(hours=1)))
    assert {x["id"] for x in (await client.get("/v1/campaigns")).json()["campaigns"]} >= \
        {c["id"], later["id"]}
    r = await client.post(f"/v1/admin/campaigns/{c['id']}/end", headers=ADMIN)
    assert (r.status_code, r.json()["status"]) == (200, "ended")
    assert (await claim(client, c["id"], "u1")).json()["error"] == "ended"
    again = await client.post(f"/v1/admin/campaigns/{c['id']}/end", headers=ADMIN)
    assert (again.status_code, again.json()["error"]) == (409, "campaign_ended")
    r = await client.patch(f"/v1/admin/campaigns/{c['id']}", headers=ADMIN, json={"name": "x"})
    assert (r.status_code, r.json()["error"]) == (409, "campaign_ended")
    listed = {x["id"] for x in (await client.get("/v1/campaigns")).json()["campaigns"]}
    assert c["id"] not in listed and later["id"] in listed
    open_ids = set(await redis_client.zrange(keyspace.open_campaigns, 0, -1))
    assert c["id"] not in open_ids and later["id"] in open_ids


async def test_listing_reads_only_the_open_index(
    client: httpx.AsyncClient, redis_client: Redis, keyspace: KeySpace,
) -> None:
    """Campaigns long over are not read: after one listing the index holds open ones only,
    though the registry of every campaign keeps them all."""
    ended = [await create_campaign(client) for _ in range(20)]
    for c in ended:
        await client.post(f"/v1/admin/campaigns/{c['id']}/end", headers=ADMIN)
    live = await create_campaign(client)
    await client.get("/v1/campaigns")
    assert set(await redis_client.zrange(keyspace.open_campaigns, 0, -1)) == {live["id"]}
    assert await redis_client.zcard(keyspace.registry) == 21


def test_claim_ids_stay_distinct_across_the_random_pool_and_a_fork() -> None:
    """Claim ids draw from a pool of os.urandom bytes; a forked child refills its own."""
    import os

    from flashclaim.coupons import new_claim_id

    ids = [new_claim_id("c") for _ in range(2_000)]  # five refills of the pool
    assert len(set(ids)) == len(ids) and all(len(i) == 24 for i in ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, then gone
        os.write(write, new_claim_id("c").encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    assert child != new_claim_id("c") and child not in ids


async def test_the_public_list_leaves_out_internal_campaigns_and_says_what_a_user_may_do(
    client: httpx.AsyncClient,
) -> None:
    await create_campaign(client, id="sale", stock=5)
    await create_campaign(client, id="vip-only", stock=5, segments=["vip"])
    await create_campaign(client, id="app-only", stock=5, channels=["app"])
    await create_campaign(client, id="probe", stock=None, listed=False)
    assert (await claim(client, "sale", "alice")).status_code == 201
    anonymous = (await client.get("/v1/campaigns")).json()["campaigns"]
    assert sorted(c["id"] for c in anonymous) == ["app-only", "sale", "vip-only"]
    assert all("can_claim" not in c for c in anonymous)
    mine = (await client.get("/v1/campaigns", params={"channel": "web"},
                             headers={"X-User-Id": "alice"})).json()
    seen = {c["id"]: (c["can_claim"], c["refusal"]) for c in mine["campaigns"]}
    assert seen == {"sale": (False, "already_claimed"), "vip-only": (False, "not_eligible"),
                    "app-only": (False, "not_eligible")}
    vip = (await client.get("/v1/campaigns", params={"channel": "app"},
                            headers={"X-User-Id": "bob", "X-User-Tags": "vip"})).json()
    assert all(c["can_claim"] and c["refusal"] is None for c in vip["campaigns"])
    # the internal campaign is claimable by id, and says it is not listed
    assert (await claim(client, "probe", "carol")).status_code == 201
    assert (await client.get("/v1/campaigns/probe")).json()["listed"] is False


async def test_personal_answers_are_private_and_claimed_today_needs_a_daily_limit(
    client: httpx.AsyncClient,
) -> None:
    await create_campaign(client, id="plain", stock=5, per_user_limit=2)
    await create_campaign(client, id="daily", stock=5, per_user_limit=2, per_user_daily_limit=1)
    for campaign_id in ("plain", "daily"):
        assert (await claim(client, campaign_id, "alice")).status_code == 201
    me = {"X-User-Id": "alice"}
    plain = await client.get("/v1/campaigns/plain", headers=me)
    daily = await client.get("/v1/campaigns/daily", headers=me)
    assert (plain.json()["claimed"], plain.json()["claimed_today"]) == (1, None)
    assert (daily.json()["claimed_today"], daily.json()["refusal"]) == (1, "daily_limit")
    for r in (plain, daily, await client.get("/v1/campaigns", headers=me),
              await client.get("/v1/me/coupons", headers=me)):
        assert r.headers["cache-control"] == "private, no-store", r.url
        assert "X-User-Id" in r.headers["vary"]
    assert "private" not in (await client.get("/v1/campaigns/plain")).headers.get(
        "cache-control", "")
