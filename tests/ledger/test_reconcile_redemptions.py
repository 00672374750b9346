"""reconcile holds the ledger's redemptions to the events Redis wrote."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from flashclaim.keys import KeySpace
from flashclaim.ledger.consumer import ConsumerOptions, LedgerConsumer
from flashclaim.ledger.db import Ledger, open_ledger
from flashclaim.ledger.reconcile import format_table, reconcile_campaign

from helpers import NAMESPACE, SyncRedis, sync_campaign, sync_grant, sync_use

KS = KeySpace(NAMESPACE)


@pytest.fixture
def ledger(dsn: str, tmp_path: Path) -> Iterator[Ledger]:
    db = open_ledger(None if dsn.startswith("sqlite") else dsn, tmp_path)
    yield db
    db.close()


def coupon_ids(ledger: Ledger, campaign_id: str) -> list[str]:
    return [str(r[0]) for r in ledger.execute(
        "SELECT coupon_id FROM coupons WHERE campaign_id = ? ORDER BY coupon_id", (campaign_id,))]


@pytest.fixture
def consumer(sync_redis: SyncRedis, ledger: Ledger) -> LedgerConsumer:
    """Campaign r1: 5 grants in the ledger; 3 coupons redeemed and 1 of them released,
    all written to the ledger too."""
    sync_campaign(sync_redis, KS, "r1", stock=10)
    assert sync_grant(sync_redis, KS, "r1", ["a", "b", "c", "d", "e"]) == 5
    consumer = LedgerConsumer(sync_redis, ledger, KS, ConsumerOptions(block_ms=10))
    consumer.start()
    consumer.run_once()
    first, second, third = coupon_ids(ledger, "r1")[:3]
    for coupon, order in ((first, "o1"), (second, "o2"), (third, "o3")):
        assert sync_use(sync_redis, KS, "redeem", coupon, order, 300) == "used"
    assert sync_use(sync_redis, KS, "release", third, "o3") == "released"
    consumer.discover()
    while consumer.run_once():
        pass
    return consumer


def test_redemptions_in_the_ledger_match(sync_redis: SyncRedis, ledger: Ledger,
                                         consumer: LedgerConsumer) -> None:
    rec = reconcile_campaign(sync_redis, ledger, KS, "r1")
    assert rec.ok, rec.mismatches
    assert (rec.used, rec.lag) == (2, 0)
    assert "used" in format_table([rec])


def test_events_not_yet_applied_are_lag(sync_redis: SyncRedis, ledger: Ledger,
                                        consumer: LedgerConsumer) -> None:
    fourth = coupon_ids(ledger, "r1")[3]
    assert sync_use(sync_redis, KS, "redeem", fourth, "o4", 100) == "used"
    rec = reconcile_campaign(sync_redis, ledger, KS, "r1")
    assert rec.ok, rec.mismatches
    assert (rec.used, rec.lag) == (2, 1)
    consumer.run_once()
    rec = reconcile_campaign(sync_redis, ledger, KS, "r1")
    assert rec.ok and (rec.used, rec.lag) == (3, 0), rec


PLANTS: list[tuple[str, Callable[[Ledger], object], str]] = [
    ("lost redeem", lambda db: db.execute(
        "DELETE FROM coupon_events WHERE event = 'redeemed' AND order_id = 'o1'"),
     "lost: 1 redeemed events have no record"),
    ("extra release", lambda db: db.execute(
        "INSERT INTO coupon_events SELECT entry_id, coupon_id, 'released', campaign_id,"
        " user_id, order_id, 0, at_ms, event_ms, event_seq + 1, 0, 0 FROM coupon_events"
        " WHERE order_id = 'o1'"),
     "extra: 2 released events, Redis wrote 1"),
    ("used without an event", lambda db: db.execute(
        "UPDATE coupons SET status = 'used' WHERE status = 'unused' AND coupon_id IN"
        " (SELECT MAX(coupon_id) FROM coupons WHERE status = 'unused')"),
     "3 coupons used, the events say 2"),
    ("locked without an event", lambda db: db.execute(
        "UPDATE coupons SET status = 'locked' WHERE status = 'unused' AND coupon_id IN"
        " (SELECT MAX(coupon_id) FROM coupons WHERE status = 'unused')"),
     "1 coupons locked, the events say 0"),
]


@pytest.mark.parametrize(("name", "plant", "expected"), PLANTS, ids=[p[0] for p in PLANTS])
def test_each_planted_redemption_mismatch_is_caught(
    sync_redis: SyncRedis, ledger: Ledger, consumer: LedgerConsumer, name: str,
    plant: Callable[[Ledger], object], expected: str,
) -> None:
    plant(ledger)
    rec = reconcile_campaign(sync_redis, ledger, KS, "r1")
    assert any(expected in m for m in rec.mismatches), rec.mismatches
