"""`flashclaim expiring`: who holds unused coupons that expire soon (for reminders).

Read from the ledger, in pages (keyset on valid_until, coupon id), so a million rows
stream out without being held in memory. "Now" is this machine's clock.
"""

from __future__ import annotations

import csv
import re
import sys
import time
from collections.abc import Iterator
from typing import TextIO

from flashclaim.ledger.db import Cursor, Ledger, open_ledger
from flashclaim.settings import Settings
from flashclaim.tables import text_table
from flashclaim.timefmt import to_rfc3339

_WITHIN_RE = re.compile(r"([1-9][0-9]{0,4})([smhd])")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
MAX_WITHIN_MS = 366 * 86_400_000
PAGE = 5000
COLUMNS = ("user_id", "coupon_id", "campaign_id", "valid_until")


def parse_within(text: str) -> int:
    """'3d', '12h', '90m', '45s' in milliseconds (at most a year); ValueError otherwise."""
    match = _WITHIN_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 3d, 12h, 90m or 45s")
    ms = int(match[1]) * _UNIT_MS[match[2]]
    if ms > MAX_WITHIN_MS:
        raise ValueError(f"{text!r} is longer than a year")
    return ms


def expiring(ledger: Ledger, now_ms: int, within_ms: int, campaign_id: str | None = None
             ) -> Iterator[tuple[str, str, str, int]]:
    """(user, coupon, campaign, valid_until ms) of unused coupons expiring in
    (now, now + within], soonest first."""
    after: tuple[int, str] = (now_ms, "")
    until = now_ms + within_ms
    while True:
        where = ("status = 'unused' AND valid_until_ms <= ? AND"
                 " (valid_until_ms > ? OR (valid_until_ms = ? AND coupon_id > ?))")
        params: list[object] = [until, after[0], after[0], after[1]]
        if campaign_id is not None:
            where += " AND campaign_id = ?"
            params.append(campaign_id)
        params.append(PAGE)
        sql = ledger.sql(f"SELECT user_id, coupon_id, campaign_id, valid_until_ms FROM coupons"
                         f" WHERE {where} ORDER BY valid_until_ms, coupon_id LIMIT ?")

        def page(cur: Cursor, sql: str = sql, params: list[object] = params
                 ) -> list[tuple[str, str, str, int]]:
            cur.execute(sql, params)
            return [(str(u), str(c), str(k), int(v)) for u, c, k, v in cur.fetchall()]
        rows = ledger.run(page)
        yield from rows
        if len(rows) < PAGE:
            return
        after = (rows[-1][3], rows[-1][1])


def write_report(rows: Iterator[tuple[str, str, str, int]], fmt: str,
                 out: TextIO = sys.stdout) -> int:
    """CSV (a header, then a row per coupon) or a table; returns the rows written."""
    count = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for user, coupon, campaign, until in rows:
            writer.writerow((user, coupon, campaign, to_rfc3339(until)))
            count += 1
        return count
    table = [(u, c, k, to_rfc3339(v)) for u, c, k, v in rows]
    for line in text_table(COLUMNS, table):
        print(line, file=out)
    users = len({row[0] for row in table})
    print(f"{len(table)} unused coupons held by {users} users expire in this window", file=out)
    return len(table)


def run_expiring(settings: Settings, within_ms: int, campaign: str | None, fmt: str) -> int:
    """`flashclaim expiring`: the report, from a ledger that must exist."""
    ledger_db = open_ledger(settings.ledger_dsn, settings.data_dir, must_exist=True)
    try:
        ledger_db.migrate()  # a ledger no consumer has written yet is empty, not an error
        write_report(expiring(ledger_db, int(time.time() * 1000), within_ms, campaign), fmt)
    finally:
        ledger_db.close()
    return 0
