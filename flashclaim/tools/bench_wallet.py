"""`flashclaim bench-wallet`: GET /v1/me/coupons against a large PostgreSQL ledger.

Fills the ledger (COPY) with --coupons coupons over --users users and 20 campaigns,
a third of them used, then runs `serve` on it and measures, in one run:
- /healthz, closed loop: the service's ceiling under this load generator;
- the wallet, closed loop: throughput as a fraction of that ceiling;
- the wallet, open loop at --rate requests/s: the p99 a user sees (target: 20 ms);
- one campaign report over its share of the coupons (the operators' read).
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import psycopg
import uvloop

from flashclaim.coupons import new_claim_id
from flashclaim.ledger.db import open_ledger
from flashclaim.runtime.embedded import EmbeddedServer
from flashclaim.tools import loadgen
from flashclaim.tools.bench import TOKEN, Result, Service, _summary, format_results

CAMPAIGNS = 20
DAY_MS = 86_400_000


def fill(dsn: str, coupons: int, users: int) -> None:
    """One coupon per claim; users claim in turn; a third used, the rest unused."""
    now = int(time.time() * 1000)
    rng = random.Random(7)
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy("COPY claims (claim_id, campaign_id, user_id, seq, claimed_at_ms, channel,"
                      " stream_entry_id, claim_json, recorded_at_ms, source, source_ref, tags)"
                      " FROM STDIN") as claims_copy:
            rows = []
            for n in range(coupons):
                campaign = f"bench-{n % CAMPAIGNS}"
                claim_id = new_claim_id(campaign)
                at = now - rng.randrange(30 * DAY_MS)
                rows.append((claim_id, campaign, at))
                claims_copy.write_row((claim_id, campaign, f"user-{n % users}",
                                       n // CAMPAIGNS + 1, at, "app", f"{at}-{n}", "{}", at,
                                       "grab", "", ""))
        with cur.copy("COPY coupons (coupon_id, claim_id, campaign_id, user_id, type, value,"
                      " currency, valid_from_ms, valid_until_ms, scope_json, status, order_id,"
                      " discount, used_at_ms) FROM STDIN") as coupons_copy:
            for n, (claim_id, campaign, at) in enumerate(rows):
                used = n % 3 == 0
                coupons_copy.write_row((
                    claim_id + "-1", claim_id, campaign, f"user-{n % users}", "cash", 500, "CNY",
                    at, at + 60 * DAY_MS, "{}", "used" if used else "unused",
                    f"order-{n}" if used else None, 500 if used else None,
                    at + 1000 if used else None))
        cur.execute("ANALYZE claims")
        cur.execute("ANALYZE coupons")


def run_bench_wallet(args: argparse.Namespace) -> int:
    dsn: str = args.ledger_dsn
    if not dsn.startswith(("postgresql://", "postgres://")):
        print("flashclaim bench-wallet: --ledger-dsn must be a postgresql:// DSN")
        return 2
    ledger = open_ledger(dsn, Path(tempfile.gettempdir()))
    ledger.migrate()
    [(held,)] = ledger.execute("SELECT COUNT(*) FROM coupons")
    ledger.close()
    if int(held) == 0:
        started = time.monotonic()
        fill(dsn, args.coupons, args.users)
        print(f"filled the ledger: {args.coupons:,} coupons of {args.users:,} users in "
              f"{time.monotonic() - started:.0f}s", flush=True)
    elif int(held) < args.coupons:
        print(f"flashclaim bench-wallet: the ledger holds {held} coupons, fewer than "
              f"--coupons; give it an empty database")
        return 2
    else:
        print(f"the ledger already holds {int(held):,} coupons: measuring on them", flush=True)

    data_dir = Path(tempfile.mkdtemp(prefix="flashclaim-bench-wallet-"))
    server = EmbeddedServer(data_dir)
    url = server.start()
    results: list[Result] = []
    try:
        service = Service(url, 1, data_dir / "serve.log", FLASHCLAIM_LEDGER_DSN=dsn)
        try:
            port = service.port

            def wallet(n: int) -> loadgen.Request:
                user = f"user-{random.randrange(args.users)}"
                return loadgen.Request("GET", "/v1/me/coupons", (("X-User-Id", user),))

            def closed(name: str, make: Callable[[int], loadgen.Request]) -> Result:
                latencies: list[float] = []
                elapsed = uvloop.run(loadgen.run_for("127.0.0.1", port, make, args.seconds,
                                                     args.connections,
                                                     lambda r: latencies.append(r.latency)))
                return _summary(name, latencies, elapsed)

            ceiling = closed("/healthz (the ceiling)",
                             lambda n: loadgen.Request("GET", "/healthz"))
            results.append(ceiling)
            results.append(closed("wallet, closed loop", wallet))
            statuses: dict[int, int] = {}
            latencies: list[float] = []

            def on_paced(r: loadgen.Response) -> None:
                latencies.append(r.latency)
                statuses[r.status] = statuses.get(r.status, 0) + 1

            elapsed = uvloop.run(loadgen.run_paced("127.0.0.1", port, wallet, args.rate,
                                                   args.seconds, 64, on_paced))
            paced = _summary(f"wallet at {args.rate:,.0f}/s (open loop)", latencies, elapsed)
            paced.note = f"target p99 < 20 ms; answers {statuses}"
            results.append(paced)
            started = time.monotonic()
            report = httpx.get(service.base + "/v1/admin/campaigns/bench-0/report",
                               headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)
            seconds = time.monotonic() - started
            body = orjson.loads(report.content)
            results.append(Result("campaign report (one campaign)", 1 / seconds,
                                  seconds * 1000, seconds * 1000,
                                  note=f"{body.get('coupons', 0):,} coupons, "
                                       f"use rate {body.get('use_rate')}"))
        finally:
            service.stop()
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    print()
    print(format_results(results, ceiling.rps))
    return 0
