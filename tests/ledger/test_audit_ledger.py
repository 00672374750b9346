"""The audit log in the ledger: every entry of the audit stream carried into the ledger
database once (a second pass writes nothing new), and reconcile finding an entry the
ledger lacks (a breach, planted)."""

from __future__ import annotations

from pathlib import Path

import httpx

from flashclaim.keys import KeySpace
from flashclaim.ledger.consumer import ConsumerOptions, LedgerConsumer
from flashclaim.ledger.db import open_ledger
from flashclaim.ledger.reconcile import missing_audit

from helpers import ADMIN, NAMESPACE, SyncRedis, create_campaign

KS = KeySpace(NAMESPACE)


async def test_the_audit_stream_reaches_the_ledger_once(client: httpx.AsyncClient,
                                                        sync_redis: SyncRedis,
                                                        tmp_path: Path) -> None:
    campaign = await create_campaign(client)
    for action in ("pause", "resume", "pause"):
        response = await client.post(f"/v1/admin/campaigns/{campaign['id']}/{action}",
                                     headers=ADMIN)
        assert response.status_code == 200
    assert (await client.post("/v1/admin/tokens", headers=ADMIN,
                              json={"name": "a", "role": "viewer"})).status_code == 201
    written = sync_redis.xlen(KS.audit)
    assert written == 5
    ledger = open_ledger(None, tmp_path)
    consumer = LedgerConsumer(sync_redis, ledger, KS, ConsumerOptions(block_ms=10, refresh_ms=0))
    consumer.start()
    for _ in range(3):
        consumer.run_once()
    rows = ledger.execute("SELECT actor, method, path, status FROM audit_log ORDER BY entry_id")
    assert [(a, m, p.rsplit("/", 1)[-1], st) for a, m, p, st in rows] == [
        ("bootstrap", "POST", "campaigns", 201), ("bootstrap", "POST", "pause", 200),
        ("bootstrap", "POST", "resume", 200), ("bootstrap", "POST", "pause", 200),
        ("bootstrap", "POST", "tokens", 201)]
    assert missing_audit(sync_redis, ledger, KS) == []
    consumer.trim()  # the audit stream is kept whole
    assert sync_redis.xlen(KS.audit) == written
    # a redelivery writes nothing twice
    entries = sync_redis.xrange(KS.audit)
    consumer.handle(KS.audit, entries)
    assert ledger.execute("SELECT COUNT(*) FROM audit_log") == [(written,)]
    # the check catches a breach: an entry the ledger lost
    [(first_id, _)] = entries[:1]
    ledger.execute("DELETE FROM audit_log WHERE entry_id = ?", (first_id,))
    assert missing_audit(sync_redis, ledger, KS) == [first_id]
    ledger.close()
