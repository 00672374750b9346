"""`flashclaim ledger`: carries every claim from the campaign streams into the SQL ledger.

Exactly once in effect: each batch is written in one transaction with idempotent
inserts, and acknowledged (XACK) only after the commit. A crash between the two
leaves the entries pending; they are redelivered and the rewrite is a no-op.

- New campaigns are found through the registry (keys.KeySpace.registry): at every
  refresh, and at once when the registry or the set of coupon-event streams grows (two
  counts read each round), so a new stream is read within one round.
- Quiet streams cost nothing: a campaign ended (by the Redis clock, QUIET_AFTER_MS ago)
  whose stream the group has wholly acknowledged gets no new entry, so its stream is no
  longer read, taken over or checked (it is trimmed once, when its entries pass the
  retention). An idle ledger's cost does not grow with the campaigns ever made.
- On start the consumer first drains its own pending entries; every claim_idle_ms / 2
  it takes over entries that dead consumers left pending (XAUTOCLAIM).
- Poison entries (undecodable, or delivered too often) go to the campaign's
  dead-letter stream with the reason, are acknowledged, counted and logged.
- The database or Redis down is not poison: the consumer waits and retries (one
  warning, then a reminder at most every `warn_every_ms`); SIGTERM while it waits
  ends it cleanly (exit 0).
- Progress (rows written, lag) is logged every `progress_ms`.
- Retention: acknowledged entries older than the retention are trimmed, never
  below what every consumer group has acknowledged.
- Expiry: with the trim, unused coupons past valid_until are marked expired.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import redis
from redis.crc import key_slot
from redis.typing import EncodableT, FieldT

from flashclaim.audit_log import AuditEntry
from flashclaim.coupons import CouponEvent, EventError
from flashclaim.holdout import ControlDecision, Purchase
from flashclaim.keys import KeySpace
from flashclaim.ledger.cap_feed import CapFeed
from flashclaim.ledger.db import Ledger, LedgerUnavailable, open_ledger
from flashclaim.ledger.outbox_feed import OutboxFeed
from flashclaim.ledger.reconcile import ledger_lag
from flashclaim.ledger.retention import expire_ended
from flashclaim.risk.watch import USE_EVENTS, RiskWatch, Use
from flashclaim.settings import Settings
from flashclaim.store.connection import redis_url_of, sync_client, time_reply_ms
from flashclaim.store.reads import bucketed_campaigns, run
from flashclaim.stream import LEDGER_GROUP, ClaimRecord, RecordError, entry_order

log = logging.getLogger("flashclaim.ledger")
COUPON_EVENTS = "*coupon-events*"  # the owner recorded for a coupon-event stream
AUDIT = "*audit*"  # the owner recorded for the audit stream (never trimmed: it is small)
HOLDOUT = "*holdout*"  # the owner recorded for a campaign's holdout stream (control users)
PURCHASES = "*purchases*"  # the owner recorded for the stream of paid orders told by events
_SWEEP_BATCH = 10_000  # coupons marked expired per transaction
CLUSTER_IDLE_POLLS = 10  # on a cluster, idle streams are polled this often per block_ms
QUIET_AFTER_MS = 10_000  # an ended campaign's stream is quiet this long after its end
T = TypeVar("T")


@dataclass(frozen=True)
class ConsumerOptions:
    group: str = LEDGER_GROUP
    consumer: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    batch: int = 500
    block_ms: int = 1000
    claim_idle_ms: int = 30_000  # pending this long with a consumer: it is presumed dead
    max_deliveries: int = 5  # delivered more often than this: poison
    refresh_ms: int = 2000  # how often new campaigns and dead consumers' entries are looked for
    retain_ms: int = 86_400_000  # acknowledged entries are kept this long, then trimmed
    trim_every_ms: int = 60_000
    # Ended campaigns' Redis keys go this long after their end, once fully in the ledger.
    campaign_retention_ms: int = 30 * 86_400_000
    db_retry_ms: int = 500
    warn_every_ms: int = 10_000  # while waiting for Redis or the database
    progress_ms: int = 30_000


@dataclass
class ConsumerStats:
    written: int = 0  # new claims in the ledger
    redelivered: int = 0  # entries already in the ledger (no-ops)
    dead: int = 0  # entries sent to a dead-letter stream
    trimmed: int = 0
    expired: int = 0  # coupons the expiry sweep marked expired


class LedgerConsumer:
    def __init__(self, r: redis.Redis, ledger: Ledger, keyspace: KeySpace,
                 options: ConsumerOptions | None = None) -> None:
        self.redis = r  # decode_responses, RESP2 (see _streams_reply)
        self.ledger = ledger
        self.keyspace = keyspace
        self.options = options or ConsumerOptions()
        self.stats = ConsumerStats()
        self.risk = RiskWatch(r, keyspace)  # the alert detectors, fed each committed batch
        self.outbox = OutboxFeed(r, keyspace, ledger)  # what webhooks are told
        self.caps = CapFeed(r, keyspace)  # caps across campaigns, made good from the stream
        self.stop_requested = False
        self._streams: dict[str, str] = {}  # active streams: stream key -> campaign id
        # quiet streams: stream key -> (campaign id, when to trim it, epoch ms; None: done)
        self._quiet: dict[str, tuple[str, int | None]] = {}
        self._counts: tuple[int, int] | None = None  # (registry, event streams) last seen
        self._next_takeover = 0.0
        self._failures: dict[str, int] = {}  # entry id -> failed writes in this process
        self._next_refresh = 0.0
        self._next_trim = 0.0
        self._next_progress = time.monotonic() + self.options.progress_ms / 1000
        self._outage = _Outage(self.options.warn_every_ms / 1000)
        self._cluster = isinstance(r, redis.RedisCluster)

    def request_stop(self) -> None:
        """Finish the batch in hand (commit, ack), then return from run()."""
        self.stop_requested = True

    def start(self) -> None:
        """Schema in place, streams joined, and this consumer's own pending entries drained."""
        self._wait_for_db(self.ledger.migrate)
        self.discover()
        for stream in list(self._streams):
            self._drain_own_pending(stream)

    def run(self) -> ConsumerStats:
        """Until request_stop(): start, then read and write. Outages of Redis or the
        database are waited out; a stop requested meanwhile ends it cleanly."""
        try:
            self._until_redis_answers(self.start)
            while not self.stop_requested:
                self._until_redis_answers(self.run_once)
                self._log_progress()
        except LedgerUnavailable:
            if not self.stop_requested:
                raise
        return self.stats

    def _until_redis_answers(self, work: Callable[[], object]) -> None:
        while not self.stop_requested:
            try:
                work()
                self._outage.over("Redis")
                return
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self._outage.waiting("Redis", exc)
                time.sleep(self.options.db_retry_ms / 1000)

    def _log_progress(self) -> None:
        now = time.monotonic()
        if now < self._next_progress:
            return
        self._next_progress = now + self.options.progress_ms / 1000
        lag = sum(ledger_lag(self.redis, stream, self.options.group)
                  for stream in self._streams)  # (quiet streams have none)
        s = self.stats
        log.info("ledger progress: %d claims written, %d redelivered, %d dead-lettered, "
                 "%d trimmed, %d expired; lag %d over %d streams", s.written, s.redelivered,
                 s.dead, s.trimmed, s.expired, lag, len(self._streams))

    def run_once(self) -> int:
        """One round: periodic chores when due, then one blocking read of new entries."""
        now = time.monotonic()
        if now >= self._next_refresh or self._grown():
            self._next_refresh = now + self.options.refresh_ms / 1000
            self.discover()
        if now >= self._next_takeover:
            self._next_takeover = now + self.options.claim_idle_ms / 2000
            self.take_over_abandoned()
        if now >= self._next_trim:
            self._next_trim = now + self.options.trim_every_ms / 1000
            self.trim()
        self._watch(self.risk.tick)
        self._watch(self.outbox.tick)
        if not self._streams:
            time.sleep(self.options.block_ms / 1000)
            return 0
        try:
            reply = self._read_new()
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # a campaign removed after its retention (by this or another consumer)
            self._streams = {s: c for s, c in self._streams.items() if self.redis.exists(s)}
            return 0
        handled = 0
        for stream, entries in reply:
            self.handle(stream, entries)
            handled += len(entries)
        return handled

    def _read_new(self) -> list[Any]:
        """New entries of every stream. One node: one blocking XREADGROUP over all of them.
        A cluster refuses a command over keys of several slots, so there it is one
        non-blocking read per slot, and a short pause when a whole round found nothing."""
        group, consumer, batch = self.options.group, self.options.consumer, self.options.batch
        if not self._cluster:
            return _streams_reply(self.redis.xreadgroup(
                group, consumer, dict.fromkeys(self._streams, ">"), count=batch,
                block=self.options.block_ms))
        by_slot: dict[int, list[str]] = {}
        for stream in self._streams:
            by_slot.setdefault(key_slot(stream.encode()), []).append(stream)
        reply: list[Any] = []
        for streams in by_slot.values():
            reply += _streams_reply(self.redis.xreadgroup(
                group, consumer, dict.fromkeys(streams, ">"), count=batch))
        if not reply:
            time.sleep(self.options.block_ms / 1000 / CLUSTER_IDLE_POLLS)
        return reply

    def _grown(self) -> bool:
        """Whether a campaign or a coupon-event stream appeared since the last discover
        (two counts: a round's cost does not grow with the campaigns)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcard(self.keyspace.registry)
        pipe.scard(self.keyspace.coupon_event_streams)
        registry, events = pipe.execute()
        counts = (int(registry), int(events))
        return self._counts is not None and counts > self._counts

    def discover(self) -> None:
        """Join the claim stream of every campaign in the registry (creating our group);
        leave those that left it (removed after their retention); let the streams of
        ended, wholly acknowledged campaigns go quiet."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrange(self.keyspace.registry, 0, -1)
        pipe.scard(self.keyspace.coupon_event_streams)
        raw_registry, events = pipe.execute()
        registered = [str(c) for c in raw_registry]
        self._counts = (len(registered), int(events))
        kept = set(registered) | {COUPON_EVENTS, AUDIT, HOLDOUT, PURCHASES}
        self._streams = {s: c for s, c in self._streams.items() if c in kept}
        self._quiet = {s: q for s, q in self._quiet.items() if q[0] in kept}
        layouts = run(self.redis, bucketed_campaigns(self.keyspace))
        wanted = [(keys.stream, c) for c in registered
                  for keys in self.keyspace.buckets(c, layouts.get(c, 1))]
        # and the slots' coupon-event streams (redemption write-back)
        wanted += [(str(s), COUPON_EVENTS)
                   for s in self.redis.smembers(self.keyspace.coupon_event_streams)]
        wanted.append((self.keyspace.audit, AUDIT))  # the admin API's and the CLI's writes
        wanted += [(str(s), HOLDOUT)  # holdouts' control users
                   for s in self.redis.smembers(self.keyspace.holdout_streams)]
        wanted.append((self.keyspace.purchases, PURCHASES))  # paid orders, for the uplift
        for stream, owner in wanted:
            if stream in self._streams or stream in self._quiet:
                continue
            try:
                self.redis.xgroup_create(stream, self.options.group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._streams[stream] = owner
        self._quiet_down()

    def _quiet_down(self) -> None:
        """Active streams of campaigns that ended QUIET_AFTER_MS ago (Redis clock) and that
        the group has wholly acknowledged become quiet: no new entry can come (claim.lua
        refuses every claim after the end)."""
        now_ms = time_reply_ms(self.redis.time())
        reply = self.redis.zrangebyscore(self.keyspace.campaign_ends, "-inf",
                                         now_ms - QUIET_AFTER_MS, withscores=True)
        ended = {str(c): float(at) for c, at in cast(list[tuple[str, float]], reply)}
        for stream, owner in list(self._streams.items()):
            if owner in ended and ledger_lag(self.redis, stream, self.options.group) == 0:
                del self._streams[stream]
                self._quiet[stream] = (owner, int(ended[owner]) + self.options.retain_ms)

    def _drain_own_pending(self, stream: str) -> None:
        """What this consumer was delivered but never acknowledged (a restart after a crash)."""
        while not self.stop_requested:
            reply = self.redis.xreadgroup(self.options.group, self.options.consumer, {stream: "0"},
                                          count=self.options.batch)
            entries = next((e for _, e in _streams_reply(reply)), [])
            if not entries:
                return
            self.handle(stream, entries)

    def take_over_abandoned(self) -> None:
        """Claim entries left pending too long by another (presumably dead) consumer."""
        for stream in list(self._streams):
            start = "0-0"
            while not self.stop_requested:
                next_start, entries, *_ = self.redis.xautoclaim(
                    stream, self.options.group, self.options.consumer,
                    self.options.claim_idle_ms, start_id=start, count=self.options.batch)
                if entries:
                    log.info("took over %d abandoned entries of %s", len(entries), stream)
                    self.handle(stream, entries, check_deliveries=True)
                if str(next_start) == "0-0":
                    break
                start = str(next_start)

    def handle(self, stream: str, entries: list[Any], check_deliveries: bool = False) -> None:
        """Write a batch to the ledger in one transaction, then acknowledge it.

        Only data errors can make an entry poison. Any other error (a bug, a broken
        environment) propagates with the batch unacknowledged: it stays pending.
        """
        deliveries = self._deliveries(stream, entries) if check_deliveries else {}
        if self._streams.get(stream) == COUPON_EVENTS:
            self._handle_events(stream, entries, deliveries)
            return
        owner = self._streams.get(stream)
        if owner == AUDIT:
            self._handle_rows(stream, entries, AuditEntry.decode, self.ledger.write_audit)
            return
        if owner == HOLDOUT:
            self._handle_rows(stream, entries, ControlDecision.decode,
                              lambda rows: self.ledger.write_control([r for _, r in rows]))
            return
        if owner == PURCHASES:
            self._handle_rows(stream, entries, Purchase.decode,
                              lambda rows: self.ledger.write_purchases([r for _, r in rows]))
            return
        records: list[ClaimRecord] = []
        dead: list[tuple[str, dict[str, str], str]] = []
        for entry_id, fields in entries:
            entry_id, fields = str(entry_id), {str(k): str(v) for k, v in (fields or {}).items()}
            if deliveries.get(entry_id, 0) > self.options.max_deliveries:
                dead.append((entry_id, fields,
                             f"delivered {deliveries[entry_id]} times without being written"))
                continue
            try:
                records.append(ClaimRecord.decode(entry_id, fields))
            except RecordError as exc:
                dead.append((entry_id, fields, f"undecodable: {exc}"))
        written_ids = self._write(records, dead)
        self._dead_letter(stream, dead)
        if written_ids:
            # told before the acknowledgement: a crash between them tells again (same ids)
            written = set(written_ids)
            self.outbox.claims(r for r in records if r.entry_id in written)
            self.redis.xack(stream, self.options.group, *written_ids)
            self._watch(lambda: self.risk.claims(records))
            self._watch(lambda: self.caps.claims(records))

    def _handle_events(self, stream: str, entries: list[Any], deliveries: dict[str, int]
                       ) -> None:
        """Coupon events: recorded and applied in one transaction, then acknowledged."""
        events: list[CouponEvent] = []
        dead: list[tuple[str, dict[str, str], str]] = []
        for entry_id, fields in entries:
            entry_id, fields = str(entry_id), {str(k): str(v) for k, v in (fields or {}).items()}
            if deliveries.get(entry_id, 0) > self.options.max_deliveries:
                dead.append((entry_id, fields, f"delivered {deliveries[entry_id]} times"))
                continue
            try:
                events.append(CouponEvent.decode(entry_id, fields))
            except EventError as exc:
                dead.append((entry_id, fields, f"undecodable: {exc}"))
        if events:
            self._tally("events", self._wait_for_db(lambda: self.ledger.apply_events(events)))
        self._dead_letter(stream, dead)
        if events:
            self.outbox.coupon_events(events)
            self.redis.xack(stream, self.options.group, *[e.entry_id for e in events])
            self._watch(lambda: self.risk.uses(self._uses(events)))
            self._watch(lambda: self.caps.uses(events))

    def _handle_rows(self, stream: str, entries: list[Any],
                     decode: Callable[[dict[str, str]], T],
                     write: Callable[[list[tuple[str, T]]], int]) -> None:
        """Entries that are rows of a table of their own (the audit log, holdouts' control
        users, paid orders): written in one transaction, then acknowledged; the rows are
        idempotent, so a redelivery writes nothing new (exactly once in effect, as claims
        are). An entry that does not decode is dead-lettered."""
        good: list[tuple[str, T]] = []
        dead: list[tuple[str, dict[str, str], str]] = []
        for entry_id, fields in entries:
            entry_id, fields = str(entry_id), {str(k): str(v) for k, v in (fields or {}).items()}
            try:
                good.append((entry_id, decode(fields)))
            except (KeyError, ValueError) as exc:
                dead.append((entry_id, fields, f"undecodable: {exc!r}"))
        if good:
            self._wait_for_db(lambda: write(good))
        self._dead_letter(stream, dead)  # (acknowledges them)
        if good:
            self.redis.xack(stream, self.options.group, *[i for i, _ in good])

    def _uses(self, events: list[CouponEvent]) -> list[Use]:
        """The uses among these events, with when each coupon was granted (the ledger's)."""
        used = [e for e in events if e.event in USE_EVENTS]
        granted = self.ledger.granted_at([e.coupon_id for e in used]) if used else {}
        return [Use(e.campaign_id, e.user_id, e.coupon_id, e.at, granted[e.coupon_id])
                for e in used if e.coupon_id in granted]

    def _watch(self, count: Callable[[], int]) -> None:
        """The risk detectors over what was just committed: never a reason to stop the
        ledger (an error is logged; the claims are in the ledger already)."""
        try:
            count()
        except (redis.RedisError, LedgerUnavailable) as exc:
            log.warning("risk detectors skipped a batch: %s", exc)

    def _write(
        self, records: list[ClaimRecord], dead: list[tuple[str, dict[str, str], str]]
    ) -> list[str]:
        """Commit the records; returns the ids that are now safely in the ledger."""
        if not records:
            return []
        try:
            inserted = self._wait_for_db(lambda: self.ledger.write(records))
            self._count(len(records), inserted)
            return [r.entry_id for r in records]
        except self.ledger.data_errors as batch_error:
            log.warning("batch of %d failed (%s); writing one by one", len(records), batch_error)
        ok: list[str] = []
        for record in records:  # find the entry that poisons the batch
            try:
                inserted = self._wait_for_db(functools.partial(self.ledger.write, [record]))
                self._count(1, inserted)
                ok.append(record.entry_id)
            except RecordError as exc:  # deterministic: it will never be written
                dead.append((record.entry_id, record.fields(), f"undecodable: {exc}"))
            except self.ledger.data_errors as exc:
                failures = self._failures.get(record.entry_id, 0) + 1
                self._failures[record.entry_id] = failures
                if failures >= self.options.max_deliveries:
                    dead.append((record.entry_id, record.fields(),
                                 f"write failed {failures} times: {exc!r}"))
                # else: left pending; redelivered through take_over_abandoned
        return ok

    def _count(self, batch: int, inserted: int) -> None:
        self.stats.written += inserted
        self.stats.redelivered += batch - inserted
        self._tally("written", inserted)

    def _tally(self, what: str, new_rows: int) -> None:
        """Shared running totals for /metrics (only rows new to the ledger: a redelivery
        adds nothing)."""
        if new_rows:
            self.redis.hincrby(self.keyspace.ledger_stats, f"{what}:{self.options.group}",
                               new_rows)

    def _wait_for_db(self, work: Callable[[], T]) -> T:
        """Retry while the database is unreachable: claims keep flowing into Redis meanwhile."""
        while True:
            try:
                result = work()
                self._outage.over("the ledger database")
                return result
            except LedgerUnavailable as exc:
                if self.stop_requested:
                    raise
                self._outage.waiting("the ledger database", exc)
                time.sleep(self.options.db_retry_ms / 1000)

    def _deliveries(self, stream: str, entries: list[Any]) -> dict[str, int]:
        ids = [str(e[0]) for e in entries]
        if not ids:
            return {}
        pending = self.redis.xpending_range(stream, self.options.group, min=ids[0], max=ids[-1],
                                            count=len(ids) * 2)
        return {str(p["message_id"]): int(p["times_delivered"]) for p in pending}

    def _dead_letter(self, stream: str, dead: list[tuple[str, dict[str, str], str]]) -> None:
        if not dead:
            return
        owner = self._streams.get(stream, "unknown")
        dead_stream = stream + ":dead" if owner in (COUPON_EVENTS, AUDIT, HOLDOUT, PURCHASES) else \
            self.keyspace.campaign(owner).dead_letter
        pipe = self.redis.pipeline(transaction=True)  # same hash tag: one slot
        for entry_id, fields, reason in dead:
            log.error("dead-lettered %s %s: %s", stream, entry_id, reason)
            copy: dict[FieldT, EncodableT] = {k: v for k, v in fields.items()}
            copy.update(dead_reason=reason, dead_entry_id=entry_id,
                        dead_group=self.options.group)
            pipe.xadd(dead_stream, copy)
            pipe.xack(stream, self.options.group, entry_id)
        pipe.execute()
        self.stats.dead += len(dead)

    def trim(self) -> None:
        """Trim acknowledged entries older than the retention, below every group's ack point."""
        now_ms = time_reply_ms(self.redis.time())
        due_quiet = [s for s, (_, at) in self._quiet.items() if at is not None and at <= now_ms]
        for stream in [*self._streams, *due_quiet]:
            if self._streams.get(stream) == AUDIT:
                continue  # kept whole: GET /v1/admin/audit reads it
            safe = safe_trim_point(self.redis, stream)
            if safe is None:
                continue
            oldest_kept = f"{max(0, now_ms - self.options.retain_ms)}-0"
            minid = min(safe, oldest_kept, key=entry_order)
            removed = int(self.redis.xtrim(stream, minid=minid, approximate=False))
            self.stats.trimmed += removed
        for stream in due_quiet:  # every entry is past the retention now: trimmed for good
            self._quiet[stream] = (self._quiet[stream][0], None)
        for campaign_id in expire_ended(self.redis, self.keyspace, self.ledger,
                                        self.options.campaign_retention_ms, now_ms):
            self._streams = {s: c for s, c in self._streams.items() if c != campaign_id}
            self._quiet = {s: q for s, q in self._quiet.items() if q[0] != campaign_id}
        self.sweep_expired(now_ms)

    def sweep_expired(self, now_ms: int) -> int:
        """Unused coupons past valid_until (on the Redis clock, which decides redemptions)
        become expired, in bounded transactions; returns how many."""
        swept = 0
        while not self.stop_requested:
            done = self._wait_for_db(lambda: self.ledger.expire_due(now_ms, _SWEEP_BATCH,
                                                                    self.outbox.expired))
            swept += done
            if done < _SWEEP_BATCH:
                break
        self.stats.expired += swept
        self._tally("expired", swept)
        return swept


def safe_trim_point(r: redis.Redis, stream: str) -> str | None:
    """The lowest entry id that some consumer group still needs; None without groups.

    For each group: its oldest pending entry, or else the entry after the last one
    delivered to it. Everything strictly below the minimum is acknowledged by all.
    """
    groups = r.xinfo_groups(stream)
    if not groups:
        return None
    points = []
    for g in groups:
        # Delivery point first: an entry acknowledged after this read is still covered.
        ms, seq = entry_order(str(g["last-delivered-id"]))
        point = f"{ms}-{seq + 1}"
        if int(g["pending"]) > 0:
            oldest_pending = r.xpending(stream, g["name"])["min"]
            if oldest_pending is not None:  # None: all acknowledged since XINFO
                point = str(oldest_pending)
        points.append(point)
    return min(points, key=entry_order)


def _streams_reply(reply: Any) -> list[tuple[str, list[Any]]]:
    """XREADGROUP's reply as (stream, entries) pairs: RESP2 gives a list of pairs
    (redis-py types the reply as a RESP2|RESP3 union; this client speaks RESP2)."""
    return [(str(stream), list(entries)) for stream, entries in reply or []]


class _Outage:
    """Warnings while something is down: the first at once, then one every `every` seconds
    (with how long it has lasted), and one line when it is back."""

    def __init__(self, every: float) -> None:
        self._every = every
        self._since: dict[str, float] = {}
        self._next: dict[str, float] = {}

    def waiting(self, what: str, exc: Exception) -> None:
        now = time.monotonic()
        since = self._since.setdefault(what, now)
        if now >= self._next.get(what, 0.0):
            self._next[what] = now + self._every
            log.warning("%s unavailable for %.0fs (%s); waiting", what, now - since, exc)

    def over(self, what: str) -> None:
        since = self._since.pop(what, None)
        if since is not None:
            self._next.pop(what, None)
            log.info("%s is back after %.1fs", what, time.monotonic() - since)


def run_ledger(settings: Settings, options: ConsumerOptions) -> int:
    """`flashclaim ledger`: consume until SIGTERM or SIGINT, then close."""
    r = sync_client(redis_url_of(settings), socket_timeout=options.block_ms / 1000 + 5)
    consumer = LedgerConsumer(r, open_ledger(settings.ledger_dsn, settings.data_dir),
                              KeySpace(settings.namespace), options)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: consumer.request_stop())
    log.info("ledger consumer %s of group %s started", options.consumer, options.group)
    stats = consumer.run()
    log.info("ledger consumer stopped: %s", stats)
    consumer.ledger.close()
    return 0
