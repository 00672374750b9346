"""Campaign statistics: planted claims, redemptions and times, and every number of the
report checked, on SQLite and PostgreSQL, through the route and the command."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis as SyncRedis

from flashclaim.keys import KeySpace
from flashclaim.ledger.db import Ledger, open_ledger
from flashclaim.runtime.embedded import EmbeddedServer
from flashclaim.settings import Settings
from flashclaim.stream import Source
from flashclaim.timefmt import parse_rfc3339, to_rfc3339
from flashclaim.tools import children

from helpers import ADMIN, NAMESPACE, app_client, consume, sync_campaign, sync_claim, sync_use

KS = KeySpace(NAMESPACE)
T0 = parse_rfc3339("2026-11-11T00:00:00Z")
MIN = 60_000
PACK = [{"type": "cash", "value": 500}, {"type": "discount", "percent_off": 10,
                                          "max_discount": 300}]
# user: (segments, channel, source, claimed at)
CLAIMS: dict[str, tuple[tuple[str, ...], str, Source, int]] = {
    "u1": (("new",), "app", Source.GRAB, T0),
    "u2": (("vip",), "web", Source.GRAB, T0 + 10_000),
    "u3": ((), "app", Source.GRAB, T0 + 30_000),
    "u4": (("new", "vip"), "mini", Source.GRANT, T0 + MIN),
    "u5": ((), "app", Source.CODE, T0 + 5 * MIN),
}
# (user, coupon number in the pack, discount, used at)
USES = [("u1", 1, 500, T0 + 2 * MIN), ("u2", 1, 500, T0 + 2 * MIN + 10_000),
        ("u4", 2, 300, T0 + 5 * MIN)]


def coupon(ledger: Ledger, user: str, number: int, campaign: str = "rep") -> str:
    [(coupon_id,)] = ledger.execute(
        "SELECT coupon_id FROM coupons WHERE campaign_id = ? AND user_id = ? AND coupon_id LIKE ?",
        (campaign, user, f"%-{number}"))
    return str(coupon_id)


@pytest.fixture
def planted(sync_redis: SyncRedis, dsn: str, tmp_path: Path) -> str | None:
    """Campaign rep (stock 10, a pack of two coupons): five claims, three coupons used,
    one redeemed and released, one expired; campaign other: one claim in the window and
    one long before. Times are planted. Returns the ledger DSN (None: SQLite)."""
    ledger_dsn = None if dsn.startswith("sqlite") else dsn
    sync_campaign(sync_redis, KS, "rep", stock=10, coupons=PACK)
    sync_campaign(sync_redis, KS, "other", stock=None)
    for user, (tags, channel, source, _) in CLAIMS.items():
        assert sync_claim(sync_redis, KS, "rep", user, tags, channel, source) == "granted"
    for user in ("o1", "o2"):
        assert sync_claim(sync_redis, KS, "other", user, (), "web") == "granted"
    consume(sync_redis, ledger_dsn, tmp_path)
    ledger = open_ledger(ledger_dsn, tmp_path)
    for user, number, discount, _ in USES:
        assert sync_use(sync_redis, KS, "redeem", coupon(ledger, user, number), "o-" + user,
                        discount) == "used"
    u5 = coupon(ledger, "u5", 1)
    assert sync_use(sync_redis, KS, "redeem", u5, "o-u5", 500) == "used"
    assert sync_use(sync_redis, KS, "release", u5, "o-u5") == "released"
    consume(sync_redis, ledger_dsn, tmp_path)
    for user, (_, _, _, at) in CLAIMS.items():
        ledger.execute("UPDATE claims SET claimed_at_ms = ? WHERE user_id = ?", (at, user))
    for user, number, _, at in USES:
        ledger.execute("UPDATE coupons SET used_at_ms = ? WHERE coupon_id = ?",
                       (at, coupon(ledger, user, number)))
    ledger.execute("UPDATE coupons SET status = 'expired' WHERE coupon_id = ?",
                   (coupon(ledger, "u3", 2),))
    ledger.execute("UPDATE claims SET claimed_at_ms = ? WHERE user_id = 'o1'", (T0 + 3 * MIN,))
    ledger.execute("UPDATE claims SET claimed_at_ms = ? WHERE user_id = 'o2'", (T0 - 86_400_000,))
    ledger.close()
    return ledger_dsn


def figures(claims: int, coupons: int, used: int, use_rate: float | None, expired: int,
            cost: int) -> dict[str, Any]:
    """A group's figures; its coupons were used through the write-back, whose orders' GMV
    is unknown: no orders, GMV or refunds (tests/checkout/test_report_roi.py has those)."""
    return {"claims": claims, "coupons": coupons, "used": used, "use_rate": use_rate,
            "expired": expired, "discount_cost": {"CNY": cost} if cost else {},
            "orders": 0, "gmv": {}, "discount_per_order": {}, "refunded_orders": 0,
            "refunded_discount": {}}


EXPECTED_REP = {
    **figures(5, 10, 3, 0.3, 1, 1300),
    "campaign_id": "rep", "name": "rep", "issued": 10, "claim_rate": 0.5, "bucket": "minute",
    "by_channel": [{"channel": "app", **figures(3, 6, 1, 0.1667, 1, 500)},
                   {"channel": "mini", **figures(1, 2, 1, 0.5, 0, 300)},
                   {"channel": "web", **figures(1, 2, 1, 0.5, 0, 500)}],
    "by_segment": [{"segment": "new", **figures(2, 4, 2, 0.5, 0, 800)},
                   {"segment": "untagged", **figures(2, 4, 0, 0.0, 1, 0)},
                   {"segment": "vip", **figures(2, 4, 2, 0.5, 0, 800)}],
    "by_source": [{"source": "code", **figures(1, 2, 0, 0.0, 0, 0)},
                  {"source": "grab", **figures(3, 6, 2, 0.3333, 1, 1000)},
                  {"source": "grant", **figures(1, 2, 1, 0.5, 0, 300)}],
    "timeline": [{"at": to_rfc3339(T0), "claims": 3, "uses": 0},
                 {"at": to_rfc3339(T0 + MIN), "claims": 1, "uses": 0},
                 {"at": to_rfc3339(T0 + 2 * MIN), "claims": 0, "uses": 2},
                 {"at": to_rfc3339(T0 + 5 * MIN), "claims": 1, "uses": 1}],
    # the ¥5 cash coupon of each pack (the other is a percentage: no face value)
    "face_values": [{"currency": "CNY", "value": 500, "coupons": 5, "used": 2}],
    "ledger_lag": 0,
}


async def get(client: httpx.AsyncClient, path: str, **params: str) -> httpx.Response:
    return await client.get(path, params=params, headers=ADMIN)


async def test_every_number_of_the_reports(
    settings: Settings, planted: str | None, tmp_path: Path,
) -> None:
    s = dataclasses.replace(settings, data_dir=tmp_path, ledger_dsn=planted)
    async with app_client(s) as client:
        r = await get(client, "/v1/admin/campaigns/rep/report")
        assert r.status_code == 200, r.text
        body = r.json()
        body.pop("server_time")
        assert body == EXPECTED_REP

        hourly = (await get(client, "/v1/admin/campaigns/rep/report", bucket="hour")).json()
        assert hourly["timeline"] == [{"at": to_rfc3339(T0), "claims": 5, "uses": 3}]

        window = {"from": to_rfc3339(T0), "to": to_rfc3339(T0 + 10 * MIN)}
        r = await get(client, "/v1/admin/report", **window, bucket="minute")
        assert r.status_code == 200, r.text
        across = r.json()
        # the other campaign's claim a day before is outside the window
        assert [(c["campaign_id"], c["claims"], c["used"]) for c in across["campaigns"]] == [
            ("other", 1, 0), ("rep", 5, 3)]
        expected = figures(6, 11, 3, 0.2727, 1, 1300)
        assert {k: across[k] for k in expected} == expected
        assert [(c["channel"], c["claims"]) for c in across["by_channel"]] == [
            ("app", 3), ("mini", 1), ("web", 2)]
        assert {"at": to_rfc3339(T0 + 3 * MIN), "claims": 1, "uses": 0} in across["timeline"]


async def test_reports_refuse_bad_requests(settings: Settings, tmp_path: Path) -> None:
    s = dataclasses.replace(settings, data_dir=tmp_path)
    async with app_client(s) as client:
        assert (await get(client, "/v1/admin/campaigns/nope/report")).status_code == 404
        start = to_rfc3339(T0)
        bad: list[tuple[str, dict[str, str]]] = [
            ("/v1/admin/campaigns/nope/report", {"bucket": "week"}),
            ("/v1/admin/report", {}),
            ("/v1/admin/report", {"from": start}),
            ("/v1/admin/report", {"from": start, "to": start}),
            ("/v1/admin/report", {"from": start, "to": "yesterday"}),
            ("/v1/admin/report", {"from": "0019-01-29T00:00:00Z", "to": "0019-01-29T01:00:00Z"}),
            ("/v1/admin/report", {"from": start, "to": to_rfc3339(T0 + 93 * 86_400_000)}),
            ("/v1/admin/report", {"from": start, "to": to_rfc3339(T0 + 30 * 86_400_000),
                                  "bucket": "minute"}),
        ]
        for path, params in bad:
            r = await get(client, path, **params)
            assert r.status_code == 400 and r.json()["error"] == "invalid_request", (path, params)
        unauthenticated = await client.get("/v1/admin/report")
        assert unauthenticated.status_code == 401


def test_the_command_prints_the_report(
    planted: str | None, server: EmbeddedServer, tmp_path: Path,
) -> None:
    command = [sys.executable, "-m", "flashclaim", "report", "rep", "--redis-url", server.url,
               "--namespace", NAMESPACE, "--data-dir", str(tmp_path),
               *(["--ledger-dsn", planted] if planted else [])]
    done = subprocess.run(command, env=children.clean_env(), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "claims 5 (50.0%)" in out and "used 3 (30.0%)" in out, out
    assert "discount cost 13.00 CNY" in out and "expired 1" in out, out  # major units
    assert any(line.split()[:4] == ["grab", "3", "6", "2"] for line in out.splitlines()), out
    as_json = subprocess.run([*command, "--format", "json"], env=children.clean_env(),
                             capture_output=True, text=True, timeout=60)
    assert as_json.returncode == 0 and '"use_rate":0.3' in as_json.stdout, as_json.stdout
    missing = subprocess.run([*command[:4], "nope", *command[5:]], env=children.clean_env(),
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "no campaign" in missing.stderr, missing.stderr
