"""Expiry: the sweep marks unused coupons past valid_until expired (idempotently, never a
used one), and `flashclaim expiring` lists who holds coupons about to expire."""

from __future__ import annotations

import csv
import dataclasses
import io
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from redis import Redis as SyncRedis

from flashclaim.keys import KeySpace
from flashclaim.ledger.consumer import ConsumerOptions, LedgerConsumer
from flashclaim.ledger.db import open_ledger
from flashclaim.ledger.expiring import expiring, parse_within
from flashclaim.settings import Settings
from flashclaim.tools import children

from helpers import NAMESPACE, app_client, claim, consume, create_campaign, iso, use

KS = KeySpace(NAMESPACE)
HOUR = 3_600_000


async def coupon_of(client: httpx.AsyncClient, campaign_id: str, user: str) -> str:
    r = await claim(client, campaign_id, user)
    assert r.status_code == 201, r.text
    coupon_id: str = r.json()["coupons"][0]["coupon_id"]
    return coupon_id


def fixed(until: timedelta) -> list[dict[str, object]]:
    return [{"type": "cash", "value": 500,
             "validity": {"from": iso(timedelta(minutes=-1)), "until": iso(until)}}]


def expiring_cli(data_dir: Path, ledger_dsn: str | None, *args: str
                 ) -> subprocess.CompletedProcess[str]:
    dsn_args = ["--ledger-dsn", ledger_dsn] if ledger_dsn else []
    return subprocess.run(
        [sys.executable, "-m", "flashclaim", "expiring", "--data-dir", str(data_dir), *dsn_args,
         *args], env=children.clean_env(), capture_output=True, text=True, timeout=60)


async def test_expiring_lists_holders_and_the_sweep_expires_unused_only(
    settings: Settings, sync_redis: SyncRedis, dsn: str, tmp_path: Path,
) -> None:
    ledger_dsn = None if dsn.startswith("sqlite") else dsn
    s = dataclasses.replace(settings, data_dir=tmp_path, ledger_dsn=ledger_dsn)
    async with app_client(s) as client:
        soon = await create_campaign(client, coupons=fixed(timedelta(hours=1)))
        later = await create_campaign(client, coupons=fixed(timedelta(days=10)))
        relative = await create_campaign(client, coupons=[
            {"type": "cash", "value": 100, "validity": {"days": 2}}])
        soon1 = await coupon_of(client, soon["id"], "u1")
        soon2 = await coupon_of(client, soon["id"], "u2")
        await coupon_of(client, later["id"], "u1")
        rel3 = await coupon_of(client, relative["id"], "u3")
        consume(sync_redis, ledger_dsn, tmp_path)

        done = expiring_cli(tmp_path, ledger_dsn, "--within", "3d", "--format", "csv")
        assert done.returncode == 0, done.stderr
        rows = list(csv.reader(io.StringIO(done.stdout)))
        assert rows[0] == ["user_id", "coupon_id", "campaign_id", "valid_until"]
        # soonest first: the 1-hour coupons (by coupon id), then the 2-day one; not 10 days
        assert [r[1] for r in rows[1:]] == [*sorted([soon1, soon2]), rel3]
        assert {r[0] for r in rows[1:]} == {"u1", "u2", "u3"}

        # a used coupon is not about to expire for its holder
        assert (await use(client, soon2, "redeem", "o-2", 500)).status_code == 200
        consume(sync_redis, ledger_dsn, tmp_path)
        ledger = open_ledger(ledger_dsn, tmp_path)
        now = int(time.time() * 1000)
        assert [r[1] for r in expiring(ledger, now, parse_within("3d"))] == [soon1, rel3]
        assert [r[1] for r in expiring(ledger, now, parse_within("3d"), relative["id"])] == [rel3]
        table = expiring_cli(tmp_path, ledger_dsn, "--within", "2h")
        assert "1 unused coupons held by 1 users" in table.stdout, table.stdout

        # two hours on: the sweep expires the unused 1-hour coupon, not the used one
        consumer = LedgerConsumer(sync_redis, ledger, KS, ConsumerOptions(block_ms=10))
        assert consumer.sweep_expired(now + 2 * HOUR) == 1
        assert consumer.sweep_expired(now + 2 * HOUR) == 0  # idempotent
        statuses = dict(ledger.execute(
            "SELECT coupon_id, status FROM coupons WHERE campaign_id = ?", (soon["id"],)))
        assert statuses == {soon1: "expired", soon2: "used"}
        assert [r[1] for r in expiring(ledger, now + 2 * HOUR, parse_within("3d"))] == [rel3]
        ledger.close()


@pytest.mark.parametrize("text", ["3", "3w", "0d", "-1d", "3d\n", "400d", " 3d"])
def test_a_bad_window_is_refused(text: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        parse_within(text)
    done = expiring_cli(tmp_path, None, "--within", text)
    assert done.returncode == 2 and "--within" in done.stderr, done.stderr


def test_windows_in_each_unit() -> None:
    assert [parse_within(t) for t in ("45s", "90m", "12h", "3d")] == [
        45_000, 90 * 60_000, 12 * HOUR, 3 * 24 * HOUR]
