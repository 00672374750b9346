"""A/B holdouts (on Valkey and on the cluster): a stable control group that no grab,
operator grant or trigger ever grants, recorded so the ledger knows the groups; and the
uplift of the worked example, to the cent."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from flashclaim.holdout import CONTROL, TREATMENT, group_of
from flashclaim.keys import KeySpace
from flashclaim.ledger.db import open_ledger
from flashclaim.ledger.reconcile import reconcile_campaign
from flashclaim.settings import Settings

from helpers import (
    ADMIN,
    EVENTS,
    NAMESPACE,
    SyncRedis,
    app_client,
    claim,
    consume,
    create_campaign,
    entries,
    stats,
    use,
)

KS = KeySpace(NAMESPACE)
SALT = "spring-test"


def users_of(group: str, count: int, percent: int, prefix: str) -> list[str]:
    found = (f"{prefix}{i}" for i in range(100_000))
    return [u for u, _ in zip((u for u in found if group_of(SALT, u, percent) == group),
                              range(count), strict=False)]


async def send(client: httpx.AsyncClient, event_id: str, kind: str, user: str,
               **attributes: Any) -> httpx.Response:
    return await client.post("/v1/events", headers=EVENTS, json={
        "event_id": event_id, "type": kind, "user_id": user, "attributes": attributes})


async def test_the_control_group_is_stable_and_never_granted(
        client: httpx.AsyncClient, redis_client: Redis) -> None:
    made = await create_campaign(client, stock=1000, per_user_limit=5,
                                 holdout={"percent": 30, "salt": SALT})
    cid = made["id"]
    assert made["holdout"] == {"percent": 30, "salt": SALT}
    users = [f"shopper{i}" for i in range(120)]
    first = await asyncio.gather(*[claim(client, cid, u) for u in users])
    by_group = {u: group_of(SALT, u, 30) for u in users}
    for user, reply in zip(users, first, strict=True):
        if by_group[user] == CONTROL:
            assert (reply.status_code, reply.json()["error"]) == (403, "holdout"), user
        else:
            assert reply.status_code == 201, user
    controls = [u for u in users if by_group[u] == CONTROL]
    assert 20 < len(controls) < 55  # about 30 %
    again = await asyncio.gather(*[claim(client, cid, u) for u in controls])  # stable
    assert {r.json()["error"] for r in again} == {"holdout"}
    s = await stats(client, cid)
    assert s["remaining"] == 1000 - (len(users) - len(controls))  # no stock spent on them
    assert s["rejected"]["holdout"] == 2 * len(controls)
    # recorded once each, in the holdout stream (the ledger's source of the groups)
    recorded = await entries(redis_client, KS.campaign(cid).holdout)
    assert sorted(f["user_id"] for _, f in recorded) == sorted(controls)
    assert {f["source"] for _, f in recorded} == {"grab"}

    # an operator grant skips them (their outcome says why), and so does a trigger
    late = users_of(CONTROL, 3, 30, "late-c") + users_of(TREATMENT, 3, 30, "late-t")
    submitted = await client.post(f"/v1/admin/campaigns/{cid}/grants", headers=ADMIN,
                                  json={"grant_id": "g1", "users": late})
    assert submitted.status_code in (201, 202), submitted.text
    deadline = time.monotonic() + 20
    while (g := (await client.get(f"/v1/admin/campaigns/{cid}/grants/g1",
                                  headers=ADMIN)).json())["state"] != "done":
        assert time.monotonic() < deadline, g
        await asyncio.sleep(0.05)
    assert g["outcomes"] == {"granted": 3, "holdout": 3}
    rule = await client.post("/v1/admin/rules", headers=ADMIN, json={
        "rule_id": "welcome", "on": "active", "grant": {"campaign_id": cid}})
    assert rule.status_code == 201, rule.text
    kept_out = users_of(CONTROL, 1, 30, "trig-c")[0]
    let_in = users_of(TREATMENT, 1, 30, "trig-t")[0]
    for user in (kept_out, let_in):
        assert (await send(client, f"e-{user}", "active", user)).status_code == 202
    control_hash = KS.campaign(cid).control
    deadline = time.monotonic() + 20
    while not await redis_client.hexists(control_hash, kept_out):
        assert time.monotonic() < deadline, "the trigger's control user was not decided"
        await asyncio.sleep(0.05)
    while await redis_client.hget(KS.campaign(cid).users, let_in) is None:
        assert time.monotonic() < deadline, "the trigger's treated user was not granted"
        await asyncio.sleep(0.05)
    assert await redis_client.hget(KS.campaign(cid).users, kept_out) is None


async def test_bad_holdouts_are_refused(client: httpx.AsyncClient) -> None:
    for holdout in ({"percent": 0}, {"percent": 51}, {"percent": 10, "salt": "a b"},
                    {"percent": 10, "extra": 1}):
        refused = await client.post("/v1/admin/campaigns", headers=ADMIN, json={
            "name": "h", "stock": 5, "coupons": [{"type": "cash", "value": 100}],
            "holdout": holdout})
        assert refused.status_code == 400, holdout
    made = await create_campaign(client, holdout={"percent": 10})
    assert made["holdout"] == {"percent": 10, "salt": made["id"]}  # salted by its id
    patched = await client.patch(f"/v1/admin/campaigns/{made['id']}", headers=ADMIN,
                                 json={"holdout": {"percent": 20}})
    assert patched.status_code == 400  # fixed at creation
    plain = await create_campaign(client)
    window = {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z", "margin": "0.2"}
    none = await client.get(f"/v1/admin/campaigns/{plain['id']}/uplift", headers=ADMIN,
                            params=window)
    assert (none.status_code, none.json()["error"]) == (409, "no_holdout")
    no_margin = await client.get(f"/v1/admin/campaigns/{made['id']}/uplift", headers=ADMIN,
                                 params={k: v for k, v in window.items() if k != "margin"})
    assert no_margin.status_code == 400


async def test_the_uplift_of_the_worked_example(
        settings: Settings, sync_redis: SyncRedis, tmp_path: Path) -> None:
    """100 users without the coupon: 50 buy at ¥100 (profit ¥1,000 at a 20 % margin). 100
    with "spend ¥199 save ¥20": 70 buy at ¥250 and use it (profit ¥3,500 - ¥1,400 =
    ¥2,100). Uplift ¥11.00 a user, 95 % interval ¥7.65 to ¥14.35."""
    async with app_client(dataclasses.replace(settings, data_dir=tmp_path)) as client:
        made = await create_campaign(client, stock=None, holdout={"percent": 50, "salt": SALT},
                                     coupons=[{"type": "threshold", "value": 2000,
                                               "min_spend": 19_900}])
        cid = made["id"]
        treated = users_of(TREATMENT, 100, 50, "t")
        control = users_of(CONTROL, 100, 50, "c")
        claims = await asyncio.gather(*[claim(client, cid, u) for u in treated + control])
        assert Counter(r.status_code for r in claims) == {201: 100, 403: 100}
        coupons = {r.json()["user_id"]: r.json()["coupons"][0]["coupon_id"]
                   for r in claims if r.status_code == 201}
        for i, user in enumerate(treated[:70]):  # bought ¥250 with the coupon
            assert (await use(client, coupons[user], "redeem", f"o-t{i}", 2000)
                    ).status_code == 200
            assert (await send(client, f"paid-t{i}", "order_paid", user, amount=25_000,
                               order_id=f"o-t{i}")).status_code == 202
        for i, user in enumerate(control[:50]):  # bought ¥100 without one
            assert (await send(client, f"paid-c{i}", "order_paid", user, amount=10_000)
                    ).status_code == 202
        consume(sync_redis, None, tmp_path, rounds=6)
        now = datetime.now(UTC)
        window = {"from": (now - timedelta(hours=1)).isoformat(),
                  "to": (now + timedelta(hours=1)).isoformat(), "margin": "0.2"}
        found = await client.get(f"/v1/admin/campaigns/{cid}/uplift", headers=ADMIN,
                                 params=window)
        assert found.status_code == 200, found.text
        u = found.json()
        assert u["control"] == {"users": 100, "buyers": 50, "orders": 50, "gmv": 500_000,
                                "gmv_per_user": 5_000, "discount_cost": 0,
                                "profit": 100_000, "profit_per_user": 1_000}
        assert u["treatment"] == {"users": 100, "buyers": 70, "orders": 70,
                                  "gmv": 1_750_000, "gmv_per_user": 17_500,
                                  "discount_cost": 140_000, "profit": 210_000,
                                  "profit_per_user": 2_100}
        assert (u["uplift_per_user"], u["ci95"]) == (1_100, [765, 1_435])
    # reconcile sees the control group in the ledger, and names a control user it lost
    ledger = open_ledger(None, tmp_path)
    try:
        assert reconcile_campaign(sync_redis, ledger, KS, cid).ok
        ledger.execute("DELETE FROM holdout_users WHERE user_id = ?", (control[0],))
        assert reconcile_campaign(sync_redis, ledger, KS, cid).mismatches == [
            f"holdout: 1 control users not in the ledger, e.g. {control[0]}"]
    finally:
        ledger.close()
