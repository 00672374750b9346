"""What the ledger consumer tells the outbox (flashclaim/outbox.py), after each commit:
claims granted, coupons locked, used, released, refunded and expired; and, every second,
the campaigns whose status changed and the coupons whose expiry reminder is due.

Nothing is written while no webhook endpoint exists (one EXISTS per batch): the outbox
holds what someone will be told. A coupon.expiring reminder is told once per coupon and
lead, when its valid_until comes within the lead; a coupon granted with less validity left
than the lead (or reaching the ledger after its reminder time passed) gets none: its grant
was the notice. Every event id is made from what it tells of, so a
batch told twice (a crash between the outbox write and the acknowledgement) repeats ids.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import orjson
import redis

from flashclaim.campaigns import CampaignView
from flashclaim.coupons import CouponEvent
from flashclaim.keys import KeySpace
from flashclaim.ledger.db import ExpiredCoupon, Ledger
from flashclaim.outbox import COUPON_EVENT_TYPES, STATUS_EVENTS, OutEvent
from flashclaim.store.connection import text, time_reply_ms
from flashclaim.stream import ClaimRecord

TICK_S = 1.0
DAY_MS = 86_400_000
REMINDER_BATCH = 1000
OPEN_CAMPAIGNS_READ = 1000



class OutboxFeed:
    def __init__(self, r: redis.Redis, keyspace: KeySpace, ledger: Ledger) -> None:
        self.r = r
        self.keyspace = keyspace
        self.ledger = ledger
        self._next_tick = 0.0

    def listening(self) -> bool:
        return bool(self.r.exists(self.keyspace.webhooks))

    def emit(self, events: Iterable[OutEvent]) -> int:
        pipe = self.r.pipeline(transaction=False)
        n = 0
        for event in events:
            pipe.xadd(self.keyspace.outbox, event.fields())  # type: ignore[arg-type]
            n += 1
        if n:
            pipe.execute()
        return n

    # ---- after a commit ---------------------------------------------------------------

    def claims(self, records: Iterable[ClaimRecord]) -> int:
        if not self.listening():
            return 0
        return self.emit(OutEvent(f"claim.granted:{r.claim_id}", "claim.granted", r.campaign_id,
                                  r.claimed_at, {"claim": r.claim, "source": r.source})
                         for r in records)

    def coupon_events(self, events: Iterable[CouponEvent]) -> int:
        if not self.listening():
            return 0
        told = []
        for e in events:
            kind = COUPON_EVENT_TYPES.get(e.event)
            if kind is not None:
                told.append(OutEvent(f"{kind}:{e.entry_id}:{e.coupon_id}", kind, e.campaign_id,
                                     e.at, {"coupon_id": e.coupon_id, "user_id": e.user_id,
                                            "order_id": e.order_id, "discount": e.discount,
                                            "event": e.event}))
        return self.emit(told)

    def expired(self, coupons: list[ExpiredCoupon]) -> None:
        """Told inside the expiry's transaction (before its commit)."""
        if self.listening():
            now = int(time.time() * 1000)
            self.emit(OutEvent(f"coupon.expired:{c.coupon_id}", "coupon.expired", c.campaign_id,
                               now, {"coupon_id": c.coupon_id, "user_id": c.user_id,
                                     "valid_until": c.valid_until}) for c in coupons)

    # ---- every second -----------------------------------------------------------------

    def tick(self, force: bool = False) -> int:
        now = time.monotonic()
        if not force and now < self._next_tick:
            return 0
        self._next_tick = now + TICK_S
        if not self.listening():
            return 0
        now_ms = time_reply_ms(self.r.time())
        return self.campaign_changes(now_ms) + self.reminders(now_ms)

    def campaign_changes(self, now_ms: int) -> int:
        """campaign.started, sold_out, paused, ended: each open campaign's status against
        the one last told. An event's id counts the campaign's changes, so a change told
        again after a crash keeps its id; an ended campaign is forgotten once told."""
        ks = self.keyspace
        told = {text(k): text(v) for k, v in self.r.hgetall(ks.campaign_statuses).items()}
        ids = {text(c) for c in self.r.zrange(ks.open_campaigns, 0, OPEN_CAMPAIGNS_READ - 1)}
        ids |= set(told)
        emitted = 0
        ordered = sorted(ids)
        pipe = self.r.pipeline(transaction=False)  # every meta in one round trip
        for cid in ordered:
            pipe.hgetall(ks.campaign(cid).meta)
        for cid, raw in zip(ordered, pipe.execute(), strict=True):
            meta = {text(k): text(v) for k, v in raw.items()}
            if not meta:
                self.r.hdel(ks.campaign_statuses, cid)
                continue
            view = CampaignView.from_meta(meta)
            status = view.status(now_ms)
            last, _, count = told.get(cid, "scheduled:0").partition(":")
            if status == last:
                continue
            n = int(count or 0) + 1
            kinds = [STATUS_EVENTS[status]] if status in STATUS_EVENTS else []
            if last == "scheduled" and status != "live" and now_ms >= view.starts_at:
                kinds.insert(0, "campaign.started")  # sold out (or paused) within a tick
            emitted += self.emit(OutEvent(f"{kind}:{cid}:{n}", kind, cid, now_ms,
                                          {"status": status, "previous": last})
                                 for kind in kinds)
            if status == "ended":
                self.r.hdel(ks.campaign_statuses, cid)
            else:
                self.r.hset(ks.campaign_statuses, cid, f"{status}:{n}")
        return emitted

    def reminders(self, now_ms: int) -> int:
        """coupon.expiring: for each reminder lead (days) an endpoint asked for, the unused
        coupons whose valid_until came within it since the last tick (a keyset mark)."""
        ks = self.keyspace
        leads = {int(orjson.loads(v).get("expiring_days", 3))
                 for v in self.r.hvals(ks.webhooks)}
        emitted = 0
        for days in sorted(leads):
            mark_raw = self.r.hget(ks.reminder_marks, str(days))
            ms, _, coupon = (text(mark_raw) if mark_raw else f"{now_ms}:").partition(":")
            until = now_ms + days * DAY_MS
            due = self.ledger.expiring((int(ms), coupon), until, REMINDER_BATCH)
            emitted += self.emit(
                OutEvent(f"coupon.expiring:{c.coupon_id}:{days}", "coupon.expiring",
                         c.campaign_id, now_ms, {"coupon_id": c.coupon_id, "user_id": c.user_id,
                                                 "valid_until": c.valid_until, "days": days})
                for c in due)
            mark = (f"{due[-1].valid_until}:{due[-1].coupon_id}" if len(due) == REMINDER_BATCH
                    else f"{until}:")
            self.r.hset(ks.reminder_marks, str(days), mark)
        return emitted
