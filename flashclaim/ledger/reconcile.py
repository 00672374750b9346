"""`flashclaim reconcile`: Redis, the claim stream and the SQL ledger must tell one story.

Per campaign it compares stock, remaining and granted in Redis; the stream (entries
ever added, the retained seq range, claim ids); and the ledger (rows, seqs 1..granted
with no gap or repeat, per-user counts within the limit); and the redemption
write-back (redeem and release events Redis wrote against those in the ledger,
and the ledger's used coupons against them). Entries the ledger has not
acknowledged yet are reported as lag, not as a mismatch; while there is lag, only the
checks that lag cannot explain are made.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import redis

from flashclaim.campaigns import GRANTED, CampaignView
from flashclaim.checks.audit import decode_entries
from flashclaim.checks.invariants import (
    EventCounts,
    budget_breaches,
    counter_breaches,
    lost_breaches,
    record_breaches,
    redemption_breaches,
    stream_count_breaches,
)
from flashclaim.checks.issuance import blocked_times, issuance_breaches
from flashclaim.coupons import ALL_EVENTS
from flashclaim.keys import CampaignKeys, CouponSlotKeys, KeySpace
from flashclaim.ledger.db import Ledger, open_ledger
from flashclaim.packed import Transfer, event_count_field
from flashclaim.settings import Settings
from flashclaim.store.buckets import bucket_seq
from flashclaim.store.connection import as_entries, as_map, redis_url_of, sync_client, text_map
from flashclaim.store.reads import lag_from, ledger_lags, run
from flashclaim.stream import (
    LEDGER_GROUP,
    PAGE,
    ClaimRecord,
    RecordError,
    entry_order,
    next_page_start,
)
from flashclaim.tables import text_table


@dataclass
class Reconciliation:
    campaign_id: str
    stock: int | None = 0  # None: unlimited
    remaining: int | None = 0
    granted: int = 0
    stream_added: int = 0
    stream_length: int = 0
    ledger_rows: int = 0
    lag: int = 0
    used: int = 0  # coupons used now, in the ledger
    locked: int = 0  # coupons an order holds now, in the ledger
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def ledger_lag(r: redis.Redis, stream: str, group: str) -> int:
    """Entries of the stream the group has not acknowledged (store/reads.ledger_lags)."""
    [lag] = run(r, ledger_lags([stream], group))
    return lag


@dataclass(frozen=True)
class _Snapshot:
    meta: dict[str, str]
    records: list[ClaimRecord | RecordError]
    entry_ids: list[str]
    added: int
    groups: list[dict[str, Any]]


def _snapshot(r: redis.Redis, stream: str, meta_key: str) -> _Snapshot:
    """Counters, the retained stream and the groups' positions, in one MULTI/EXEC: grants
    made meanwhile cannot make them disagree (one hash tag: one slot)."""
    pipe = r.pipeline(transaction=True)
    pipe.hgetall(meta_key)
    pipe.xrange(stream)
    pipe.xinfo_stream(stream)
    pipe.xinfo_groups(stream)
    meta, raw, info, groups = pipe.execute(raise_on_error=False)  # no stream: errors
    entries = [] if isinstance(raw, Exception) else as_entries(raw)
    return _Snapshot(
        meta=text_map(as_map(meta)),
        records=decode_entries(entries),
        entry_ids=[str(entry_id) for entry_id, _ in entries],
        added=0 if isinstance(info, Exception) else int(as_map(info)["entries-added"]),
        groups=[] if isinstance(groups, Exception) else [as_map(g) for g in groups],
    )


def reconcile_campaign(
    r: redis.Redis, ledger: Ledger, keyspace: KeySpace, campaign_id: str, group: str = LEDGER_GROUP,
    stuck_ms: int | None = None,
) -> Reconciliation:
    """Compare one campaign, also under live traffic: each bucket's Redis state is read in
    one atomic snapshot (its granted G); what the ledger must hold is judged on its rows
    up to G's seq; what it must not hold, on all its rows against `granted` read again
    after the ledger (G2 >= G), since grants made meanwhile may already be in it."""
    rec = Reconciliation(campaign_id)
    parts = campaign_parts(r, keyspace, campaign_id)
    n = len(parts)
    snaps = [_snapshot(r, part.stream, part.meta) for part in parts]
    if not snaps[0].meta:
        rec.mismatches.append("campaign not found in Redis")
        return rec
    view = CampaignView.from_meta(snaps[0].meta)
    m = rec.mismatches
    blocked = blocked_times({str(k): str(v) for k, v in r.hgetall(keyspace.blocklist).items()})
    for b, snap in enumerate(snaps):
        if not snap.meta:
            m.append(f"bucket {b} not found in Redis")
            continue
        m.extend(_reconcile_bucket(ledger, campaign_id, group, (b, n), snap, blocked, rec))
        m.extend(_bucket_budget(snap.meta, f"bucket {b}: " if n > 1 else ""))
    m.extend(_counter_check(r, parts, view, rec))
    everything = ledger.summary(campaign_id).records  # first the ledger, then granted:
    later = [int(g or 0) for g in (r.hget(part.meta, GRANTED) for part in parts)]
    m.extend(record_breaches(everything, granted=sum(later), per_user_limit=view.per_user_limit,
                             where="ledger", complete=False,
                             top_seq=max(bucket_seq(g, b, n) if g else 0
                                         for b, g in enumerate(later))))
    m.extend(_redemption_check(r, ledger, {part.coupon_slot() for part in parts}, campaign_id,
                               group, rec))
    m.extend(_holdout_check(r, ledger, parts, campaign_id, group, rec))
    for part in parts:
        m.extend(unrecorded_dead_letters(r, ledger, part.dead_letter))
        m.extend(stuck_entries(r, part.stream, group, STUCK_MS if stuck_ms is None else stuck_ms))
    return rec


def _bucket_budget(meta: dict[str, str], where: str) -> list[str]:
    """The budget a bucket holds against what its grants committed (each bucket keeps
    within its own share, so the campaign keeps within the sum)."""
    found = budget_breaches(int(meta["budget"]) if meta.get("budget") else None,
                            int(meta.get("committed") or 0), int(meta.get(GRANTED) or 0),
                            int(meta.get("unit_cost") or 0))
    return [where + breach for breach in found]


def _holdout_check(r: redis.Redis, ledger: Ledger, parts: list[CampaignKeys], campaign_id: str,
                   group: str, rec: Reconciliation) -> list[str]:
    """Every control user claim.lua recorded (its hash and its stream are written together)
    is in the ledger once the holdout streams are carried; while they lag, it counts as lag."""
    recorded: set[str] = set()
    for part in parts:
        if not r.exists(part.holdout):
            continue
        lag = ledger_lag(r, part.holdout, group)
        if lag:
            rec.lag += lag
            return []
        recorded |= {str(u) for u in r.hkeys(part.control)}
    if not recorded:
        return []
    missing = recorded - ledger.control_users(campaign_id)
    return [f"holdout: {len(missing)} control users not in the ledger, e.g. "
            f"{sorted(missing)[0]}"] if missing else []


STUCK_MS = 60_000  # pending this long with its consumer: the ledger is not moving


def unrecorded_dead_letters(r: redis.Redis, ledger: Ledger, dead_stream: str) -> list[str]:
    """The dead-letter stream's entries whose claim the ledger lacks, described (an entry
    with no claim id is always one). A dead-lettered claim is acknowledged, so it is no
    lag: without this, a claim answered 201 could be missing from the ledger silently."""
    entries = [(str(i), text_map(as_map(f))) for i, f in _read_raw(r, dead_stream)]
    if not entries:
        return []
    ids = [f["claim_id"] for _, f in entries if f.get("claim_id")]
    present = ledger.present(ids)
    lacking = [(i, f) for i, f in entries if f.get("claim_id", "") not in present]
    if not lacking:
        return []
    entry_id, fields = lacking[0]
    return [f"{len(lacking)} dead-lettered entries are not in the ledger ({dead_stream}, "
            f"e.g. {fields.get('dead_entry_id', entry_id)}: {fields.get('dead_reason', '?')})"]


def stuck_entries(r: redis.Redis, stream: str, group: str, idle_ms: int) -> list[str]:
    """Entries delivered to the group and pending longer than idle_ms: a consumer holds
    them and does not get them written (lag that does not move is a mismatch)."""
    if not r.exists(stream):
        return []
    try:
        stuck = r.xpending_range(stream, group, min="-", max="+", count=1000, idle=idle_ms)
    except redis.ResponseError:  # NOGROUP: nothing delivered yet
        return []
    if not stuck:
        return []
    first = stuck[0]
    return [f"{len(stuck)} entries of {stream} pending over {idle_ms // 1000} s "
            f"(e.g. {first['message_id']!s}, delivered {int(first['times_delivered'])} times)"]


def _reconcile_bucket(ledger: Ledger, campaign_id: str, group: str, bucket: tuple[int, int],
                      snap: _Snapshot, blocked: dict[str, int], rec: Reconciliation
                      ) -> list[str]:
    """One bucket's stream against its counters, and the ledger's rows of its seqs."""
    b, n = bucket
    where = "stream" if n == 1 else f"stream (bucket {b})"
    granted = int(snap.meta[GRANTED])
    rec.granted += granted
    m = stream_count_breaches(snap.added, granted)
    records = snap.records
    rec.stream_length += len(records)
    rec.stream_added += snap.added
    bad = [x for x in records if isinstance(x, RecordError)]
    if bad:
        m.append(f"{where}: {len(bad)} undecodable entries, e.g. {bad[0]}")
    good = [x for x in records if isinstance(x, ClaimRecord)]
    m.extend(issuance_breaches(CampaignView.from_meta(snap.meta), good, blocked, where))
    expected = [bucket_seq(k, b, n) for k in range(granted - len(good) + 1, granted + 1)]
    if good and [x.seq for x in good] != expected:
        m.append(f"{where}: retained seqs are not consecutive up to granted")

    lag, after = lag_from(snap.groups, group, snap.added)
    if after is not None:  # counted in the snapshot's ids (the server could not say)
        lag += sum(1 for i in snap.entry_ids if entry_order(i) > entry_order(after))
    rec.lag += lag
    top = bucket_seq(granted, b, n) if granted else 0
    rows = ledger.summary(campaign_id, max_seq=top, bucket=bucket).rows
    rec.ledger_rows += rows
    m.extend(lost_breaches(rows, granted - lag, "ledger"))
    if lag == 0:
        in_ledger = ledger.claim_ids(campaign_id, max_seq=top, bucket=bucket)
        missing = {x.claim_id for x in good} - in_ledger
        if missing:
            m.append(f"ledger: {len(missing)} streamed claims missing, e.g. {sorted(missing)[0]}")
        if len(records) == snap.added:  # nothing trimmed: the sets must be equal
            extra = in_ledger - {x.claim_id for x in good}
            if extra:
                m.append(f"ledger: {len(extra)} claims not in the stream, e.g. {sorted(extra)[0]}")
    return m


_STEADY_READS = 20  # reads of a bucketed campaign's counters, looking for two alike


def _counter_check(r: redis.Redis, parts: list[CampaignKeys], view: CampaignView,
                   rec: Reconciliation) -> list[str]:
    """stock = granted + remaining (+ stock in transfer between buckets). One bucket: its
    snapshot's counters. Several: their sums, which only add up while nothing moves, so
    they are read until two reads in a row agree; under traffic that never settles, only
    what moving cannot break is judged (granted <= stock, no bucket below zero)."""
    if len(parts) == 1:
        rec.stock, rec.remaining = view.stock, view.remaining
        return counter_breaches(rec.stock, rec.remaining, rec.granted)
    before: list[Any] = []
    for _ in range(_STEADY_READS):
        pipe = r.pipeline(transaction=False)
        for part in parts:
            pipe.hmget(part.meta, ["remaining", GRANTED])
            pipe.hvals(part.transfers_out)
        now = pipe.execute()
        if now == before:
            break
        before = now
    counters, logs = now[0::2], now[1::2]
    granted = sum(int(g or 0) for _, g in counters)
    moving = sum(Transfer.unpack(e).amount for entries in logs for e in entries)
    remaining = None if view.stock is None else sum(int(x or 0) for x, _ in counters) + moving
    rec.stock, rec.remaining = view.stock, remaining
    if now == before:
        return counter_breaches(view.stock, remaining, granted)
    low = [x for x, _ in counters if x and int(x) < 0]
    return ([f"remaining is negative in a bucket ({low[0]})"] if low else []) + (
        [f"oversold: granted {granted} > stock {view.stock}"]
        if view.stock is not None and granted > view.stock else [])


def _redemption_check(r: redis.Redis, ledger: Ledger, slots: set[CouponSlotKeys],
                      campaign_id: str, group: str, rec: Reconciliation) -> list[str]:
    """Coupon events (the write-back's and the orders'): Redis's counts, then the ledger, then
    Redis again (summed over the hash slots the campaign's coupons live in: one per bucket)."""
    fields = [event_count_field(campaign_id, e) for e in ALL_EVENTS]

    def counts() -> EventCounts:
        total = dict.fromkeys(ALL_EVENTS, 0)
        for slot in slots:
            for name, n in zip(ALL_EVENTS, r.hmget(slot.event_counts, fields), strict=True):
                total[name] += int(n or 0)
        return EventCounts.of(total)

    before = counts()
    events_lag = sum(ledger_lag(r, slot.events, group) for slot in slots)
    held = ledger.redemptions(campaign_id)
    after = counts()
    rec.used, rec.locked = held.used, held.locked
    rec.lag += events_lag
    return redemption_breaches(before, after, held.events, held.used,
                               caught_up=rec.lag == 0, ledger_locked=held.locked)


def repair_campaign(r: redis.Redis, ledger: Ledger, keyspace: KeySpace, campaign_id: str) -> int:
    """Write every retained stream record of the campaign that the ledger lacks (the
    ledger's inserts are idempotent, so what it has is left as it is); returns how many
    were missing. For a ledger that missed entries another consumer acknowledged."""
    records = [x for part in campaign_parts(r, keyspace, campaign_id)
               for x in _read_all(r, part.stream) if isinstance(x, ClaimRecord)]
    return sum(ledger.write(records[i:i + PAGE]) for i in range(0, len(records), PAGE))


def _read_all(r: redis.Redis, stream: str) -> list[ClaimRecord | RecordError]:
    return decode_entries(_read_raw(r, stream))


def _read_raw(r: redis.Redis, stream: str) -> list[Any]:
    """Every entry of a stream, a page at a time."""
    out: list[Any] = []
    start: str | None = "-"
    while start is not None:
        page = r.xrange(stream, start, "+", count=PAGE) or []
        out += page
        start = next_page_start(page)
    return out


def campaign_parts(r: redis.Redis, keyspace: KeySpace, campaign_id: str) -> list[CampaignKeys]:
    """The keys of each of the campaign's buckets, as many as its own meta says (one for
    a campaign without buckets, or one gone from Redis)."""
    return keyspace.buckets(campaign_id,
                            int(r.hget(keyspace.campaign(campaign_id).meta, "buckets") or 1))


def wait_for_ledger(r: redis.Redis, keyspace: KeySpace, campaign_ids: list[str], timeout: float,
                    group: str = LEDGER_GROUP) -> int:
    """Poll until the ledger group has acknowledged everything (or the deadline); the lag left."""
    deadline = time.monotonic() + timeout
    parts = [part for c in campaign_ids for part in campaign_parts(r, keyspace, c)]
    streams = {s for part in parts for s in (part.stream, part.coupon_slot().events)}
    while True:
        lag = sum(ledger_lag(r, s, group) for s in streams)
        if lag == 0 or time.monotonic() >= deadline:
            return lag
        time.sleep(0.1)


def format_table(results: list[Reconciliation]) -> str:
    header = ("campaign", "stock", "granted", "remaining", "stream", "ledger", "used", "lag",
              "verdict")
    rows = [(x.campaign_id, str(x.stock), str(x.granted), str(x.remaining), str(x.stream_added),
             str(x.ledger_rows), str(x.used), str(x.lag), "ok" if x.ok else "MISMATCH")
            for x in results]
    lines = text_table(header, rows)
    for x in results:
        lines.extend(f"  {x.campaign_id}: {problem}" for problem in x.mismatches)
    return "\n".join(lines)


def run_reconcile(settings: Settings, campaign: str | None, wait_s: float, repair: bool,
                  group: str) -> int:
    """`flashclaim reconcile`: one campaign or all; exit 1 on any mismatch."""
    keyspace = KeySpace(settings.namespace)
    r = sync_client(redis_url_of(settings))
    ids = [campaign] if campaign else [str(i) for i in r.zrange(keyspace.registry, 0, -1)]
    if wait_s:
        wait_for_ledger(r, keyspace, ids, wait_s, group)
    ledger_db = open_ledger(settings.ledger_dsn, settings.data_dir)
    ledger_db.migrate()  # a ledger no consumer has written yet is empty, not an error
    if repair:
        for campaign_id in ids:
            written = repair_campaign(r, ledger_db, keyspace, campaign_id)
            print(f"{campaign_id}: {written} missing claims written to the ledger")
    results = [reconcile_campaign(r, ledger_db, keyspace, c, group) for c in ids]
    audit_missing = missing_audit(r, ledger_db, keyspace) if campaign is None else []
    ledger_db.close()
    print(format_table(results))
    if campaign is None:
        print(f"audit log: {len(audit_missing)} entries of the stream missing in the ledger"
              if audit_missing else "audit log: every entry of the stream is in the ledger")
    lag = sum(x.lag for x in results)
    if lag:
        print(f"the ledger lags by {lag} entries (pending or not yet delivered)")
    bad = [x for x in results if not x.ok]
    print("MISMATCH" if bad or audit_missing else "all consistent")
    return 1 if bad or audit_missing else 0


def missing_audit(r: redis.Redis, ledger: Ledger, keyspace: KeySpace) -> list[str]:
    """The audit stream's entries the ledger lacks (the stream is kept whole, so the two
    must hold the same entries once the ledger caught up)."""
    ids = [str(entry_id) for entry_id, _ in _read_raw(r, keyspace.audit)]
    present = ledger.audit_present(ids)
    return [i for i in ids if i not in present]
