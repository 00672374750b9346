"""reconcile reports a match on a clean run and catches each kind of planted mismatch."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from flashclaim.keys import KeySpace
from flashclaim.ledger.consumer import ConsumerOptions, LedgerConsumer
from flashclaim.ledger.db import Ledger, open_ledger
from flashclaim.ledger.reconcile import format_table, reconcile_campaign
from flashclaim.runtime.embedded import EmbeddedServer
from flashclaim.tools import children

from helpers import NAMESPACE, SyncRedis, sync_campaign, sync_grant

KS = KeySpace(NAMESPACE)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    db = open_ledger(None, tmp_path)
    yield db
    db.close()


@pytest.fixture
def consumed(sync_redis: SyncRedis, ledger: Ledger) -> str:
    """Campaign c1: 6 grants of stock 10, per_user_limit 2, all carried into the ledger."""
    sync_campaign(sync_redis, KS, "c1", stock=10, per_user_limit=2)
    assert sync_grant(sync_redis, KS, "c1", ["a", "b", "c", "d", "e", "a"]) == 6
    consumer = LedgerConsumer(sync_redis, ledger, KS, ConsumerOptions(block_ms=10))
    consumer.start()
    consumer.run_once()
    return "c1"


def test_a_clean_run_matches(sync_redis: SyncRedis, ledger: Ledger, consumed: str) -> None:
    rec = reconcile_campaign(sync_redis, ledger, KS, consumed)
    assert rec.ok, rec.mismatches
    assert (rec.stock, rec.granted, rec.remaining, rec.stream_added, rec.ledger_rows, rec.lag) == (
        10, 6, 4, 6, 6, 0)
    assert "ok" in format_table([rec])


PLANTS: list[tuple[str, Callable[[Ledger], object], str]] = [
    ("missing row", lambda db: [db.execute("DELETE FROM coupons WHERE claim_id IN "
                                           "(SELECT claim_id FROM claims WHERE seq = 3)"),
                                db.execute("DELETE FROM claims WHERE seq = 3")],
     "lost: 1 grants have no record"),
    ("extra row", lambda db: db.execute(
        "INSERT INTO claims SELECT 'fake', campaign_id, 'zed', 7, claimed_at_ms, channel, "
        "idempotency_key, stream_entry_id, claim_json, recorded_at_ms, source, source_ref, tags "
        "FROM claims WHERE seq = 1"),
     "extra: 7 records for 6 grants"),
    ("seq gap", lambda db: db.execute("UPDATE claims SET seq = 60 WHERE seq = 2"),
     "outside 1..6"),
    ("user over limit", lambda db: db.execute("UPDATE claims SET user_id = 'a' WHERE seq = 4"),
     "a user holds 3 claims, limit 2"),
    ("swapped claim id", lambda db: [
        db.execute("PRAGMA foreign_keys = OFF"),  # coupons still point at the old id
        db.execute("UPDATE claims SET claim_id = 'other' WHERE seq = 5")],
     "streamed claims missing"),
]


@pytest.mark.parametrize(("name", "plant", "expected"), PLANTS, ids=[p[0] for p in PLANTS])
def test_each_planted_mismatch_is_caught(
    sync_redis: SyncRedis, ledger: Ledger, consumed: str, name: str,
    plant: Callable[[Ledger], object], expected: str,
) -> None:
    plant(ledger)
    rec = reconcile_campaign(sync_redis, ledger, KS, consumed)
    assert not rec.ok
    assert any(expected in m for m in rec.mismatches), rec.mismatches
    assert "MISMATCH" in format_table([rec])


def test_redis_side_breaches(sync_redis: SyncRedis, ledger: Ledger, consumed: str) -> None:
    sync_redis.hset(KS.campaign(consumed).meta, mapping={"granted": 11, "remaining": 0})
    mismatches = reconcile_campaign(sync_redis, ledger, KS, consumed).mismatches
    assert any(m.startswith("oversold") for m in mismatches)
    assert any("stream: 6 records for 11 grants" in m for m in mismatches)


def test_an_overspent_budget_is_a_breach(sync_redis: SyncRedis, ledger: Ledger,
                                         consumed: str) -> None:
    """Six grants of ¥5 each committed ¥30: within a ¥30 budget, fine; the same against a
    budget lowered by hand to ¥29.99 is named an oversell."""
    meta = KS.campaign(consumed).meta
    sync_redis.hset(meta, mapping={"budget": 3000, "committed": 3000, "unit_cost": 500})
    assert reconcile_campaign(sync_redis, ledger, KS, consumed).ok
    sync_redis.hset(meta, "budget", 2999)
    mismatches = reconcile_campaign(sync_redis, ledger, KS, consumed).mismatches
    assert mismatches == ["oversold: budget overspent, committed 3000 > budget 2999"]


def test_lag_is_reported_not_a_mismatch(sync_redis: SyncRedis, ledger: Ledger,
                                        consumed: str) -> None:
    assert sync_grant(sync_redis, KS, consumed, ["x", "y"]) == 2  # not consumed yet
    rec = reconcile_campaign(sync_redis, ledger, KS, consumed)
    assert rec.ok, rec.mismatches
    assert (rec.granted, rec.ledger_rows, rec.lag) == (8, 6, 2)


def test_the_command_exits_1_on_a_mismatch(
    sync_redis: SyncRedis, ledger: Ledger, consumed: str, server: EmbeddedServer,
    tmp_path: Path,
) -> None:
    env = children.clean_env()
    command = [sys.executable, "-m", "flashclaim", "reconcile", "--redis-url", server.url,
               "--namespace", NAMESPACE, "--data-dir", str(tmp_path)]
    clean = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert clean.returncode == 0 and "all consistent" in clean.stdout, clean.stdout
    ledger.execute("UPDATE claims SET seq = 60 WHERE seq = 2")
    broken = subprocess.run([*command, "c1"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert broken.returncode == 1 and "outside 1..6" in broken.stdout, broken.stdout


class TrafficBetweenReads(Ledger):
    """The ledger as reconcile sees it under live traffic: between reconcile's read of Redis
    and its read of the ledger, more claims are granted and the consumer writes them."""

    def __init__(self, real: Ledger, traffic: Callable[[], None]) -> None:
        self.__dict__.update(real.__dict__)
        self._traffic = traffic

    def summary(self, campaign_id: str, max_seq: int | None = None,
                bucket: tuple[int, int] = (0, 1)) -> Any:
        self._traffic()
        return super().summary(campaign_id, max_seq, bucket)


def test_live_traffic_is_not_a_mismatch(sync_redis: SyncRedis, ledger: Ledger) -> None:
    """reconcile during live traffic reported false mismatches in 3 of 5 runs."""
    sync_campaign(sync_redis, KS, "live", stock=100)
    assert sync_grant(sync_redis, KS, "live", ["a", "b", "c"]) == 3
    consumer = LedgerConsumer(sync_redis, ledger, KS, ConsumerOptions(block_ms=10))
    consumer.start()
    consumer.run_once()
    users = iter(f"late{i}" for i in range(100))

    def traffic() -> None:  # two more grants, and the consumer is quick to write them
        assert sync_grant(sync_redis, KS, "live", [next(users), next(users)]) == 2
        consumer.run_once()

    busy = TrafficBetweenReads(ledger, traffic)
    for _ in range(3):
        rec = reconcile_campaign(sync_redis, busy, KS, "live")
        assert rec.ok, rec.mismatches
    # ... and a real extra row is still caught under the same traffic
    ledger.execute("INSERT INTO claims SELECT 'fake', campaign_id, 'zed', 999, claimed_at_ms, "
                   "channel, idempotency_key, stream_entry_id, claim_json, recorded_at_ms, "
                   "source, source_ref, tags FROM claims WHERE seq = 1 AND campaign_id = 'live'")
    rec = reconcile_campaign(sync_redis, busy, KS, "live")
    assert any("outside 1.." in m for m in rec.mismatches), rec.mismatches


def test_repair_writes_what_another_consumer_acknowledged(
    sync_redis: SyncRedis, consumed: str, server: EmbeddedServer, tmp_path: Path,
) -> None:
    """Entries acknowledged by a consumer writing to another database are missing from
    this ledger; --repair writes them from the stream, idempotently."""
    env = children.clean_env()
    other = tmp_path / "other"
    command = [sys.executable, "-m", "flashclaim", "reconcile", "--redis-url", server.url,
               "--namespace", NAMESPACE, "--data-dir", str(other), "c1"]
    before = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert before.returncode == 1 and "grants have no record" in before.stdout, before.stdout
    for expected in ("6 missing claims written", "0 missing claims written"):
        repaired = subprocess.run([*command, "--repair"], env=env, capture_output=True,
                                  text=True, timeout=60)
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        assert expected in repaired.stdout and "all consistent" in repaired.stdout
    again = open_ledger(None, other)
    try:
        assert again.summary("c1").rows == 6 and again.summary("c1").coupons == 6
    finally:
        again.close()


def test_reconcile_judges_the_issuing_rules(sync_redis: SyncRedis, ledger: Ledger) -> None:
    """Grants that break the campaign's rules as they stand now are named: a user who
    holds an excluded segment, and a user blocked (long) before the grant."""
    sync_campaign(sync_redis, KS, "rules", stock=10)
    sync_grant(sync_redis, KS, "rules", ["x", "y"])
    ledger.migrate()
    assert not [m for m in reconcile_campaign(sync_redis, ledger, KS, "rules").mismatches
                if "blocked" in m]
    sync_redis.hset(KS.blocklist, "y", orjson.dumps({"reason": "t", "blocked_at": 0}))
    rec = reconcile_campaign(sync_redis, ledger, KS, "rules")
    assert any("blocked users got coupons: 1, e.g. y" in m for m in rec.mismatches)


def test_entries_stuck_with_a_consumer_are_a_mismatch(sync_redis: SyncRedis,
                                                      ledger: Ledger) -> None:
    """Delivered, never written nor acknowledged, and not moving: not lag but a mismatch."""
    sync_campaign(sync_redis, KS, "c2", stock=10)
    sync_grant(sync_redis, KS, "c2", ["a", "b"])
    stream = KS.campaign("c2").stream
    sync_redis.xgroup_create(stream, "ledger", id="0")
    sync_redis.xreadgroup("ledger", "wedged", {stream: ">"})
    ledger.migrate()
    moving = reconcile_campaign(sync_redis, ledger, KS, "c2")  # (pending for 0 s: lag)
    assert moving.ok and moving.lag == 2, moving.mismatches
    stuck = reconcile_campaign(sync_redis, ledger, KS, "c2", stuck_ms=0)
    assert any("pending over" in m for m in stuck.mismatches), stuck.mismatches
