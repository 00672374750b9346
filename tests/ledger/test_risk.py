"""Risk alerts: each detector raises its alert on a planted pattern and stays quiet on an
ordinary crowd; an alert is durable, listed with its evidence and counted; its block
action blocks the users it names only when enabled. End to end: claims from one device
through the API, carried by the ledger consumer, listed at GET /v1/admin/alerts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from flashclaim.fair.trace import Tracer
from flashclaim.keys import KeySpace
from flashclaim.risk.rules import DEFAULT_RULES
from flashclaim.risk.watch import RiskWatch, Use
from flashclaim.stream import ClaimRecord

from helpers import ADMIN, NAMESPACE, SyncRedis, consume, create_campaign

KS = KeySpace(NAMESPACE)
TRACE = Tracer(b"k" * 32)
NOW = int(time.time() * 1000)


def grant(n: int, user: str, ip: str, device: str = "", campaign: str = "c1") -> ClaimRecord:
    ip_hash, net_hash, device_hash = TRACE.of(ip, device)
    return ClaimRecord(f"{NOW}-{n}", f"claim{n}", campaign, user, n, NOW + n, None, None, {},
                       "grab", "", (), ip_hash, net_hash, device_hash)


def crowd() -> list[ClaimRecord]:
    """300 people: their own accounts, phones and addresses, spread over networks."""
    return [grant(i, f"person{i}", f"10.{i % 200}.{i // 200}.{i % 250 + 1}", f"phone{i}")
            for i in range(300)]


def alerts(r: SyncRedis) -> list[dict[str, Any]]:
    return [orjson.loads(a) for a in r.hvals(KS.risk_alerts)]


PLANTED = {
    "ip_grants": lambda: [grant(i, f"farm{i}", "203.0.113.7", f"p{i}") for i in range(21)],
    "network_grants": lambda: [grant(i, f"farm{i}", f"198.51.100.{i + 1}", f"p{i}")
                               for i in range(101)],
    "device_grants": lambda: [grant(i, f"farm{i}", f"192.0.2.{i + 1}", "one-phone")
                              for i in range(6)],
    "new_accounts": lambda: [grant(i, f"fresh{i}", "203.0.113.9", f"p{i}") for i in range(11)],
}


@pytest.mark.parametrize("rule", sorted(PLANTED))
def test_grant_detectors(sync_redis: SyncRedis, rule: str) -> None:
    watch = RiskWatch(sync_redis, KS)
    assert watch.claims(crowd()) == 0 and alerts(sync_redis) == []
    planted = PLANTED[rule]()
    if rule != "new_accounts":  # accounts granted before: not first-seen
        for rec in planted:
            sync_redis.set(KS.risk_seen(rec.user_id), 1)
    assert watch.claims(planted) == 1
    [alert] = alerts(sync_redis)
    assert alert["rule"] == rule and alert["count"] == len(planted)
    assert alert["users"] and all(u.startswith(("farm", "fresh")) for u in alert["users"])
    assert alert["blocked"] is False and sync_redis.hlen(KS.blocklist) == 0
    assert sync_redis.hget(KS.risk_alert_counts, rule) == "1"
    watch.claims(planted)  # one alert per rule, subject and window
    assert sync_redis.hget(KS.risk_alert_counts, rule) == "1"


def test_fast_use(sync_redis: SyncRedis) -> None:
    watch = RiskWatch(sync_redis, KS)
    ordinary = [Use("c1", f"person{i}", f"k{i}", NOW + 3_600_000, NOW) for i in range(300)]
    assert watch.uses(ordinary) == 0
    farmed = [Use("c1", f"farm{i}", f"f{i}", NOW + 2_000, NOW) for i in range(21)]
    assert watch.uses(farmed) == 1
    [alert] = alerts(sync_redis)
    assert (alert["rule"], alert["subject"], alert["evidence"]) == (
        "fast_use", "c1", {"campaign_id": "c1"})


def test_code_failures(sync_redis: SyncRedis) -> None:
    watch = RiskWatch(sync_redis, KS)
    last_minute = KS.code_failure_tally(int(time.time() // 60) - 1)
    sync_redis.set(last_minute, 30)  # a few typos
    assert watch.tick(force=True) == 0
    sync_redis.set(last_minute, 201)
    assert watch.tick(force=True) == 1
    assert [a["rule"] for a in alerts(sync_redis)] == ["code_failures"]


def test_tap_surge(sync_redis: SyncRedis) -> None:
    watch = RiskWatch(sync_redis, KS)
    sync_redis.zadd(KS.open_campaigns, {"hot": 0})
    meta, rejected = KS.campaign("hot").meta, KS.campaign("hot").rejected
    taps = 0
    for second in range(0, 60, 5):  # a steady crowd: 100 taps a second, no alert
        taps += 500
        sync_redis.hset(meta, "granted", taps // 2)
        sync_redis.hset(rejected, "sold_out", taps - taps // 2)
        assert watch.sample_taps(float(second)) == 0
    sync_redis.hset(rejected, "sold_out", taps - taps // 2 + 5 * 1500)  # x15 in 5 s
    assert watch.sample_taps(60.0) == 1
    [alert] = alerts(sync_redis)
    assert alert["rule"] == "tap_surge" and alert["evidence"]["taps_per_s"] > 1000


def test_the_block_action_blocks_only_when_enabled(sync_redis: SyncRedis) -> None:
    sync_redis.hset(KS.risk_rules, "device_grants", orjson.dumps(
        {"threshold": 5, "window_s": 60, "block": True}))
    watch = RiskWatch(sync_redis, KS)
    assert watch.claims(PLANTED["device_grants"]()) == 1
    [alert] = alerts(sync_redis)
    assert alert["blocked"] is True
    assert set(sync_redis.hkeys(KS.blocklist)) == set(alert["users"]) and alert["users"]


async def test_alerts_end_to_end(client: httpx.AsyncClient, sync_redis: SyncRedis,
                                 tmp_path: Path) -> None:
    campaign = await create_campaign(client, stock=100)
    for i in range(7):
        response = await client.post(f"/v1/campaigns/{campaign['id']}/claims",
                                     headers={"X-User-Id": f"farm{i}", "X-Device-Id": "rig"})
        assert response.status_code == 201
    consume(sync_redis, None, tmp_path)
    listed = (await client.get("/v1/admin/alerts", headers=ADMIN)).json()
    device = [a for a in listed["alerts"] if a["rule"] == "device_grants"]
    assert len(device) == 1 and device[0]["users"] == [f"farm{i}" for i in range(7)]
    assert device[0]["count"] == 7  # the window's count when the batch crossed it
    assert listed["counts"]["device_grants"] == 1
    assert device[0]["evidence"] == {"campaign_id": campaign["id"]}
    rules = (await client.get("/v1/admin/alert-rules", headers=ADMIN)).json()["rules"]
    assert {r["rule"] for r in rules} == set(DEFAULT_RULES)
    changed = await client.put("/v1/admin/alert-rules/device_grants", headers=ADMIN,
                               json={"threshold": 50, "block": True})
    assert changed.json() == {**DEFAULT_RULES["device_grants"].shown(), "threshold": 50,
                              "block": True}
    bad = await client.put("/v1/admin/alert-rules/device_grants", headers=ADMIN,
                           json={"threshold": 0})
    assert bad.status_code == 400
    missing = await client.put("/v1/admin/alert-rules/nope", headers=ADMIN, json={})
    assert missing.status_code == 404
    metrics = (await client.get("/metrics")).text
    assert 'flashclaim_alerts_total{rule="device_grants"} 1.0' in metrics
