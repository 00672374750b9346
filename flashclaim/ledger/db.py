"""The SQL ledger: the system of record downstream teams trust.

One schema for SQLite (the default: a file in the data directory, WAL mode) and
PostgreSQL (FLASHCLAIM_LEDGER_DSN=postgresql://...). Writes are idempotent,
keyed on the business ids, so a redelivered stream entry is a no-op.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import orjson

from flashclaim.audit_log import AuditEntry
from flashclaim.checks.invariants import EventCounts, RecordSummary
from flashclaim.coupons import ALL_EVENTS, CouponEvent
from flashclaim.holdout import ControlDecision, Purchase
from flashclaim.runtime.private_files import private_dir, touch_private
from flashclaim.stream import ClaimRecord, RecordError


@dataclass(frozen=True, slots=True)
class Dialects:
    """A migration step written once per database, where their SQL differs."""

    sqlite: tuple[str, ...]
    postgres: tuple[str, ...]


COUPON_STATUSES = ("unused", "locked", "used", "refunded", "expired", "revoked")
_IN_LIST = "', '".join  # a CHECK's list of words (constants of this module only)
# The coupons and coupon_events tables as of version 4: SQLite cannot change a CHECK, so
# version 4 builds them anew and copies the rows (PostgreSQL swaps the constraint).
_COUPONS_V4 = f"""CREATE TABLE coupons_v4 (
            coupon_id      TEXT PRIMARY KEY,
            claim_id       TEXT NOT NULL REFERENCES claims (claim_id),
            campaign_id    TEXT NOT NULL,
            user_id        TEXT NOT NULL,
            type           TEXT NOT NULL,
            value          BIGINT,
            min_spend      BIGINT,
            percent_off    INTEGER,
            max_discount   BIGINT,
            currency       TEXT NOT NULL,
            valid_from_ms  BIGINT NOT NULL,
            valid_until_ms BIGINT NOT NULL,
            scope_json     TEXT NOT NULL,
            status         TEXT NOT NULL DEFAULT 'unused'
                           CHECK (status IN ('{_IN_LIST(COUPON_STATUSES)}')),
            order_id       TEXT,
            discount       BIGINT,
            used_at_ms     BIGINT,
            event_ms       BIGINT NOT NULL DEFAULT 0,
            event_seq      BIGINT NOT NULL DEFAULT 0,
            use_json       TEXT NOT NULL DEFAULT '{{}}',
            hold_until_ms  BIGINT,
            order_gmv      BIGINT
        )"""
_COUPONS_V3_COLUMNS = ("coupon_id, claim_id, campaign_id, user_id, type, value, min_spend,"
                       " percent_off, max_discount, currency, valid_from_ms, valid_until_ms,"
                       " scope_json, status, order_id, discount, used_at_ms, event_ms,"
                       " event_seq")
_EVENTS_V4 = f"""CREATE TABLE coupon_events_v4 (
            entry_id      TEXT NOT NULL,
            coupon_id     TEXT NOT NULL,
            event         TEXT NOT NULL CHECK (event IN ('{_IN_LIST(ALL_EVENTS)}')),
            campaign_id   TEXT NOT NULL,
            user_id       TEXT NOT NULL,
            order_id      TEXT NOT NULL,
            discount      BIGINT NOT NULL,
            at_ms         BIGINT NOT NULL,
            event_ms      BIGINT NOT NULL,
            event_seq     BIGINT NOT NULL,
            hold_until_ms BIGINT NOT NULL DEFAULT 0,
            gmv           BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (coupon_id, event_ms, event_seq)
        )"""
_EVENTS_V3_COLUMNS = ("entry_id, coupon_id, event, campaign_id, user_id, order_id, discount,"
                      " at_ms, event_ms, event_seq")
_INDEXES_V4 = (
    "CREATE INDEX IF NOT EXISTS coupons_by_user ON coupons (user_id, status)",
    "CREATE INDEX IF NOT EXISTS coupons_by_campaign ON coupons (campaign_id, status)",
    "CREATE INDEX IF NOT EXISTS coupons_by_expiry ON coupons (status, valid_until_ms)",
    "CREATE INDEX IF NOT EXISTS coupon_events_by_campaign ON coupon_events (campaign_id)",
    "CREATE INDEX IF NOT EXISTS coupons_by_order ON coupons (order_id)",
)

# Each migration: (version, statements). The consumer applies the missing ones on start.
MIGRATIONS: list[tuple[int, list[str | Dialects]]] = [
    (1, [
        """CREATE TABLE IF NOT EXISTS claims (
            claim_id        TEXT PRIMARY KEY,
            campaign_id     TEXT NOT NULL,
            user_id         TEXT NOT NULL,
            seq             BIGINT NOT NULL,
            claimed_at_ms   BIGINT NOT NULL,
            channel         TEXT,
            idempotency_key TEXT,
            stream_entry_id TEXT NOT NULL,
            claim_json      TEXT NOT NULL,
            recorded_at_ms  BIGINT NOT NULL,
            UNIQUE (campaign_id, seq)
        )""",
        "CREATE INDEX IF NOT EXISTS claims_by_user ON claims (campaign_id, user_id)",
        """CREATE TABLE IF NOT EXISTS coupons (
            coupon_id      TEXT PRIMARY KEY,
            claim_id       TEXT NOT NULL REFERENCES claims (claim_id),
            campaign_id    TEXT NOT NULL,
            user_id        TEXT NOT NULL,
            type           TEXT NOT NULL,
            value          BIGINT,
            min_spend      BIGINT,
            percent_off    INTEGER,
            max_discount   BIGINT,
            currency       TEXT NOT NULL,
            valid_from_ms  BIGINT NOT NULL,
            valid_until_ms BIGINT NOT NULL,
            scope_json     TEXT NOT NULL,
            status         TEXT NOT NULL DEFAULT 'unused'
                           CHECK (status IN ('unused', 'used', 'expired', 'revoked'))
        )""",
        "CREATE INDEX IF NOT EXISTS coupons_by_user ON coupons (user_id, status)",
    ]),
    (2, [  # how each coupon was issued, and the claimant's segments (stream schema v2)
        "ALTER TABLE claims ADD COLUMN source TEXT NOT NULL DEFAULT 'grab'",
        "ALTER TABLE claims ADD COLUMN source_ref TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE claims ADD COLUMN tags TEXT NOT NULL DEFAULT ''",
    ]),
    (3, [  # redemption write-back: coupon events from the slots' coupon-event streams
        "ALTER TABLE coupons ADD COLUMN order_id TEXT",
        "ALTER TABLE coupons ADD COLUMN discount BIGINT",
        "ALTER TABLE coupons ADD COLUMN used_at_ms BIGINT",
        "ALTER TABLE coupons ADD COLUMN event_ms BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE coupons ADD COLUMN event_seq BIGINT NOT NULL DEFAULT 0",
        """CREATE TABLE IF NOT EXISTS coupon_events (
            entry_id    TEXT NOT NULL,
            coupon_id   TEXT NOT NULL,
            event       TEXT NOT NULL CHECK (event IN ('redeemed', 'released')),
            campaign_id TEXT NOT NULL,
            user_id     TEXT NOT NULL,
            order_id    TEXT NOT NULL,
            discount    BIGINT NOT NULL,
            at_ms       BIGINT NOT NULL,
            event_ms    BIGINT NOT NULL,
            event_seq   BIGINT NOT NULL,
            PRIMARY KEY (coupon_id, event_ms, event_seq)
        )""",
        "CREATE INDEX IF NOT EXISTS coupon_events_by_campaign ON coupon_events (campaign_id)",
        "CREATE INDEX IF NOT EXISTS coupons_by_campaign ON coupons (campaign_id, status)",
        # the expiry sweep and `flashclaim expiring` read unused coupons by valid_until
        "CREATE INDEX IF NOT EXISTS coupons_by_expiry ON coupons (status, valid_until_ms)",
    ]),
    (4, [  # the use side: rules of use, locks, orders' GMV, refunds (docs/checkout.md)
        Dialects(sqlite=(
            _COUPONS_V4,
            f"INSERT INTO coupons_v4 ({_COUPONS_V3_COLUMNS}) SELECT {_COUPONS_V3_COLUMNS}"
            " FROM coupons",
            "DROP TABLE coupons",
            "ALTER TABLE coupons_v4 RENAME TO coupons",
            _EVENTS_V4,
            f"INSERT INTO coupon_events_v4 ({_EVENTS_V3_COLUMNS}) SELECT {_EVENTS_V3_COLUMNS}"
            " FROM coupon_events",
            "DROP TABLE coupon_events",
            "ALTER TABLE coupon_events_v4 RENAME TO coupon_events",
        ), postgres=(
            "ALTER TABLE coupons DROP CONSTRAINT coupons_status_check",
            f"ALTER TABLE coupons ADD CONSTRAINT coupons_status_check"
            f" CHECK (status IN ('{_IN_LIST(COUPON_STATUSES)}'))",
            "ALTER TABLE coupons ADD COLUMN use_json TEXT NOT NULL DEFAULT '{}'",
            "ALTER TABLE coupons ADD COLUMN hold_until_ms BIGINT",
            "ALTER TABLE coupons ADD COLUMN order_gmv BIGINT",
            "ALTER TABLE coupon_events DROP CONSTRAINT coupon_events_event_check",
            f"ALTER TABLE coupon_events ADD CONSTRAINT coupon_events_event_check"
            f" CHECK (event IN ('{_IN_LIST(ALL_EVENTS)}'))",
            "ALTER TABLE coupon_events ADD COLUMN hold_until_ms BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE coupon_events ADD COLUMN gmv BIGINT NOT NULL DEFAULT 0",
        )),
        *_INDEXES_V4,
    ]),
    (5, [  # the audit log of the admin API and the CLI (flashclaim/audit_log.py)
        """CREATE TABLE IF NOT EXISTS audit_log (
            entry_id     TEXT PRIMARY KEY,
            at_ms        BIGINT NOT NULL,
            actor        TEXT NOT NULL,
            role         TEXT NOT NULL,
            method       TEXT NOT NULL,
            path         TEXT NOT NULL,
            campaign_id  TEXT NOT NULL,
            body         TEXT NOT NULL,
            status       INTEGER NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS audit_by_campaign ON audit_log (campaign_id, at_ms)",
        "CREATE INDEX IF NOT EXISTS audit_by_actor ON audit_log (actor, at_ms)",
    ]),
    (6, [  # A/B holdouts: the control groups, and the purchases the uplift compares
        """CREATE TABLE IF NOT EXISTS holdout_users (
            campaign_id  TEXT NOT NULL,
            user_id      TEXT NOT NULL,
            at_ms        BIGINT NOT NULL,
            source       TEXT NOT NULL,
            PRIMARY KEY (campaign_id, user_id)
        )""",
        """CREATE TABLE IF NOT EXISTS purchases (
            event_id     TEXT PRIMARY KEY,
            user_id      TEXT NOT NULL,
            amount       BIGINT NOT NULL,
            order_id     TEXT NOT NULL,
            at_ms        BIGINT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS purchases_by_user ON purchases (user_id, at_ms)",
    ]),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]
_UNBOUNDED = 2**62  # a seq bound above any seq (BIGINT-safe)


# The rows of one campaign up to a seq, of one of its buckets (bucket b of n holds the
# seqs b+1, b+1+n, ...; one bucket: every seq).
# (Integer division, as "%" would need escaping in one driver's placeholder style.)
_SEQ_BOUND = "campaign_id = ? AND seq <= ? AND (seq - 1 - ?) / ? * ? = seq - 1 - ?"


def _seq_bound(campaign_id: str, max_seq: int | None, bucket: tuple[int, int]
               ) -> tuple[str, int, int, int, int, int]:
    """Parameters of _SEQ_BOUND: every row when max_seq is None; bucket is (b, n)."""
    b, n = bucket
    return campaign_id, _UNBOUNDED if max_seq is None else max_seq, b, n, n, b

_CLAIM_COLUMNS = ("claim_id", "campaign_id", "user_id", "seq", "claimed_at_ms", "channel",
                  "idempotency_key", "stream_entry_id", "claim_json", "recorded_at_ms", "source",
                  "source_ref", "tags")
_EVENT_COLUMNS = ("entry_id", "coupon_id", "event", "campaign_id", "user_id", "order_id",
                  "discount", "at_ms", "event_ms", "event_seq", "hold_until_ms", "gmv")
_IN_CHUNK = 500  # ids per IN (...) list
_COUPON_COLUMNS = ("coupon_id", "claim_id", "campaign_id", "user_id", "type", "value",
                   "min_spend", "percent_off", "max_discount", "currency", "valid_from_ms",
                   "valid_until_ms", "scope_json", "use_json")


class LedgerUnavailable(RuntimeError):
    """The database cannot be reached right now (wait and retry; nothing is wrong with the data)."""


@dataclass(frozen=True, slots=True)
class LedgerSummary:
    """What the ledger holds for one campaign (for reconcile)."""

    rows: int
    distinct_users: int
    distinct_seqs: int
    min_seq: int | None
    max_seq: int | None
    max_per_user: int
    coupons: int

    @property
    def records(self) -> RecordSummary:
        """In the terms the promises are judged in (claim_id is the key: never repeated)."""
        return RecordSummary(rows=self.rows, distinct_claim_ids=self.rows,
                             distinct_seqs=self.distinct_seqs, min_seq=self.min_seq,
                             max_seq=self.max_seq, max_per_user=self.max_per_user)


@dataclass(frozen=True, slots=True)
class Redemptions:
    """One campaign's coupon events and uses as the ledger holds them."""

    events: EventCounts  # each kind of event recorded
    used: int  # coupons whose status is used now
    locked: int  # coupons an order holds now


def claim_row(record: ClaimRecord, recorded_at_ms: int) -> tuple[Any, ...]:
    return (record.claim_id, record.campaign_id, record.user_id, record.seq, record.claimed_at,
            record.channel, record.idempotency_key, record.entry_id,
            orjson.dumps(record.claim).decode(), recorded_at_ms, record.source, record.source_ref,
            ",".join(record.tags))


def coupon_rows(record: ClaimRecord) -> list[tuple[Any, ...]]:
    """One row per granted coupon; RecordError when the claim's coupons are malformed."""
    coupons = record.claim.get("coupons")
    if not isinstance(coupons, list) or not coupons:
        raise RecordError(f"entry {record.entry_id}: claim has no coupons")
    rows = []
    for c in coupons:
        try:
            rows.append((
                str(c["coupon_id"]), record.claim_id, record.campaign_id, record.user_id,
                str(c["type"]), c.get("value", c.get("cost")),  # a gift's value: its cost
                c.get("min_spend"), c.get("percent_off"),
                c.get("max_discount"), str(c["currency"]), int(c["valid_from"]),
                int(c["valid_until"]), orjson.dumps(c.get("scope", {})).decode(),
                orjson.dumps({k: c[k] for k in USE_TERMS if k in c}).decode(),
            ))
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordError(f"entry {record.entry_id}: malformed coupon: {exc!r}") from None
    return rows


_T = TypeVar("_T")
# A coupon's rules of use beyond its scope, kept together (use_json) when not the default.
USE_TERMS = ("use_channels", "stacking", "use_windows", "timezone", "sku", "fulfilment", "price")


class Cursor(Protocol):
    """The part of a DB-API cursor the ledger uses (sqlite3 and psycopg both fit)."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...
    def executemany(self, sql: str, params: Iterable[Sequence[Any]], /) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def close(self) -> None: ...
    @property
    def rowcount(self) -> int: ...
    @property
    def description(self) -> Any: ...


class Connection(Protocol):
    def cursor(self) -> Any: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


class Ledger:
    """A DB-API connection with the ledger's operations. Use open_ledger() to get one."""

    def __init__(
        self, connect: Callable[[], Connection], placeholder: str,
        is_unavailable: Callable[[Exception], bool],
        data_errors: tuple[type[Exception], ...], lock_statement: str | None,
    ) -> None:
        self._connect = connect
        self._ph = placeholder
        self._is_unavailable = is_unavailable
        self.data_errors: tuple[type[Exception], ...] = (RecordError, OverflowError, *data_errors)
        self._lock = lock_statement
        self._conn: Connection | None = None

    def _connection(self) -> Connection:
        if self._conn is None:
            try:
                self._conn = self._connect()
            except Exception as exc:
                if self._is_unavailable(exc):
                    raise LedgerUnavailable(str(exc)) from exc
                raise
        return self._conn

    def sql(self, text: str) -> str:
        """A statement written with ? placeholders, in this database's style."""
        return text.replace("?", self._ph)

    def _in_dialect(self, step: str | Dialects) -> tuple[str, ...]:
        if isinstance(step, str):
            return (step,)
        return step.postgres if self._ph == "%s" else step.sqlite

    def run(self, work: Callable[[Cursor], _T]) -> _T:
        """Run work(cursor) in one transaction (for readers outside this module)."""
        return self._run(work)

    def _run(self, work: Callable[[Cursor], _T]) -> _T:
        """Run work(cursor) in one transaction; a lost connection becomes LedgerUnavailable."""
        conn = self._connection()
        try:
            cur = conn.cursor()
            try:
                result = work(cur)
            finally:
                cur.close()
            conn.commit()
            return result
        except Exception as exc:
            if self._is_unavailable(exc):
                self.close()  # reconnect next time
                raise LedgerUnavailable(str(exc)) from exc
            conn.rollback()
            raise

    def migrate(self) -> int:
        """Create or upgrade the schema; returns the version now in place. A schema already
        current is seen without taking the lock (consumers starting together do not queue)."""
        if self._current_version() >= SCHEMA_VERSION:
            return SCHEMA_VERSION

        def work(cur: Cursor) -> int:
            if self._lock:
                cur.execute(self._lock)  # two consumers starting together migrate once
            cur.execute("CREATE TABLE IF NOT EXISTS ledger_schema (version INTEGER NOT NULL)")
            cur.execute("SELECT MAX(version) FROM ledger_schema")
            current = cur.fetchone()[0] or 0
            for version, statements in MIGRATIONS:
                if version > current:
                    for step in statements:
                        for statement in self._in_dialect(step):
                            cur.execute(statement)
                    cur.execute(self.sql("INSERT INTO ledger_schema (version) VALUES (?)"),
                                (version,))
                    current = version
            return int(current)
        return self._run(work)

    def _current_version(self) -> int:
        """The schema version in place, without a lock; 0 when there is no schema yet."""
        def read(cur: Cursor) -> int:
            cur.execute("SELECT MAX(version) FROM ledger_schema")
            return int(cur.fetchone()[0] or 0)
        try:
            return self._run(read)
        except LedgerUnavailable:
            raise
        except Exception:  # no ledger_schema table: a new database
            return 0

    def write(self, records: list[ClaimRecord]) -> int:
        """Insert the claims and their coupons in one transaction; returns the new claims.

        A claim already present (a redelivery) is skipped by ON CONFLICT DO NOTHING.
        """
        now = int(time.time() * 1000)
        claims = [claim_row(r, now) for r in records]
        coupons = [row for r in records for row in coupon_rows(r)]

        def work(cur: Cursor) -> int:
            inserted = 0
            for row in claims:  # one by one: rowcount tells new from redelivered
                cur.execute(self._insert("claims", _CLAIM_COLUMNS), row)
                inserted += max(cur.rowcount, 0)
            cur.executemany(self._insert("coupons", _COUPON_COLUMNS), coupons)
            # a coupon used before its claim reached the ledger (another stream): its events
            # are waiting in coupon_events
            self._apply_latest(cur, [str(c[0]) for c in coupons])
            return inserted
        return self._run(work)

    def apply_events(self, events: list[CouponEvent]) -> int:
        """Record coupon events and bring each coupon's status to its latest event, in one
        transaction. Idempotent and order-safe: an event is stored once (keyed by coupon and
        stream order), and a coupon only moves to an event later than the one it shows."""
        def work(cur: Cursor) -> int:
            stored = 0
            for e in events:
                ms, seq = e.order
                cur.execute(self._insert("coupon_events", _EVENT_COLUMNS), (
                    e.entry_id, e.coupon_id, e.event, e.campaign_id, e.user_id, e.order_id,
                    e.discount, e.at, ms, seq, e.hold_until, e.gmv))
                stored += max(cur.rowcount, 0)
            self._apply_latest(cur, sorted({e.coupon_id for e in events}))
            return stored
        return self._run(work)

    def _apply_latest(self, cur: Cursor, coupon_ids: list[str]) -> None:
        for start in range(0, len(coupon_ids), _IN_CHUNK):
            chunk = coupon_ids[start:start + _IN_CHUNK]
            cur.execute(self.sql(
                "SELECT coupon_id, event, order_id, discount, at_ms, event_ms, event_seq,"
                " hold_until_ms, gmv"
                f" FROM coupon_events WHERE coupon_id IN ({', '.join('?' * len(chunk))})"),
                chunk)
            latest: dict[str, tuple[Any, ...]] = {}
            for row in cur.fetchall():
                if row[0] not in latest or (row[5], row[6]) > (latest[row[0]][5],
                                                               latest[row[0]][6]):
                    latest[row[0]] = tuple(row)
            for row in latest.values():
                self._apply_event(cur, *row)

    def _apply_event(self, cur: Cursor, coupon_id: str, event: str, order_id: str,
                     discount: int, at_ms: int, ms: int, seq: int, hold_until: int,
                     gmv: int) -> None:
        """A coupon's state after its latest event (only if later than the one it shows):
        locked (by the order, until the hold's end); used after a redeem or a confirm (with
        the order's GMV); unused after a release or an unlock, and after a refund while
        still valid, else refunded."""
        kept = event not in ("released", "unlocked")  # the order and discount stay shown
        status = {"locked": "'locked'", "redeemed": "'used'", "confirmed": "'used'",
                  "released": "'unused'", "unlocked": "'unused'",
                  "refunded": "CASE WHEN valid_until_ms > ? THEN 'unused' ELSE 'refunded' END"}
        params: list[Any] = [at_ms] if event == "refunded" else []
        params += [order_id if kept else None, discount if kept else None,
                   at_ms if event in ("redeemed", "confirmed", "refunded") else None,
                   hold_until if event == "locked" else None]
        # the order's GMV: set by the confirm, kept by a refund, gone otherwise
        gmv_set = {"confirmed": "?", "refunded": "order_gmv"}.get(event, "NULL")
        if event == "confirmed":
            params.append(gmv)
        params += [ms, seq, coupon_id, ms, ms, seq]
        cur.execute(self.sql(
            f"UPDATE coupons SET status = {status[event]}, order_id = ?, discount = ?,"
            f" used_at_ms = ?, hold_until_ms = ?, order_gmv = {gmv_set}, event_ms = ?,"
            " event_seq = ?"
            " WHERE coupon_id = ? AND (event_ms < ? OR (event_ms = ? AND event_seq < ?))"),
            params)

    def expire_due(self, now_ms: int, limit: int = 10_000,
                   before_commit: Callable[[list[ExpiredCoupon]], None] | None = None) -> int:
        """Mark up to `limit` unused coupons past valid_until as expired; returns how many.
        Idempotent (an expired coupon is not unused), and never touches a used one: a
        redemption wins over expiry whatever order the two reach the ledger in.
        `before_commit` is told the coupons expired, inside the transaction (the outbox is
        written before the commit: a crash between the two tells twice, never not at all)."""
        def work(cur: Cursor) -> int:
            cur.execute(self.sql(
                "UPDATE coupons SET status = 'expired' WHERE coupon_id IN (SELECT coupon_id"
                " FROM coupons WHERE status = 'unused' AND valid_until_ms <= ? LIMIT ?)"
                " AND status = 'unused'"
                " RETURNING coupon_id, campaign_id, user_id, valid_until_ms"), (now_ms, limit))
            rows = [ExpiredCoupon(str(c), str(k), str(u), int(v)) for c, k, u, v in cur.fetchall()]
            if before_commit is not None and rows:
                before_commit(rows)
            return len(rows)
        return self._run(work)

    def expiring(self, after: tuple[int, str], until_ms: int, limit: int
                 ) -> list[ExpiredCoupon]:
        """Unused coupons whose valid_until is after `after` ((ms, coupon id), keyset order)
        and at most `until_ms`: the coupons a reminder is due for, oldest end first."""
        def work(cur: Cursor) -> list[ExpiredCoupon]:
            cur.execute(self.sql(
                "SELECT coupon_id, campaign_id, user_id, valid_until_ms FROM coupons"
                " WHERE status = 'unused' AND valid_until_ms <= ?"
                " AND (valid_until_ms > ? OR (valid_until_ms = ? AND coupon_id > ?))"
                " ORDER BY valid_until_ms, coupon_id LIMIT ?"),
                (until_ms, after[0], after[0], after[1], limit))
            return [ExpiredCoupon(str(c), str(k), str(u), int(v)) for c, k, u, v in cur.fetchall()]
        return self._run(work)

    def redemptions(self, campaign_id: str) -> Redemptions:
        """The campaign's coupon events, and its used and locked coupons, as the ledger has
        them."""
        def work(cur: Cursor) -> Redemptions:
            cur.execute(self.sql(
                "SELECT event, COUNT(*) FROM coupon_events WHERE campaign_id = ? GROUP BY event"),
                (campaign_id,))
            counts = {str(e): int(n) for e, n in cur.fetchall()}
            cur.execute(self.sql(
                "SELECT status, COUNT(*) FROM coupons WHERE campaign_id = ?"
                " AND status IN ('used', 'locked') GROUP BY status"), (campaign_id,))
            now = {str(st): int(n) for st, n in cur.fetchall()}
            return Redemptions(EventCounts.of(counts), now.get("used", 0), now.get("locked", 0))
        return self._run(work)

    def _insert(self, table: str, columns: tuple[str, ...]) -> str:
        marks = ", ".join("?" * len(columns))
        return self.sql(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT DO NOTHING"
        )

    def summary(self, campaign_id: str, max_seq: int | None = None,
                bucket: tuple[int, int] = (0, 1)) -> LedgerSummary:
        """The campaign's claims; with max_seq, only those up to that seq (the grants a
        reconcile snapshot saw: later ones may already be here, and are not compared);
        with bucket (b, n), only bucket b's."""
        bound = _seq_bound(campaign_id, max_seq, bucket)

        def work(cur: Cursor) -> LedgerSummary:
            cur.execute(self.sql(
                "SELECT COUNT(*), COUNT(DISTINCT user_id), COUNT(DISTINCT seq), MIN(seq), MAX(seq)"
                f" FROM claims WHERE {_SEQ_BOUND}"), bound)
            rows, users, seqs, lo, hi = cur.fetchone()
            cur.execute(self.sql(
                "SELECT COALESCE(MAX(n), 0) FROM (SELECT COUNT(*) AS n FROM claims"
                f" WHERE {_SEQ_BOUND} GROUP BY user_id) AS per_user"), bound)
            max_per_user = cur.fetchone()[0]
            cur.execute(self.sql(
                "SELECT COUNT(*) FROM coupons WHERE claim_id IN"
                f" (SELECT claim_id FROM claims WHERE {_SEQ_BOUND})"), bound)
            coupons = cur.fetchone()[0]
            return LedgerSummary(int(rows), int(users), int(seqs), lo, hi, int(max_per_user),
                                 int(coupons))
        return self._run(work)

    def claim_ids(self, campaign_id: str, max_seq: int | None = None,
                  bucket: tuple[int, int] = (0, 1)) -> set[str]:
        bound = _seq_bound(campaign_id, max_seq, bucket)

        def work(cur: Cursor) -> set[str]:
            cur.execute(self.sql(f"SELECT claim_id FROM claims WHERE {_SEQ_BOUND}"), bound)
            return {str(row[0]) for row in cur.fetchall()}
        return self._run(work)

    def present(self, claim_ids: list[str]) -> set[str]:
        """Which of these claims the ledger holds."""
        return self._held("claims", "claim_id", claim_ids)

    def _held(self, table: str, key: str, ids: list[str]) -> set[str]:
        """Which of these ids the table holds (asked a chunk at a time)."""
        def work(cur: Cursor) -> set[str]:
            found: set[str] = set()
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start:start + _IN_CHUNK]
                cur.execute(self.sql(f"SELECT {key} FROM {table} WHERE {key} IN"
                                     f" ({', '.join('?' * len(chunk))})"), chunk)
                found |= {str(row[0]) for row in cur.fetchall()}
            return found
        return self._run(work) if ids else set()

    def write_audit(self, entries: list[tuple[str, AuditEntry]]) -> int:
        """Audit entries, by their stream entry id, in one transaction: idempotent (a
        redelivery is a no-op); returns how many were given."""
        columns = ("entry_id", "at_ms", "actor", "role", "method", "path", "campaign_id",
                   "body", "status")
        rows = [(i, e.at, e.actor, e.role, e.method, e.path, e.campaign_id, e.body, e.status)
                for i, e in entries]

        def work(cur: Cursor) -> int:
            cur.executemany(self._insert("audit_log", columns), rows)
            return len(rows)
        return self._run(work) if rows else 0

    def write_control(self, decisions: list[ControlDecision]) -> int:
        """A holdout's control users (idempotent: the first decision of each is kept)."""
        rows = [(d.campaign_id, d.user_id, d.at, d.source) for d in decisions]

        def work(cur: Cursor) -> int:
            cur.executemany(self._insert("holdout_users",
                                         ("campaign_id", "user_id", "at_ms", "source")), rows)
            return len(rows)
        return self._run(work) if rows else 0

    def control_users(self, campaign_id: str) -> set[str]:
        """A holdout campaign's control users the ledger holds."""
        def work(cur: Cursor) -> set[str]:
            cur.execute(self.sql("SELECT user_id FROM holdout_users WHERE campaign_id = ?"),
                        [campaign_id])
            return {str(row[0]) for row in cur.fetchall()}
        return self._run(work)

    def write_purchases(self, purchases: list[Purchase]) -> int:
        """Paid orders told by events (idempotent per event id)."""
        rows = [(p.event_id, p.user_id, p.amount, p.order_id, p.at) for p in purchases]

        def work(cur: Cursor) -> int:
            cur.executemany(self._insert("purchases", ("event_id", "user_id", "amount",
                                                       "order_id", "at_ms")), rows)
            return len(rows)
        return self._run(work) if rows else 0

    def audit_present(self, entry_ids: list[str]) -> set[str]:
        """Which of these audit entries the ledger holds."""
        return self._held("audit_log", "entry_id", entry_ids)

    def granted_at(self, coupon_ids: list[str]) -> dict[str, int]:
        """When each of these coupons was granted (epoch ms), for those the ledger holds."""
        def work(cur: Cursor) -> dict[str, int]:
            found: dict[str, int] = {}
            for start in range(0, len(coupon_ids), _IN_CHUNK):
                chunk = coupon_ids[start:start + _IN_CHUNK]
                cur.execute(self.sql(
                    "SELECT c.coupon_id, k.claimed_at_ms FROM coupons c JOIN claims k"
                    " ON k.claim_id = c.claim_id WHERE c.coupon_id IN"
                    f" ({', '.join('?' * len(chunk))})"), chunk)
                found.update((str(row[0]), int(row[1])) for row in cur.fetchall())
            return found
        return self._run(work) if coupon_ids else {}

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Any statement in its own transaction (for tools and tests)."""
        def work(cur: Cursor) -> list[tuple[Any, ...]]:
            cur.execute(self.sql(sql), params)
            return list(cur.fetchall()) if cur.description else []
        return self._run(work)

    def close(self) -> None:
        if self._conn is not None:
            # closing a broken connection may fail; it is gone either way
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None


@dataclass(frozen=True, slots=True)
class ExpiredCoupon:
    """A coupon at (or near) its end: what coupon.expired and coupon.expiring tell."""

    coupon_id: str
    campaign_id: str
    user_id: str
    valid_until: int


class LedgerMissing(RuntimeError):
    """A command that only reads the ledger found no SQLite ledger file to read."""


def open_ledger(dsn: str | None, data_dir: Path, *, must_exist: bool = False) -> Ledger:
    """PostgreSQL for postgresql:// or postgres:// DSNs; otherwise SQLite (sqlite:///path, or
    <data dir>/ledger.sqlite3 when no DSN is given). must_exist: a reader's call, which
    must not create an empty SQLite ledger where there is none (LedgerMissing)."""
    if dsn and dsn.startswith(("postgresql://", "postgres://")):
        import psycopg

        return Ledger(lambda: psycopg.connect(dsn, connect_timeout=5), "%s",
                      lambda exc: isinstance(exc, psycopg.OperationalError),
                      (psycopg.DataError, psycopg.IntegrityError),
                      "SELECT pg_advisory_xact_lock(72161)")
    if dsn and not dsn.startswith("sqlite:///"):  # Settings refuses it first; a direct call too
        raise ValueError("FLASHCLAIM_LEDGER_DSN must start with postgresql:// or sqlite:///")
    path = Path(dsn.removeprefix("sqlite:///")) if dsn else data_dir / "ledger.sqlite3"
    if must_exist and not path.is_file():
        raise LedgerMissing(f"no ledger at {path}: run `flashclaim ledger` there first, or set "
                            "FLASHCLAIM_LEDGER_DSN")
    private_dir(path.parent)
    touch_private(path)  # SQLite gives its -wal and -shm files the database's mode

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, timeout=10)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # a commit is on disk before we XACK
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    # BEGIN IMMEDIATE takes the write lock first: two consumers starting together migrate
    # once (the second sees the first's version), as pg_advisory_xact_lock does there.
    return Ledger(connect, "?", _sqlite_unavailable,
                  (sqlite3.DataError, sqlite3.IntegrityError), "BEGIN IMMEDIATE")


def _sqlite_unavailable(exc: Exception) -> bool:
    """Busy, locked or unreadable: worth waiting for. (A missing table is not.)"""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and any(
        word in text for word in ("locked", "busy", "unable to open", "disk i/o"))
