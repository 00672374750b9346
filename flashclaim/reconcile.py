"""`flashclaim reconcile`: Redis, the claim stream and the SQL ledger must tell one story.

Per campaign it compares stock, remaining and granted in Redis; the stream (entries
ever added, the retained seq range, claim ids); and the ledger (rows, seqs 1..granted
with no gap or repeat, per-user counts within the limit). Entries the ledger has not
acknowledged yet are reported as lag, not as a mismatch; while there is lag, only the
checks that lag cannot explain are made.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from flashclaim.audit import PAGE, decode_entries
from flashclaim.keys import KeySpace
from flashclaim.ledger_db import Ledger, LedgerSummary
from flashclaim.stream import ClaimRecord, RecordError


@dataclass
class Reconciliation:
    campaign_id: str
    stock: int = 0
    remaining: int = 0
    granted: int = 0
    stream_added: int = 0
    stream_length: int = 0
    ledger_rows: int = 0
    lag: int = 0
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def ledger_lag(r: Any, stream: str, group: str) -> int:
    """Entries of the stream the group has not acknowledged: pending plus not yet delivered."""
    info = {str(g["name"]): g for g in (r.xinfo_groups(stream) if r.exists(stream) else [])}
    g = info.get(group)
    if g is None:
        return int(r.xinfo_stream(stream)["entries-added"]) if r.exists(stream) else 0
    undelivered = g.get("lag")
    if undelivered is None:  # unknown after some deletions: count by reading ids
        undelivered = len(r.xrange(stream, _after(str(g["last-delivered-id"])), "+"))
    return int(g["pending"]) + int(undelivered)


def reconcile_campaign(
    r: Any, ledger: Ledger, keyspace: KeySpace, campaign_id: str, group: str = "ledger"
) -> Reconciliation:
    keys = keyspace.campaign(campaign_id)
    rec = Reconciliation(campaign_id)
    meta = r.hgetall(keys.meta)
    if not meta:
        rec.mismatches.append("campaign not found in Redis")
        return rec
    rec.stock, rec.remaining, rec.granted = (int(meta[k]) for k in ("stock", "remaining",
                                                                      "granted"))
    limit = int(meta["per_user_limit"])
    m = rec.mismatches
    if rec.granted > rec.stock:
        m.append(f"oversold: granted {rec.granted} > stock {rec.stock}")
    if rec.stock != rec.granted + rec.remaining:
        m.append(f"Redis: stock {rec.stock} != granted {rec.granted} + remaining {rec.remaining}")

    records = _read_all(r, keys.stream)
    rec.stream_length = len(records)
    rec.stream_added = int(r.xinfo_stream(keys.stream)["entries-added"]) if records else 0
    if rec.stream_added != rec.granted:
        m.append(f"stream: {rec.stream_added} entries added for {rec.granted} grants")
    bad = [x for x in records if isinstance(x, RecordError)]
    if bad:
        m.append(f"stream: {len(bad)} undecodable entries, e.g. {bad[0]}")
    good = [x for x in records if isinstance(x, ClaimRecord)]
    seqs = [x.seq for x in good]
    if good and seqs != list(range(rec.granted - len(good) + 1, rec.granted + 1)):
        m.append("stream: retained seqs are not consecutive up to granted")

    rec.lag = ledger_lag(r, keys.stream, group)
    summary = ledger.summary(campaign_id)
    rec.ledger_rows = summary.rows
    m.extend(_ledger_mismatches(rec, summary, limit))
    if rec.lag == 0:
        in_ledger = ledger.claim_ids(campaign_id)
        missing = {x.claim_id for x in good} - in_ledger
        if missing:
            m.append(f"ledger: {len(missing)} streamed claims missing, e.g. {sorted(missing)[0]}")
        if rec.stream_length == rec.stream_added:  # nothing trimmed: the sets must be equal
            extra = in_ledger - {x.claim_id for x in good}
            if extra:
                m.append(f"ledger: {len(extra)} claims not in the stream, e.g. {sorted(extra)[0]}")
    return rec


def _ledger_mismatches(rec: Reconciliation, s: LedgerSummary, limit: int) -> list[str]:
    out = []
    if s.rows > rec.granted:
        out.append(f"ledger: {s.rows} rows for {rec.granted} grants")
    if s.rows + rec.lag < rec.granted:
        out.append(f"ledger: {rec.granted - s.rows - rec.lag} grants missing (beyond lag)")
    if s.max_per_user > limit:
        out.append(f"ledger: a user holds {s.max_per_user} claims, limit {limit}")
    # With rows == granted, seqs inside 1..granted and none repeated, they are exactly 1..granted.
    if s.rows and ((s.min_seq or 0) < 1 or (s.max_seq or 0) > rec.granted):
        out.append(f"ledger: seqs {s.min_seq}..{s.max_seq} outside 1..{rec.granted}")
    if s.distinct_seqs != s.rows:
        out.append("ledger: repeated seq")
    return out


def _read_all(r: Any, stream: str) -> list[ClaimRecord | RecordError]:
    out: list[ClaimRecord | RecordError] = []
    start = "-"
    while True:
        page = r.xrange(stream, start, "+", count=PAGE)
        out += decode_entries(page)
        if len(page) < PAGE:
            return out
        start = "(" + str(page[-1][0])


def _after(entry_id: str) -> str:
    return "(" + entry_id


def wait_for_ledger(r: Any, keyspace: KeySpace, campaign_ids: list[str], timeout: float,
                    group: str = "ledger") -> int:
    """Poll until the ledger group has acknowledged everything (or the deadline); the lag left."""
    deadline = time.monotonic() + timeout
    while True:
        lag = sum(ledger_lag(r, keyspace.campaign(c).stream, group) for c in campaign_ids)
        if lag == 0 or time.monotonic() >= deadline:
            return lag
        time.sleep(0.1)


def format_table(results: list[Reconciliation]) -> str:
    header = ("campaign", "stock", "granted", "remaining", "stream", "ledger", "lag", "verdict")
    rows = [header] + [
        (x.campaign_id, str(x.stock), str(x.granted), str(x.remaining), str(x.stream_added),
         str(x.ledger_rows), str(x.lag), "ok" if x.ok else "MISMATCH")
        for x in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    for x in results:
        lines.extend(f"  {x.campaign_id}: {problem}" for problem in x.mismatches)
    return "\n".join(lines)
