"""Kinds of coupon through the API (on Valkey and on the cluster): random face values drawn
from a fixed multiset, exact under a crowd and seen in the claim, the stream, the wallet and
the report; what such a campaign refuses."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from pathlib import Path

import httpx
import orjson
from redis.asyncio import Redis

from flashclaim.keys import KeySpace
from flashclaim.settings import Settings

from helpers import (
    ADMIN,
    NAMESPACE,
    SyncRedis,
    app_client,
    claim,
    consume,
    create_campaign,
    entries,
    stats,
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


async def test_what_a_blind_box_refuses(client: httpx.AsyncClient) -> None:
    cash = {"type": "cash", "value": 100}
    for extra, why in (({"stock": 7}, "stock"),
                       ({"stock": None, "coupons": [BLIND_BOX, BLIND_BOX]}, "at most one"),
                       ({"stock": None, "buckets": 2}, "buckets"),
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
