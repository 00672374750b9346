"""Caps across campaigns (on Valkey and on the cluster): a user's unused coupons and
grants a day over a cap group's campaigns, whose keys live in different slots; the
reservation's bound under a crowd (exact) and under a crash (at most one grant's coupons
more for each grant whose service died before settling, and only while the ledger has
not carried it past the reservation's life)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from flashclaim.claim.caps import CapGuard
from flashclaim.claim.decision import ClaimCode, ClaimRequest
from flashclaim.keys import KeySpace
from flashclaim.store.cap_store import CapGroups
from flashclaim.store.connection import server_time_ms
from flashclaim.store.scripts import Scripts
from flashclaim.zones import DEFAULT_TIMEZONE

from helpers import ADMIN, NAMESPACE, SyncRedis, claim, consume, create_campaign, use

KS = KeySpace(NAMESPACE)
CASH = [{"type": "cash", "value": 500}]
PAIR = [{"type": "cash", "value": 500}, {"type": "cash", "value": 300}]


async def put_group(client: httpx.AsyncClient, name: str, **caps: Any) -> httpx.Response:
    return await client.put(f"/v1/admin/cap-groups/{name}", headers=ADMIN, json=caps)


async def test_cap_groups_are_set_read_and_named_by_campaigns(
        client: httpx.AsyncClient) -> None:
    made = await put_group(client, "newcomers", max_unused=3, timezone="Asia/Shanghai")
    assert made.status_code == 201 and made.json()["max_daily"] is None, made.text
    again = await put_group(client, "newcomers", max_unused=3, max_daily=2)
    assert again.status_code == 200  # replaced whole: the zone is the default again
    assert again.json()["timezone"] == DEFAULT_TIMEZONE
    listed = (await client.get("/v1/admin/cap-groups", headers=ADMIN)).json()["cap_groups"]
    assert [(g["name"], g["max_unused"], g["max_daily"]) for g in listed] == [
        ("newcomers", 3, 2)]
    for name, body in (("x", {}), ("x", {"max_unused": 0}), ("x", {"max_daily": 10_001}),
                       ("x", {"max_unused": 1, "timezone": "Mars/Base"}),
                       ("x", {"max_unused": 1, "extra": 1}), ("bad{name}", {"max_unused": 1})):
        refused = await put_group(client, name, **body)
        assert refused.status_code == 400, (name, body, refused.text)
    campaign = await create_campaign(client, cap_group="newcomers")
    assert campaign["cap_group"] == "newcomers"
    unknown = await client.post("/v1/admin/campaigns", headers=ADMIN, json={
        "name": "n", "stock": 5, "coupons": CASH, "cap_group": "nobody"})
    assert unknown.status_code == 400 and "nobody" in unknown.json()["message"]
    assert (await client.delete("/v1/admin/cap-groups/newcomers", headers=ADMIN)
            ).status_code == 204
    assert (await client.delete("/v1/admin/cap-groups/newcomers", headers=ADMIN)
            ).status_code == 404


async def test_unused_coupons_are_capped_across_campaigns(
        client: httpx.AsyncClient, sync_redis: SyncRedis, tmp_path: Path) -> None:
    """max_unused 3: a pack of two and a single fill it, whatever the campaigns; a use
    seen by the ledger makes room for one more."""
    await put_group(client, "g", max_unused=3)
    pair = (await create_campaign(client, stock=50, coupons=PAIR, per_user_limit=5,
                                  cap_group="g"))["id"]
    single = (await create_campaign(client, stock=50, coupons=CASH, per_user_limit=5,
                                    cap_group="g"))["id"]
    free = (await create_campaign(client, stock=50, coupons=CASH, per_user_limit=5))["id"]
    first = await claim(client, pair, "ann")
    assert first.status_code == 201
    assert (await claim(client, single, "ann")).status_code == 201
    refused = await claim(client, single, "ann")
    assert (refused.status_code, refused.json()["error"]) == (409, "cap_reached")
    assert (await claim(client, pair, "ann")).json()["error"] == "cap_reached"
    assert (await claim(client, free, "ann")).status_code == 201  # not in the group
    assert (await claim(client, single, "bob")).status_code == 201  # another user's room
    stats = (await client.get(f"/v1/admin/campaigns/{single}", headers=ADMIN)).json()
    assert stats["stats"]["rejected"] == {"cap_reached": 1}
    coupon = first.json()["coupons"][0]["coupon_id"]
    assert (await use(client, coupon, "redeem", "order-1")).status_code == 200
    assert (await claim(client, single, "ann")).json()["error"] == "cap_reached"  # not seen
    consume(sync_redis, None, tmp_path)  # the ledger sees the use
    assert (await claim(client, single, "ann")).status_code == 201
    assert (await claim(client, single, "ann")).json()["error"] == "cap_reached"


async def test_grants_a_day_are_capped_across_campaigns(client: httpx.AsyncClient) -> None:
    await put_group(client, "daily", max_daily=2, timezone="Asia/Shanghai")
    ids = [(await create_campaign(client, stock=50, coupons=CASH, per_user_limit=5,
                                  cap_group="daily"))["id"] for _ in range(2)]
    assert (await claim(client, ids[0], "cy")).status_code == 201
    # an operator grant counts (and is refused) like a grab
    granted = await client.post(f"/v1/admin/campaigns/{ids[1]}/grants", headers=ADMIN,
                                json={"grant_id": "g1", "users": ["cy", "dee"]})
    assert granted.status_code in (201, 202), granted.text
    deadline = asyncio.get_running_loop().time() + 20
    while (outcome := (await client.get(f"/v1/admin/campaigns/{ids[1]}/grants/g1",
                                        headers=ADMIN)).json())["state"] != "done":
        assert asyncio.get_running_loop().time() < deadline, outcome
        await asyncio.sleep(0.05)
    refused = await claim(client, ids[1], "cy")
    assert (refused.status_code, refused.json()["error"]) == (409, "cap_daily_limit")
    assert 1 <= int(refused.headers["Retry-After"]) <= 86_400
    assert (await claim(client, ids[1], "dee")).status_code == 201  # dee: 2 today
    assert (await claim(client, ids[0], "dee")).json()["error"] == "cap_daily_limit"


async def test_a_crowd_never_passes_the_cap(client: httpx.AsyncClient,
                                            redis_client: Redis) -> None:
    """Thirty users each tap three campaigns of a group twice at once (180 taps): the cap
    of two is reached exactly by every user, never passed."""
    await put_group(client, "crowd", max_unused=2)
    ids = [(await create_campaign(client, stock=500, coupons=CASH, per_user_limit=2,
                                  cap_group="crowd"))["id"] for _ in range(3)]
    users = [f"u{i}" for i in range(30)]
    taps = [claim(client, cid, user) for user in users for cid in ids for _ in range(2)]
    replies = await asyncio.gather(*taps)
    codes = Counter(r.status_code if r.status_code == 201 else r.json()["error"]
                    for r in replies)
    assert codes == {201: 60, "cap_reached": 120}, codes
    per_user = Counter(r.json()["user_id"] for r in replies if r.status_code == 201)
    assert set(per_user.values()) == {2}
    for user in users:
        held = KS.cap("crowd", user)
        assert await redis_client.zcard(held.held) == 2
        assert await redis_client.zcard(held.pending) == 0  # every reservation settled


async def test_the_bound_under_a_crash(client: httpx.AsyncClient, redis_client: Redis,
                                       sync_redis: SyncRedis, tmp_path: Path) -> None:
    """A service that dies after claim.lua granted and before it settled: its reservation
    still counts, so the cap holds; once the ledger carries the grant, it holds for good.
    Had the reservation lapsed first, one more grant gets through: the stated bound."""
    await put_group(client, "crash", max_unused=1)
    cid = (await create_campaign(client, stock=50, coupons=CASH, per_user_limit=5,
                                 cap_group="crash"))["id"]
    scripts = Scripts(redis_client)
    guard = CapGuard(scripts, KS, CapGroups(redis_client, KS))

    async def grant_then_die(user: str, claim_id: str) -> None:
        reserved = await guard.reserve("crash", user, claim_id, 1)
        assert reserved is not None and not hasattr(reserved, "code")
        [reply] = await scripts.claim(KS.campaign(cid), [ClaimRequest(
            claim_id, "r:" + claim_id, user, (), None, None)])
        assert reply[0] == ClaimCode.GRANTED  # ... and the service dies before settling

    await grant_then_die("eve", f"{cid}-crash-1")
    assert (await claim(client, cid, "eve")).json()["error"] == "cap_reached"  # reserved
    consume(sync_redis, None, tmp_path)  # the ledger settles the grant from the stream
    keys = KS.cap("crash", "eve")
    assert (await redis_client.zcard(keys.pending), await redis_client.zcard(keys.held)) == (0, 1)
    assert (await claim(client, cid, "eve")).json()["error"] == "cap_reached"

    # The bound: the same crash, but the reservation lapses before the ledger carries it.
    await grant_then_die("fay", f"{cid}-crash-2")
    fay = KS.cap("crash", "fay")
    [member] = await redis_client.zrange(fay.pending, 0, -1)  # lapsed, as if a minute passed
    await redis_client.zadd(fay.pending, {str(member): await server_time_ms(redis_client) - 1})
    assert (await claim(client, cid, "fay")).status_code == 201  # one more than the cap
    consume(sync_redis, None, tmp_path)
    assert await redis_client.zcard(fay.held) == 2  # the ledger made it good
    assert (await claim(client, cid, "fay")).json()["error"] == "cap_reached"
