"""What the ledger consumer tells the outbox, end to end through the API: claims granted,
a coupon used, its expiry and reminder, a campaign started, sold out, paused and ended, an
alert, a grant done, a draw done; each once, with a stable id; nothing while no endpoint
listens."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from flashclaim.keys import KeySpace
from flashclaim.ledger.consumer import ConsumerOptions, LedgerConsumer
from flashclaim.ledger.db import open_ledger
from flashclaim.outbox import EVENT_TYPES, OutEvent

from helpers import ADMIN, NAMESPACE, SyncRedis, create_campaign, iso, use

KS = KeySpace(NAMESPACE)


def told(r: SyncRedis) -> list[OutEvent]:
    return [OutEvent.decode(f) for _, f in r.xrange(KS.outbox)]


def consumer(r: SyncRedis, tmp_path: Path) -> LedgerConsumer:
    c = LedgerConsumer(r, open_ledger(None, tmp_path), KS,
                       ConsumerOptions(block_ms=10, refresh_ms=0))
    c.start()
    return c


def rounds(c: LedgerConsumer, n: int = 3) -> None:
    for _ in range(n):
        c.run_once()
        c.outbox.tick(force=True)


async def claim(client: httpx.AsyncClient, cid: str, user: str, device: str = "") -> Any:
    headers = {"X-User-Id": user, **({"X-Device-Id": device} if device else {})}
    response = await client.post(f"/v1/campaigns/{cid}/claims", headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_nothing_is_told_while_no_endpoint_listens(client: httpx.AsyncClient,
                                                         sync_redis: SyncRedis,
                                                         tmp_path: Path) -> None:
    campaign = await create_campaign(client)
    await claim(client, campaign["id"], "u1")
    rounds(consumer(sync_redis, tmp_path))
    assert not sync_redis.exists(KS.outbox)


async def test_every_event_is_told_once(client: httpx.AsyncClient, sync_redis: SyncRedis,
                                        tmp_path: Path) -> None:
    c = consumer(sync_redis, tmp_path)
    # sold out within a tick of its start, a coupon to use, one to remind and expire
    short = await create_campaign(client, id="short", stock=2, coupons=[
        {"type": "cash", "value": 500, "validity": {"days": 1}}])
    first = await claim(client, short["id"], "u1")
    await claim(client, short["id"], "u2", device="rig")
    await create_campaign(client, id="calm")
    await create_campaign(client, id="gone")
    await create_campaign(client, id="gifts", coupons=[
        {"type": "cash", "value": 500, "validity": {"days": 1}}])
    rounds(c)  # in the ledger, told to nobody: no endpoint yet
    assert not sync_redis.exists(KS.outbox)
    made = await client.post("/v1/admin/webhooks", headers=ADMIN, json={
        "url": "http://127.0.0.1:9/hook", "events": list(EVENT_TYPES), "expiring_days": 3})
    assert made.status_code == 201 and made.json()["secret"].startswith("whsec_")
    rounds(c)  # statuses first seen; the reminders of what the ledger holds
    redeemed = await use(client, first["coupons"][0]["coupon_id"], "redeem", "o1")
    assert redeemed.status_code == 200
    assert (await client.post("/v1/admin/campaigns/calm/pause", headers=ADMIN)).status_code == 200
    assert (await client.post("/v1/admin/campaigns/gone/end", headers=ADMIN)).status_code == 200
    granted = await client.post("/v1/admin/campaigns/gifts/grants", headers=ADMIN,
                                json={"grant_id": "welcome", "users": [{"user_id": "g1"}]})
    assert granted.status_code in (201, 202), granted.text
    rounds(c)
    deadline = time.monotonic() + 20  # the grant runner finishes the grant
    while "grant.done" not in {e.type for e in told(sync_redis)}:
        assert time.monotonic() < deadline, "no grant.done"
        await asyncio.sleep(0.05)
    rounds(c)  # the grant's claim in the ledger too
    assert c.sweep_expired(int(time.time() * 1000) + 2 * 86_400_000) == 2  # u2's and g1's
    rounds(c)
    events = told(sync_redis)
    kinds = Counter(e.type for e in events)
    assert kinds["claim.granted"] == 1  # g1's, by the grant (u1 and u2 came before)
    # u1's and u2's reminders (the ledger held them); u1's coupon is used after it
    assert kinds["coupon.used"] == 1 and kinds["coupon.expiring"] == 2
    expired = {e.data["coupon_id"] for e in events if e.type == "coupon.expired"}
    assert expired == {e.data["claim"]["coupons"][0]["coupon_id"] for e in events
                       if e.type == "claim.granted"} | {
        e.data["coupon_id"] for e in events if e.type == "coupon.expiring"
        and e.data["user_id"] == "u2"}  # g1's and u2's; u1's was used
    by_campaign = {(e.type, e.campaign_id) for e in events if e.type.startswith("campaign.")}
    assert by_campaign == {("campaign.started", "short"), ("campaign.sold_out", "short"),
                           ("campaign.started", "calm"), ("campaign.paused", "calm"),
                           ("campaign.started", "gone"), ("campaign.ended", "gone"),
                           ("campaign.started", "gifts")}
    assert len({e.id for e in events}) == len(events)  # each told once
    rounds(c)  # nothing new to tell
    assert len(told(sync_redis)) == len(events)
    c.ledger.close()


async def test_an_alert_and_a_draw_are_told(client: httpx.AsyncClient, sync_redis: SyncRedis,
                                            tmp_path: Path) -> None:
    await client.post("/v1/admin/webhooks", headers=ADMIN, json={
        "url": "http://127.0.0.1:9/hook", "events": ["alert.raised", "draw.done"]})
    farmed = await create_campaign(client, stock=50)
    for i in range(6):
        await claim(client, farmed["id"], f"farm{i}", device="rig")
    closes = iso(timedelta(seconds=1))
    drawn = await create_campaign(client, stock=1, admission={
        "mode": "draw", "entries_until": closes, "draw_at": closes})
    entered = await client.post(f"/v1/campaigns/{drawn['id']}/entries",
                                headers={"X-User-Id": "lucky"})
    assert entered.status_code == 201
    c = consumer(sync_redis, tmp_path)
    rounds(c)
    deadline = time.monotonic() + 20  # the service's drawer draws it
    while "draw.done" not in {e.type for e in told(sync_redis)}:
        assert time.monotonic() < deadline, "no draw.done"
        await asyncio.sleep(0.05)
    events = {e.type: e for e in told(sync_redis)}
    assert events["alert.raised"].data["rule"] == "device_grants"
    assert events["draw.done"].data["winners"] == ["lucky"]
    c.ledger.close()
