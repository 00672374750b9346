"""Ended campaigns leave Redis: after the retention, and never before the ledger has
every record of theirs.

The ledger consumer runs `expire_ended` with its other chores. A campaign qualifies
once its end is older than the retention AND every consumer group has acknowledged
every entry of its claim stream (a stream no group reads is never complete: nobody
has the records). Then all its keys go: meta, counters, replay records, stream,
grants, code batches and its codes in the slot's codes hash, and its index entries.
The ledger database keeps the history.
"""

from __future__ import annotations

import logging

import redis

from flashclaim.keys import KeySpace
from flashclaim.ledger.reconcile import ledger_lag

log = logging.getLogger("flashclaim.ledger")
SWEEP_BATCH = 100  # campaigns looked at per sweep


def fully_acknowledged(r: redis.Redis, stream: str) -> bool:
    """Every entry ever added is acknowledged by every group (no stream: nothing to carry)."""
    if not r.exists(stream):
        return True
    groups = r.xinfo_groups(stream)
    return bool(groups) and all(ledger_lag(r, stream, str(g["name"])) == 0 for g in groups)


def expire_ended(r: redis.Redis, keyspace: KeySpace, retention_ms: int, now_ms: int
                 ) -> list[str]:
    """Remove the campaigns ended before now - retention whose records are all carried;
    returns their ids."""
    due = [str(c) for c in r.zrangebyscore(keyspace.campaign_ends, "-inf",
                                           now_ms - retention_ms, start=0, num=SWEEP_BATCH)]
    removed = []
    for campaign_id in due:
        keys = keyspace.campaign(campaign_id)
        if not fully_acknowledged(r, keys.stream):
            continue
        doomed = keys.all_keys()
        for grant_id in r.zrange(keys.grants, 0, -1):
            g = keys.grant(str(grant_id))
            doomed += [g.meta, g.users, g.outcomes]
        doomed += [keys.code_batch(str(b)) for b in r.zrange(keys.code_batches, 0, -1)]
        _drop_codes(r, keys.codes(), campaign_id)
        r.delete(*doomed)
        for index in (keyspace.registry, keyspace.open_campaigns, keyspace.campaign_ends):
            r.zrem(index, campaign_id)
        log.info("campaign %s: ended and fully in the ledger; its Redis keys are removed",
                 campaign_id)
        removed.append(campaign_id)
    return removed


def _drop_codes(r: redis.Redis, slot_codes: str, campaign_id: str) -> None:
    """The campaign's codes, out of the codes hash it shares with its slot's campaigns."""
    prefix = campaign_id + ":"
    ours = [field for field, value in r.hscan_iter(slot_codes, count=1000)
            if str(value).startswith(prefix) and ":" not in str(value)[len(prefix):]]
    for start in range(0, len(ours), 1000):
        r.hdel(slot_codes, *ours[start:start + 1000])
