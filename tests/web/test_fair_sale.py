"""A fair sale through the API: the device cap and spent solutions under a crowd, the
challenge's answers, a drawn campaign recomputed from its export and seed, a draw begun
again after a crash. Runs on Valkey and on the local cluster (ALSO_ON_CLUSTER)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
from redis.asyncio import Redis

from flashclaim.claim.drawer import Drawer
from flashclaim.claim.service import ClaimService
from flashclaim.fair.challenge import solve
from flashclaim.fair.draw import winners
from flashclaim.keys import KeySpace
from flashclaim.store.scripts import DrawCode, Scripts
from flashclaim.stream import ClaimRecord

from helpers import ADMIN, create_campaign, entries, iso, stats

DEADLINE_S = 20


def user(name: str, device: str | None = None) -> dict[str, str]:
    headers = {"X-User-Id": name}
    if device is not None:
        headers["X-Device-Id"] = device
    return headers


async def grab(client: httpx.AsyncClient, cid: str, headers: dict[str, str],
               body: dict[str, Any] | None = None) -> httpx.Response:
    return await client.post(f"/v1/campaigns/{cid}/claims", json=body, headers=headers)


async def records(r: Redis, keyspace: KeySpace, cid: str) -> list[ClaimRecord]:
    return [ClaimRecord.decode(i, f) for i, f in await entries(r, keyspace.campaign(cid).stream)]


def over_cap(recs: list[ClaimRecord], cap: int) -> dict[str, int]:
    """The devices (by their recorded hash) holding more grants than the cap."""
    per_device = Counter(r.device_hash for r in recs if r.device_hash)
    return {d: n for d, n in per_device.items() if n > cap}


async def crowd_on_ten_devices(client: httpx.AsyncClient, cid: str) -> list[int]:
    taps = [grab(client, cid, user(f"acct{i}", f"phone{i % 10}")) for i in range(200)]
    return [r.status_code for r in await asyncio.gather(*taps)]


async def test_device_cap_holds_under_a_crowd(client: httpx.AsyncClient, redis_client: Redis,
                                              keyspace: KeySpace) -> None:
    capped = await create_campaign(client, stock=1000, per_device_limit=3)
    statuses = await crowd_on_ten_devices(client, capped["id"])
    assert Counter(statuses) == {201: 30, 409: 170}
    recs = await records(redis_client, keyspace, capped["id"])
    assert len(recs) == 30 and over_cap(recs, 3) == {}
    assert (await stats(client, capped["id"]))["rejected"] == {"device_limit": 170}
    # the same check catches the breach when nothing caps the devices
    open_campaign = await create_campaign(client, stock=1000)
    await crowd_on_ten_devices(client, open_campaign["id"])
    breached = over_cap(await records(redis_client, keyspace, open_campaign["id"]), 3)
    assert len(breached) == 10 and set(breached.values()) == {20}


async def test_fair_settings_are_checked(client: httpx.AsyncClient) -> None:
    soon, later = iso(timedelta(minutes=1)), iso(timedelta(minutes=2))
    refused: list[dict[str, Any]] = [
        {"per_device_limit": 1, "buckets": 2},
        {"per_device_limit": 0},
        {"missing_device": "maybe", "per_device_limit": 1},
        {"challenge": {"difficulty": 33}},
        {"admission": {"mode": "draw", "entries_until": later, "draw_at": soon}},
        {"admission": {"mode": "lottery", "entries_until": soon, "draw_at": later}},
        {"admission": {"mode": "draw", "entries_until": soon, "draw_at": later}, "stock": None},
        {"admission": {"mode": "draw", "entries_until": soon, "draw_at": later}, "buckets": 2},
        {"admission": {"mode": "draw", "entries_until": soon, "draw_at": later},
         "ends_at": soon},
    ]
    for fields in refused:
        response = await client.post("/v1/admin/campaigns", headers=ADMIN, json={
            "name": "n", "stock": 10, "coupons": [{"type": "cash", "value": 1}], **fields})
        assert response.status_code == 400, (fields, response.text)
    listed = (await client.get("/v1/admin/campaigns", headers=ADMIN)).json()["campaigns"]
    assert listed == []  # nothing was made


async def test_a_missing_device_is_refused_or_allowed(client: httpx.AsyncClient) -> None:
    refusing = await create_campaign(client, per_device_limit=1)
    response = await grab(client, refusing["id"], user("u1"))
    assert response.status_code == 403 and response.json()["error"] == "device_required"
    allowing = await create_campaign(client, per_device_limit=1, missing_device="allow")
    assert (await grab(client, allowing["id"], user("u1"))).status_code == 201
    bad = await grab(client, allowing["id"], user("u2", "phone with spaces"))
    assert bad.status_code == 400
    shown = (await client.get(f"/v1/campaigns/{refusing['id']}")).json()
    assert (shown["per_device_limit"], shown["missing_device"]) == (1, "refuse")


async def test_records_carry_keyed_hashes_not_addresses(
        client: httpx.AsyncClient, redis_client: Redis, keyspace: KeySpace) -> None:
    campaign = await create_campaign(client)
    assert (await grab(client, campaign["id"], user("u1", "phone-1"))).status_code == 201
    [rec] = await records(redis_client, keyspace, campaign["id"])
    [(_, raw)] = await entries(redis_client, keyspace.campaign(campaign["id"]).stream)
    assert all(len(h) == 16 for h in (rec.ip_hash, rec.net_hash, rec.device_hash))
    assert not any("phone-1" in v or "127.0.0.1" in v for v in raw.values())


async def challenge_of(client: httpx.AsyncClient, cid: str, name: str) -> dict[str, Any]:
    response = await client.get(f"/v1/campaigns/{cid}/challenge", headers=user(name))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_challenge_answers(client: httpx.AsyncClient) -> None:
    campaign = await create_campaign(client, per_user_limit=5, challenge={"difficulty": 8})
    cid = campaign["id"]
    missing = await grab(client, cid, user("u1"))
    assert missing.status_code == 403 and missing.json()["error"] == "challenge_required"
    c = await challenge_of(client, cid, "u1")
    assert c["difficulty"] == 8
    before = await stats(client, cid)
    wrong = await grab(client, cid, user("u1"), {"challenge": c["token"], "nonce": "x1"})
    assert wrong.status_code == 403 and wrong.json()["error"] == "challenge_invalid"
    unsolved = next(str(n) for n in range(10_000) if str(n) != solve(c["token"], 8) and
                    hashlib.sha256(f"{c['token']}:{n}".encode()).digest()[0] != 0)
    failed = await grab(client, cid, user("u1"), {"challenge": c["token"], "nonce": unsolved})
    assert failed.json()["error"] == "challenge_invalid"
    assert await stats(client, cid) == before  # a wrong solution never reached Redis
    nonce = solve(c["token"], 8)
    stolen = await grab(client, cid, user("u2"), {"challenge": c["token"], "nonce": nonce})
    assert stolen.json()["error"] == "challenge_invalid"  # bound to u1
    ok = await grab(client, cid, user("u1"), {"challenge": c["token"], "nonce": nonce})
    assert ok.status_code == 201, ok.text
    again = await grab(client, cid, user("u1"), {"challenge": c["token"], "nonce": nonce})
    assert again.status_code == 403 and again.json()["error"] == "challenge_spent"
    plain = await create_campaign(client)
    none = await client.get(f"/v1/campaigns/{plain['id']}/challenge", headers=user("u1"))
    assert none.status_code == 409 and none.json()["error"] == "challenge_not_required"
    # no challenge during the countdown: a farm would solve its claims in advance
    later = await create_campaign(client, starts_at=iso(timedelta(hours=1)),
                                  challenge={"difficulty": 8})
    early = await client.get(f"/v1/campaigns/{later['id']}/challenge", headers=user("u1"))
    assert early.status_code == 409 and early.json()["error"] == "not_started"
    half = await grab(client, cid, user("u1"), {"challenge": c["token"]})
    assert half.status_code == 400  # a challenge without its nonce
    assert (await create_campaign(client, challenge={}))["challenge"] == {"difficulty": 15}


async def test_a_solution_is_spent_once_under_a_crowd(client: httpx.AsyncClient) -> None:
    campaign = await create_campaign(client, stock=100, per_user_limit=50,
                                     challenge={"difficulty": 6})
    cid = campaign["id"]
    c = await challenge_of(client, cid, "u1")
    proof = {"challenge": c["token"], "nonce": solve(c["token"], 6)}
    replies = await asyncio.gather(*[grab(client, cid, user("u1"), proof) for _ in range(40)])
    codes = Counter(r.status_code if r.status_code != 403 else r.json()["error"]
                    for r in replies)
    assert codes == {201: 1, "challenge_spent": 39}
    # fresh solutions, one each, are all granted
    fresh = [await challenge_of(client, cid, "u1") for _ in range(5)]
    replies = await asyncio.gather(*[grab(client, cid, user("u1"), {
        "challenge": f["token"], "nonce": solve(f["token"], 6)}) for f in fresh])
    assert [r.status_code for r in replies] == [201] * 5


async def wait_for_draw(client: httpx.AsyncClient, cid: str) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        shown: dict[str, Any] = (await client.get(f"/v1/campaigns/{cid}")).json()
        if shown["draw"]["state"] == "done":
            return shown
        await asyncio.sleep(0.1)
    raise AssertionError("the draw was not done in time")


async def export(client: httpx.AsyncClient, cid: str) -> list[str]:
    users: list[str] = []
    cursor = ""
    while True:
        page = (await client.get(f"/v1/admin/campaigns/{cid}/entries",
                                 params={"cursor": cursor, "limit": 7}, headers=ADMIN)).json()
        users += [e["user_id"] for e in page["entries"]]
        if page["next"] is None:
            return users
        cursor = page["next"]


async def test_a_draw_is_recomputed_from_its_export_and_seed(
        client: httpx.AsyncClient, redis_client: Redis, keyspace: KeySpace) -> None:
    closes = iso(timedelta(seconds=2))
    campaign = await create_campaign(client, stock=10, admission={
        "mode": "draw", "entries_until": closes, "draw_at": closes})
    cid = campaign["id"]
    commitment = campaign["draw"]["seed_sha256"]
    assert campaign["draw"]["seed"] is None and campaign["draw"]["state"] == "open"
    grabbed = await grab(client, cid, user("u0"))
    assert grabbed.status_code == 409 and grabbed.json()["error"] == "draw_campaign"
    statuses = [(await client.post(f"/v1/campaigns/{cid}/entries", headers=user(f"u{i}")))
                .status_code for i in range(30)]
    assert statuses == [201] * 30
    again = await client.post(f"/v1/campaigns/{cid}/entries", headers=user("u3"))
    assert again.status_code == 200 and again.json()["result"] == "pending"
    shown = await wait_for_draw(client, cid)
    late = await client.post(f"/v1/campaigns/{cid}/entries", headers=user("late"))
    assert late.status_code == 409 and late.json()["error"] == "entries_closed"
    seed = bytes.fromhex(shown["draw"]["seed"])
    assert hashlib.sha256(seed).hexdigest() == commitment
    entrants = await export(client, cid)
    assert sorted(entrants) == sorted(f"u{i}" for i in range(30))
    expected = set(winners(seed, entrants, 10))
    recs = await records(redis_client, keyspace, cid)
    assert {r.user_id for r in recs} == expected and len(recs) == 10
    assert {r.source for r in recs} == {"draw"}
    results = {}
    for i in range(30):
        me = (await client.get(f"/v1/campaigns/{cid}/entries/me", headers=user(f"u{i}"))).json()
        results[f"u{i}"] = me["result"]
        assert me["entered"] and ("claim" in me) == (me["result"] == "won")
    assert {u for u, r in results.items() if r == "won"} == expected
    assert shown["draw"]["winners"] == 10 and shown["remaining"] == 0


async def test_a_draw_begun_again_after_a_crash_grants_each_winner_once(
        client: httpx.AsyncClient, redis_client: Redis, keyspace: KeySpace) -> None:
    closes = iso(timedelta(seconds=1))
    campaign = await create_campaign(client, stock=8, admission={
        "mode": "draw", "entries_until": closes, "draw_at": iso(timedelta(days=1))})
    cid = campaign["id"]
    for i in range(25):
        assert (await client.post(f"/v1/campaigns/{cid}/entries",
                                  headers=user(f"u{i}"))).status_code == 201
    keys = keyspace.campaign(cid)
    await redis_client.hset(keys.meta, "draw_at", "0")  # due now (the drawer's own clock)
    scripts = Scripts(redis_client)
    claims = ClaimService.over(redis_client, scripts, keyspace)
    # the first drawer crashes after granting half of its winners
    assert (await scripts.start_draw(keys))[0] is DrawCode.DRAWING
    seed = bytes.fromhex(str(await redis_client.hget(keys.meta, "draw_seed")))
    chosen = winners(seed, [str(u) for u in await redis_client.hkeys(keys.entries)], 8)
    await claims.grant_drawn(cid, chosen[:4])
    assert len(await records(redis_client, keyspace, cid)) == 4
    # another service finishes it: the same winners, each granted once
    assert await Drawer(redis_client, scripts, keyspace, claims).draw(cid) is DrawCode.DONE
    recs = await records(redis_client, keyspace, cid)
    assert sorted(r.user_id for r in recs) == sorted(chosen)
    shown = (await client.get(f"/v1/campaigns/{cid}")).json()
    assert shown["draw"]["state"] == "done" and shown["draw"]["winners"] == 8
    assert await Drawer(redis_client, scripts, keyspace, claims).draw(cid) is DrawCode.DONE
    assert len(await records(redis_client, keyspace, cid)) == 8
    assert await redis_client.zscore(keyspace.draws_due, cid) is None
