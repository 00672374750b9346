"""`flashclaim bench-quote`: POST /v1/me/quote for a user holding many coupons, a big cart.

A user claims one coupon of each of --coupons campaigns (cash, threshold and percentage
coupons over several scopes, channels and stacking groups, so the search has work), the
ledger takes them in, then a cart of --items lines is quoted, in one run:
- /healthz, closed loop: the service's ceiling under this load generator;
- the quote, closed loop: throughput as a fraction of that ceiling;
- the quote, open loop at --rate requests/s: the p99 a checkout sees (target: 20 ms), and
  /healthz at the same rate: the part of that tail the load generator makes itself.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import redis
import uvloop

from flashclaim.keys import KeySpace
from flashclaim.ledger.reconcile import wait_for_ledger
from flashclaim.runtime.embedded import EmbeddedServer
from flashclaim.tools import children, loadgen
from flashclaim.tools.bench import NAMESPACE, TOKEN, Result, Service, _summary, format_results

USER = "quote-bench-user"
CATEGORIES = ("肉蛋水产", "fruit", "grain", "dairy", "snacks", "drinks")
GROUPS = ("platform", "merchant", "category", "payment")


def coupon_of(n: int) -> dict[str, object]:
    """The n-th campaign's coupon: kinds, scopes, channels and groups in turn."""
    kind = n % 3
    coupon: dict[str, object] = (
        {"type": "cash", "value": 200 + 50 * n} if kind == 0 else
        {"type": "threshold", "value": 500 + 100 * n, "min_spend": 5_000 + 1_000 * n}
        if kind == 1 else
        {"type": "discount", "percent_off": 5 + n % 20, "max_discount": 3_000 + 100 * n})
    if n % 4:
        coupon["scope"] = {"categories": [CATEGORIES[n % len(CATEGORIES)]],
                           "exclude_skus": [f"sku-{n}"]}
    if n % 7 == 0:
        coupon["use_channels"] = ["store"]
    coupon["stacking"] = {"group": GROUPS[n % len(GROUPS)], "exclusive": n % 11 == 0}
    return coupon


def cart_of(items: int) -> bytes:
    lines = [{"sku": f"sku-{n}", "category": CATEGORIES[n % len(CATEGORIES)],
              "merchant": f"shop-{n % 3}", "unit_price": 500 + 137 * n, "quantity": 1 + n % 3}
             for n in range(items)]
    return orjson.dumps({"channel": "app", "items": lines})


def run_bench_quote(args: argparse.Namespace) -> int:
    data_dir = Path(tempfile.mkdtemp(prefix="flashclaim-bench-quote-"))
    server = EmbeddedServer(data_dir)
    url = server.start()
    results: list[Result] = []
    extra = {"FLASHCLAIM_LEDGER_DSN": args.ledger_dsn} if args.ledger_dsn else {}
    ledger = None
    try:
        service = Service(url, 1, data_dir / "serve.log", FLASHCLAIM_DATA_DIR=str(data_dir),
                          **extra)
        env = children.clean_env(FLASHCLAIM_REDIS_URL=url, FLASHCLAIM_DATA_DIR=str(data_dir),
                                 FLASHCLAIM_NAMESPACE=NAMESPACE, **extra)
        ledger = children.start(["ledger", "--block-ms", "100"], env, data_dir / "ledger.log")
        try:
            campaigns = [f"quote-{n}" for n in range(args.coupons)]
            with httpx.Client(base_url=service.base, timeout=30) as http:
                for n, campaign_id in enumerate(campaigns):
                    http.post("/v1/admin/campaigns", headers={"Authorization": f"Bearer {TOKEN}"},
                              json={"id": campaign_id, "name": campaign_id, "stock": 10,
                                    "coupons": [coupon_of(n)]}).raise_for_status()
                    http.post(f"/v1/campaigns/{campaign_id}/claims",
                              headers={"X-User-Id": USER}).raise_for_status()
            with redis.Redis.from_url(url) as r:
                wait_for_ledger(r, KeySpace(NAMESPACE), campaigns, timeout=60)
            body = cart_of(args.items)
            first = httpx.post(service.base + "/v1/me/quote", content=body, timeout=30,
                               headers={"X-User-Id": USER, "Content-Type": "application/json"})
            first.raise_for_status()
            answer = first.json()
            held = len(answer["coupons"])
            applicable = sum(c["applicable"] for c in answer["coupons"])
            print(f"{USER} holds {held} coupons; on a cart of {args.items} lines {applicable} "
                  f"apply, the best takes {answer['best']['discount']} off "
                  f"{answer['subtotal']} with {len(answer['best']['coupon_ids'])} coupons",
                  flush=True)
            port = service.port

            def quote(n: int) -> loadgen.Request:
                return loadgen.Request("POST", "/v1/me/quote", (
                    ("X-User-Id", USER), ("Content-Type", "application/json")), body)

            def closed(name: str, make: Callable[[int], loadgen.Request]) -> Result:
                latencies: list[float] = []
                return service.measured(lambda: _summary(name, latencies, uvloop.run(
                    loadgen.run_for("127.0.0.1", port, make, args.seconds, args.connections,
                                    lambda r: latencies.append(r.latency)))))

            ceiling = closed("/healthz (the ceiling)", lambda n: loadgen.Request("GET", "/healthz"))
            results.append(ceiling)
            results.append(closed(f"quote: {held} coupons, {args.items} lines, closed loop",
                                  quote))
            for name, make in ((f"quote at {args.rate:,.0f}/s (open loop)", quote),
                               (f"/healthz at {args.rate:,.0f}/s (open loop: the load tool's "
                                "own tail)", lambda n: loadgen.Request("GET", "/healthz"))):
                statuses: dict[int, int] = {}
                latencies: list[float] = []

                def on_paced(r: loadgen.Response, seen: list[float] = latencies,
                             codes: dict[int, int] = statuses) -> None:
                    seen.append(r.latency)
                    codes[r.status] = codes.get(r.status, 0) + 1

                elapsed = uvloop.run(loadgen.run_paced("127.0.0.1", port, make, args.rate,
                                                       args.seconds, 64, on_paced))
                paced = _summary(name, latencies, elapsed)
                paced.note = f"answers {statuses}" + (
                    "; target p99 < 20 ms" if make is quote else "")
                results.append(paced)
        finally:
            children.stop(ledger)
            service.stop()
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    print()
    print(format_results(results, ceiling.rps, ceiling.cpu_us))
    return 0
