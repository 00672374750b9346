"""`flashclaim demo`: everything embedded, one flash crowd, one verdict.

Starts `serve` (with its embedded Valkey) and `ledger` (SQLite) on a data
directory, creates a campaign, sends a crowd of taps at it (first taps, repeat
taps, fast tappers, client retries), waits for the ledger, reconciles, and
prints a report. Exit 0 only if nothing was oversold, lost or duplicated.

Each run creates its own campaign (demo-<random>), so a re-run on the same
--data-dir works and adds to what is there. SIGTERM or Ctrl-C stops every
process it started and removes its temp dir: exit 143 or 130, no traceback.
"""

from __future__ import annotations

import argparse
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import redis
import uvloop

from flashclaim.checks.invariants import answered_breaches, tally
from flashclaim.keys import KeySpace
from flashclaim.ledger.db import open_ledger
from flashclaim.ledger.reconcile import Reconciliation, reconcile_campaign, wait_for_ledger
from flashclaim.money import format_amounts
from flashclaim.runtime.embedded import free_port, running_url
from flashclaim.settings import SettingsError
from flashclaim.tools import children, loadgen
from flashclaim.tools.demo_after import AfterReport, WalletProbe, check_report, checkout_share
from flashclaim.tools.demo_issuance import IssuanceReport, issue_other_ways

CHECKOUT_TOKEN = "demo-checkout"
COUPONS_PER_CLAIM = 2  # the crowd's campaign grants a threshold and a cash coupon


@dataclass
class Crowd:
    """What the clients saw."""

    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    granted_ids: list[str] = field(default_factory=list)
    granted_users: list[str] = field(default_factory=list)  # of each granted claim, in order
    done: int = 0

    def record(self, response: loadgen.Response) -> None:
        self.done += 1
        self.latencies.append(response.latency)
        if response.status in (200, 201):
            claim = orjson.loads(response.body)
            if response.status == 201:
                self.granted_ids.append(claim["claim_id"])
                self.granted_users.append(claim["user_id"])
            self.statuses[str(response.status)] += 1
        elif response.status == 0:
            self.statuses["connection error"] += 1
        else:
            code = orjson.loads(response.body).get("error", "?")
            self.statuses[f"{response.status} {code}"] += 1


def crowd_requests(campaign_id: str, users: int, requests: int,
                   seed: int = 11) -> list[loadgen.Request]:
    """Every user taps once; the rest are repeat taps, fast tappers' bursts and retries."""
    rng = random.Random(seed)
    path = f"/v1/campaigns/{campaign_id}/claims"

    def tap(user: int, key: str | None = None) -> loadgen.Request:
        headers = [("X-User-Id", f"user-{user}")]
        if key is not None:
            headers.append(("Idempotency-Key", key))
        return loadgen.Request("POST", path, tuple(headers))

    taps = [tap(u, f"k-{u}" if u % 10 == 0 else None) for u in range(users)]
    fast_tappers = rng.sample(range(users), max(1, users // 100))
    while len(taps) < requests:
        roll = rng.random()
        if roll < 0.4:  # a fast tapper's burst of 15 (some will hit the rate limit)
            burst = [tap(rng.choice(fast_tappers)) for _ in range(15)]
            taps.extend(burst[: requests - len(taps)])
        elif roll < 0.6:  # a client retrying with its Idempotency-Key
            u = rng.randrange(0, users, 10)
            taps.append(tap(u, f"k-{u}"))
        else:
            taps.append(tap(rng.randrange(users)))
    rng.shuffle(taps)
    return taps


class Progress:
    def __init__(self, total: int) -> None:
        self.total = total
        self.started = time.perf_counter()
        self._last = 0.0
        self._tty = sys.stderr.isatty()

    def show(self, done: int, final: bool = False) -> None:
        now = time.perf_counter()
        if not final and now - self._last < (0.2 if self._tty else 2.0):
            return
        self._last = now
        width = 30
        filled = int(width * done / self.total)
        rate = done / max(now - self.started, 1e-9)
        line = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} taps {rate:,.0f}/s"
        sys.stderr.write(("\r" + line) if self._tty else line + "\n")
        if final and self._tty:
            sys.stderr.write("\n")
        sys.stderr.flush()


_terminated: list[int] = []


def _on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM, taken the way Ctrl-C is (asyncio cancels the crowd cleanly on SIGINT):
    unwind, clean up, exit 143. A job a script started with `&` has SIGINT ignored (the
    shell's doing): there, SIGINT would do nothing, so the interrupt is raised here."""
    _terminated.append(signum)
    if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, None):
        raise KeyboardInterrupt
    signal.raise_signal(signal.SIGINT)


def run_demo(args: argparse.Namespace) -> int:
    if args.requests < args.users:
        raise SettingsError(f"--requests ({args.requests}) must be at least --users "
                            f"({args.users}): every user taps once")
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("\nflashclaim demo: stopped; every process it started is stopped too",
              file=sys.stderr)
        return 143 if _terminated else 130


def _run(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="flashclaim-demo-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    campaign_id = "demo-" + secrets.token_hex(3)  # a re-run on the same data dir adds one
    env = children.clean_env(FLASHCLAIM_DATA_DIR=str(data_dir),
                             FLASHCLAIM_ADMIN_TOKEN="demo-admin", FLASHCLAIM_NAMESPACE="demo",
                             FLASHCLAIM_CHECKOUT_TOKEN=CHECKOUT_TOKEN)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    print(f"flashclaim demo: data in {data_dir}, service on {base}", flush=True)
    service: subprocess.Popen[bytes] | None = None
    ledger_proc: subprocess.Popen[bytes] | None = None
    try:
        service = children.start(["serve", "--port", str(port), "--workers",
                                  str(args.workers)], env, data_dir / "serve.log")
        children.wait_ready(base, service)
        # The ledger finds the embedded server that `serve` runs on this data directory.
        ledger_proc = children.start(["ledger", "--block-ms", "200"], env, data_dir / "ledger.log")
        admin = {"Authorization": "Bearer demo-admin"}
        created = httpx.post(base + "/v1/admin/campaigns", headers=admin, json={
            "id": campaign_id, "name": "Flash sale demo", "stock": args.stock,
            "rate_limit": {"max": 5, "per_seconds": 1},
            "coupons": [{"type": "threshold", "value": 2000, "min_spend": 10000},
                        {"type": "cash", "value": 500, "validity": {"days": 7}}]})
        created.raise_for_status()
        probe_id = "probe-" + secrets.token_hex(3)
        httpx.post(base + "/v1/admin/campaigns", headers=admin, json={
            "id": probe_id, "name": "Wallet probe", "stock": None, "listed": False,
            "coupons": [{"type": "cash", "value": 100}]}).raise_for_status()
        requests = crowd_requests(campaign_id, args.users, args.requests)
        print(f"campaign {campaign_id!r}: stock {args.stock}; {len(requests)} taps from "
              f"{args.users} users over {args.concurrency} connections")
        crowd = Crowd()
        progress = Progress(len(requests))

        def on_response(r: loadgen.Response) -> None:
            crowd.record(r)
            progress.show(crowd.done)

        with WalletProbe(base, probe_id) as probe:  # how soon a grant shows, under load
            elapsed = uvloop.run(loadgen.run("127.0.0.1", port, requests, args.concurrency,
                                              on_response))
        progress.show(crowd.done, final=True)
        stats = httpx.get(base + f"/v1/admin/campaigns/{campaign_id}",
                          headers=admin).json()["stats"]
        issuance = issue_other_ways(base, admin)
        wait_for_ledger_of(data_dir, [campaign_id])  # a quote reads the wallet: the ledger
        after = checkout_share(base, CHECKOUT_TOKEN, campaign_id,
                               list(zip(crowd.granted_ids, crowd.granted_users, strict=True)))
        code = _report(data_dir, campaign_id, args, crowd, elapsed, stats, issuance,
                       After(base, admin, probe, after))
        if args.keep:
            _keep_running(base, admin["Authorization"].removeprefix("Bearer "))
        return code
    finally:
        # Children first (they hold files in the data dir); a second signal meanwhile
        # must not cut this short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for proc in (ledger_proc, service):
            if proc is not None:
                children.stop(proc)
        if not args.data_dir:  # a temp dir of its own: gone with the demo (--keep too)
            shutil.rmtree(data_dir, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)


def wait_for_ledger_of(data_dir: Path, campaign_ids: list[str]) -> None:
    """Until the ledger has every claim of the campaigns (at most a minute)."""
    url = running_url(data_dir)
    assert url is not None
    with redis.Redis.from_url(url, decode_responses=True) as r:
        wait_for_ledger(r, KeySpace("demo"), campaign_ids, timeout=60)


def _keep_running(base: str, admin_token: str) -> None:
    """After the verdict: the stack stays up for a look at the pages, until Ctrl-C."""
    try:  # before the lines a watcher acts on: a signal right after them is a clean stop
        print(f"\nThe stack keeps running (Ctrl-C stops it):\n"
              f"  coupon centre:       {base}/\n"
              f"  operator dashboard:  {base}/admin  (admin token: {admin_token})", flush=True)
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass


@dataclass
class After:
    """The third act's results, and where to read the report."""

    base: str
    admin: dict[str, str]
    probe: WalletProbe
    redemptions: AfterReport


def _report(data_dir: Path, campaign_id: str, args: argparse.Namespace, crowd: Crowd,
            elapsed: float, stats: dict[str, object], issuance: IssuanceReport,
            after: After) -> int:
    url = running_url(data_dir)
    assert url is not None
    keyspace = KeySpace("demo")
    with redis.Redis.from_url(url, decode_responses=True) as r:
        lag = wait_for_ledger(r, keyspace, [campaign_id, issuance.campaign_id], timeout=60)
        ledger = open_ledger(None, data_dir)
        try:
            rec: Reconciliation = reconcile_campaign(r, ledger, keyspace, campaign_id)
            pack = reconcile_campaign(r, ledger, keyspace, issuance.campaign_id)
            in_ledger = ledger.claim_ids(campaign_id)
        finally:
            ledger.close()
    used = after.redemptions
    check_report(after.base, after.admin, campaign_id, used, COUPONS_PER_CLAIM)
    probe = after.probe
    if probe.missing or not probe.seconds:
        used.problems.append(f"wallet: {probe.missing} granted coupons never showed "
                             f"({len(probe.seconds)} did)")
    seen = crowd.granted_ids
    breaches = rec.mismatches + answered_breaches(seen, in_ledger, "ledger") + \
        [f"{issuance.campaign_id}: {m}" for m in pack.mismatches + issuance.problems] + \
        [f"after the grab: {m}" for m in used.problems]
    counts = tally(breaches)
    latencies = sorted(crowd.latencies)
    undersold = rec.granted < min(args.stock, args.users)
    print()
    print(f"granted             {rec.granted} of stock {rec.stock} "
          f"(clients saw {len(seen)} x 201)")
    print("answers by status   " + ", ".join(f"{k}: {v}" for k, v in
                                             sorted(crowd.statuses.items())))
    print(f"rejected (service)  {stats['rejected']}")
    print(f"throughput          {len(latencies) / elapsed:,.0f} taps/s over {elapsed:.1f}s")
    print(f"latency             p50 {loadgen.percentile(latencies, 50) * 1000:.1f} ms, "
          f"p99 {loadgen.percentile(latencies, 99) * 1000:.1f} ms")
    print(f"operator grant      {issuance.campaign_id}: " + ", ".join(
        f"{k} {v}" for k, v in sorted(issuance.grant_outcomes.items())))
    print(f"redemption codes    {issuance.redeemed} redeemed, a used code "
          + ("refused (410)" if issuance.reuse_refused else "NOT refused"))
    waits = sorted(probe.seconds) or [0.0]
    print(f"wallet              a granted coupon shows after p50 "
          f"{loadgen.percentile(waits, 50) * 1000:.0f} ms, max {waits[-1] * 1000:.0f} ms "
          f"({len(probe.seconds)} probes during the crowd; target 1 s)")
    report = used.report
    print(f"checkout            {used.confirmed} orders paid ({used.refunded} refunded), "
          f"{used.cancelled} cancelled: use rate {(report.get('use_rate') or 0) * 100:.1f}% "
          f"({report.get('used')} of {report.get('coupons')} coupons), discount cost "
          f"{format_amounts(report.get('discount_cost', {}))}, GMV "
          f"{format_amounts(report.get('gmv', {}))}, ROI at 30% margin "
          f"{(report.get('roi') or {}).get('CNY')}")
    print(f"ledger              {rec.ledger_rows} + {pack.ledger_rows} rows, lag {lag}")
    verdict = "consistent" if rec.ok and pack.ok else "MISMATCH"
    print(f"reconcile           {verdict}")
    print(", ".join(f"{kind} {n}" for kind, n in counts.items())
          + (", UNDERSOLD" if undersold else ""))
    for breach in breaches:
        print(f"  {breach}")
    failed = breaches or undersold or lag or \
        crowd.statuses.get("connection error") or any(k.startswith("5") for k in crowd.statuses)
    print("PASS" if not failed else "FAIL")
    return 0 if not failed else 1
