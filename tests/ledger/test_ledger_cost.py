"""What an idle ledger consumer costs Redis: it must not grow with the campaigns ever made
(3,000 idle campaigns once cost 1,464 commands a second, 14 % of a core)."""

from __future__ import annotations

from pathlib import Path

from flashclaim.keys import KeySpace
from flashclaim.ledger.consumer import ConsumerOptions, LedgerConsumer
from flashclaim.ledger.db import open_ledger

from helpers import NAMESPACE, SyncRedis, sync_campaign, sync_grant

KS = KeySpace(NAMESPACE)
ROUNDS = 40


def ended_campaigns(r: SyncRedis, numbers: range) -> None:
    """Campaigns with a grant each, ended long ago."""
    for i in numbers:
        campaign_id = f"old-{i}"
        sync_campaign(r, KS, campaign_id, stock=10)
        assert sync_grant(r, KS, campaign_id, ["a"]) == 1
        r.hset(KS.campaign(campaign_id).meta, "ends_at", 1)
        r.zadd(KS.campaign_ends, {campaign_id: 1})


def idle_commands(r: SyncRedis, tmp_path: Path) -> int:
    """Commands the server processed in ROUNDS rounds of a caught-up consumer."""
    ledger = open_ledger(f"sqlite:///{tmp_path}/ledger-{r.dbsize()}.sqlite3", tmp_path)
    consumer = LedgerConsumer(r, ledger, KS, ConsumerOptions(block_ms=10, refresh_ms=0,
                                                             trim_every_ms=10**9))
    try:
        consumer.start()
        for _ in range(3):  # catch up, and let the ended campaigns go quiet
            consumer.run_once()
        before = int(r.info("stats")["total_commands_processed"])
        for _ in range(ROUNDS):
            consumer.run_once()
        return int(r.info("stats")["total_commands_processed"]) - before - 1
    finally:
        ledger.close()


def test_an_idle_consumer_costs_the_same_with_three_or_three_hundred_campaigns(
    sync_redis: SyncRedis, tmp_path: Path,
) -> None:
    ended_campaigns(sync_redis, range(3))
    few = idle_commands(sync_redis, tmp_path)
    ended_campaigns(sync_redis, range(3, 300))
    many = idle_commands(sync_redis, tmp_path)
    # a refresh every round (refresh_ms=0) reads the registry and the ended index: a fixed
    # number of commands, whatever the number of campaigns in them
    assert many <= few + ROUNDS, (few, many)
    assert many < 20 * ROUNDS, many
