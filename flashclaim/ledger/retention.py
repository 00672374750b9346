"""Ended campaigns leave Redis: after the retention, and never before the ledger has
every record of theirs.

The ledger consumer runs `expire_ended` with its other chores. A campaign qualifies
once its end is older than the retention AND every consumer group has acknowledged
every entry of its claim stream (a stream no group reads is never complete: nobody
has the records) AND every coupon it issued is past valid_until (until then the
checkout system may still redeem one). Then all its keys go: meta, counters, replay
records, stream, grants, code batches, its codes in the slot's codes hash, its
coupons and uses in the slot's redemption hashes, and its index entries.
The ledger database keeps the history.
"""

from __future__ import annotations

import logging

import redis

from flashclaim.keys import CampaignKeys, KeySpace
from flashclaim.ledger.db import Ledger
from flashclaim.ledger.reconcile import campaign_parts, ledger_lag, unrecorded_dead_letters
from flashclaim.packed import IssuedCoupon, code_of_code_user, code_owner, event_count_field

log = logging.getLogger("flashclaim.ledger")
SWEEP_BATCH = 100  # campaigns looked at per sweep


def fully_acknowledged(r: redis.Redis, stream: str) -> bool:
    """Every entry ever added is acknowledged by every group (no stream: nothing to carry)."""
    if not r.exists(stream):
        return True
    groups = r.xinfo_groups(stream)
    return bool(groups) and all(ledger_lag(r, stream, str(g["name"])) == 0 for g in groups)


def expire_ended(r: redis.Redis, keyspace: KeySpace, ledger: Ledger, retention_ms: int,
                 now_ms: int) -> list[str]:
    """Remove the campaigns ended before now - retention whose records are all carried;
    returns their ids."""
    due = [str(c) for c in r.zrangebyscore(keyspace.campaign_ends, "-inf",
                                           now_ms - retention_ms, start=0, num=SWEEP_BATCH)]
    removed = []
    for campaign_id in due:
        keys = keyspace.campaign(campaign_id)
        parts = campaign_parts(r, keyspace, campaign_id)
        if not all(fully_acknowledged(r, stream) for part in parts
                   for stream in (part.stream, part.holdout)):
            continue
        # a dead-lettered claim is acknowledged, but the ledger may lack it: its stream and
        # dead letters stay until it is repaired (reconcile names it)
        unrecorded = [x for part in parts
                      for x in unrecorded_dead_letters(r, ledger, part.dead_letter)]
        if unrecorded:
            log.warning("campaign %s stays in Redis: %s", campaign_id, "; ".join(unrecorded))
            continue
        # a bucket's coupons live in its own slot; a slot's event counts are per campaign
        slots = {part.coupon_slot() for part in parts}
        found = [(slot, _coupons_of(r, slot.coupons, campaign_id, now_ms)) for slot in slots]
        if any(coupons is None for _, coupons in found):  # some are still valid: the
            continue  # checkout system may redeem them
        for slot, coupons in found:
            _hdel_all(r, slot.coupons, coupons or [])
            _hdel_all(r, slot.uses, coupons or [])
            r.hdel(slot.event_counts, *(event_count_field(campaign_id, e)
                                        for e in ("redeemed", "released")))
        doomed = [k for part in parts[1:] for k in part.all_keys()] + keys.all_keys()
        for grant_id in r.zrange(keys.grants, 0, -1):
            g = keys.grant(str(grant_id))
            doomed += [g.meta, g.users, g.outcomes]
        doomed += [keys.code_batch(str(b)) for b in r.zrange(keys.code_batches, 0, -1)]
        _drop_codes(r, keys, campaign_id)
        r.set(keys.retired, now_ms)  # first: the id stays taken (create_campaign.lua)
        # and no consumer joins (so re-creates) the holdout streams about to go
        r.srem(keyspace.holdout_streams, *(part.holdout for part in parts))
        r.delete(*doomed)
        for index in (keyspace.registry, keyspace.open_campaigns, keyspace.campaign_ends):
            r.zrem(index, campaign_id)
        r.hdel(keyspace.bucketed, campaign_id)
        r.srem(keyspace.grant_campaigns, campaign_id)
        log.info("campaign %s: ended and fully in the ledger; its Redis keys are removed",
                 campaign_id)
        removed.append(campaign_id)
    return removed


def _drop_codes(r: redis.Redis, keys: CampaignKeys, campaign_id: str) -> None:
    """The campaign's codes, and who redeemed them, out of the hashes it shares with its
    slot's campaigns."""
    ours = {str(field) for field, value in r.hscan_iter(keys.codes(), count=1000)
            if code_owner(str(value)) == campaign_id}
    _hdel_all(r, keys.codes(), sorted(ours))
    _hdel_all(r, keys.code_users(), [
        str(field) for field, _ in r.hscan_iter(keys.code_users(), count=1000)
        if code_of_code_user(str(field)) in ours])


def _coupons_of(r: redis.Redis, slot_coupons: str, campaign_id: str, now_ms: int
                ) -> list[str] | None:
    """The campaign's coupons in its slot's coupons hash; None while any is still valid."""
    ours = []
    for field, value in r.hscan_iter(slot_coupons, count=1000):
        coupon = IssuedCoupon.unpack(str(value))
        if coupon.campaign_id == campaign_id:
            if coupon.valid_until > now_ms:
                return None
            ours.append(str(field))
    return ours


def _hdel_all(r: redis.Redis, key: str, fields: list[str]) -> None:
    for start in range(0, len(fields), 1000):
        r.hdel(key, *fields[start:start + 1000])
