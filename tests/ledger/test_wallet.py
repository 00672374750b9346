"""After the grab: the wallet reads the ledger, and redemption write-back reaches it exactly
once, in order, whichever stream the ledger consumer reads first."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx
from redis import Redis as SyncRedis

from flashclaim.coupons import CouponEvent
from flashclaim.keys import KeySpace
from flashclaim.ledger.db import open_ledger
from flashclaim.settings import Settings

from helpers import NAMESPACE, app_client, claim, consume, create_campaign, use

KS = KeySpace(NAMESPACE)


async def wallet(client: httpx.AsyncClient, user: str, **params: str) -> dict[str, Any]:
    r = await client.get("/v1/me/coupons", headers={"X-User-Id": user}, params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_the_wallet_shows_claims_newest_first_and_redemptions(
    settings: Settings, sync_redis: SyncRedis, dsn: str, tmp_path: Path,
) -> None:
    s = dataclasses.replace(settings, data_dir=tmp_path,
                            ledger_dsn=None if dsn.startswith("sqlite") else dsn)
    ledger_dsn = s.ledger_dsn
    async with app_client(s) as client:
        older = await create_campaign(client, name="Older", coupons=[
            {"type": "cash", "value": 300}, {"type": "discount", "percent_off": 10,
                                             "max_discount": 500}])
        newer = await create_campaign(client, name="Newer")
        assert (await claim(client, older["id"], "w1")).status_code == 201
        second = (await claim(client, newer["id"], "w1")).json()
        await claim(client, newer["id"], "someone-else")
        used_id = second["coupons"][0]["coupon_id"]
        # the coupon is used before the ledger saw its claim: the event waits for it
        assert (await use(client, used_id, "redeem", "order-9", 1500)).status_code == 200
        consume(sync_redis, ledger_dsn, tmp_path)
        body = await wallet(client, "w1")
        coupons = body["coupons"]
        assert isinstance(coupons, list) and len(coupons) == 3
        assert coupons[0]["campaign_name"] == "Newer" and coupons[0]["status"] == "used"
        assert (coupons[0]["order_id"], coupons[0]["discount"]) == ("order-9", 1500)
        assert {c["status"] for c in coupons[1:]} == {"unused"}
        assert [c["campaign_id"] for c in (await wallet(client, "w1", status="used"))[
            "coupons"]] == [newer["id"]]
        # release: unused again, once the ledger applies it
        assert (await use(client, used_id, "release", "order-9")).status_code == 200
        consume(sync_redis, ledger_dsn, tmp_path)
        assert (await wallet(client, "w1", status="used"))["coupons"] == []
        # paging: one a page, in order, nothing twice
        seen, cursor = [], ""
        while True:
            page = await wallet(client, "w1", limit="1", **({"cursor": cursor} if cursor else {}))
            listed = page["coupons"]
            assert isinstance(listed, list)
            seen += [c["coupon_id"] for c in listed]
            if page["next"] is None:
                break
            cursor = str(page["next"])
        assert len(seen) == len(set(seen)) == 3
        for params in ({"status": "gone"}, {"limit": "0"}, {"cursor": "x"}):
            r = await client.get("/v1/me/coupons", headers={"X-User-Id": "w1"}, params=params)
            assert r.status_code == 400, params
        assert (await client.get("/v1/me/coupons")).status_code == 401


async def test_events_apply_once_and_in_order(
    settings: Settings, sync_redis: SyncRedis, dsn: str, tmp_path: Path,
) -> None:
    """Redeem, release, redeem by another order: the ledger shows the last, and consuming
    the same events again (a redelivery) changes nothing."""
    ledger_dsn = None if dsn.startswith("sqlite") else dsn
    s = dataclasses.replace(settings, data_dir=tmp_path, ledger_dsn=ledger_dsn)
    async with app_client(s) as client:
        c = await create_campaign(client)
        coupon = (await claim(client, c["id"], "e1")).json()["coupons"][0]["coupon_id"]
        consume(sync_redis, ledger_dsn, tmp_path)
        await use(client, coupon, "redeem", "a", 100)
        await use(client, coupon, "release", "a")
        await use(client, coupon, "redeem", "b", 200)
        consume(sync_redis, ledger_dsn, tmp_path)
        ledger = open_ledger(ledger_dsn, tmp_path)
        row = ledger.execute("SELECT status, order_id, discount FROM coupons WHERE coupon_id = ?",
                             (coupon,))
        assert row == [("used", "b", 200)]
        events = ledger.execute("SELECT COUNT(*) FROM coupon_events WHERE coupon_id = ?",
                                (coupon,))
        assert events == [(3,)]
        stream = sync_redis.smembers(KS.coupon_event_streams).pop()
        # a redelivery of the first event (after the later ones) moves nothing
        [(entry_id, fields)] = sync_redis.xrange(stream, count=1)  # type: ignore[misc]
        ledger.apply_events([CouponEvent.decode(
            str(entry_id), {str(k): str(v) for k, v in (fields or {}).items()})])
        assert ledger.execute("SELECT status, order_id FROM coupons WHERE coupon_id = ?",
                              (coupon,)) == [("used", "b")]
        ledger.close()
