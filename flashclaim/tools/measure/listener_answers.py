"""The listener's answers from memory, on against off, interleaved run by run: two services
on one embedded Valkey, one with FLASHCLAIM_HTTP_LISTENER_ANSWERS=on and one =off, each
measured in turn (wrk -t2 -c64, the grab button's request; docs/benchmarks.md). Prints
req/s and the server's CPU per request for every run, then the medians.

    python -m flashclaim.tools.measure.listener_answers [rounds]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

import httpx

from flashclaim.runtime.embedded import EmbeddedServer
from flashclaim.tools.bench import Service, tree_cpu_seconds
from flashclaim.tools.measure.granian_compare import wrk

MODES = ("on", "off")
SCENARIOS = (  # name, campaign, claims.lua arguments: the wrk script's users and shape
    ("/healthz", None, None),
    ("sold out, the grab button's request", "gone", ("late", "0", "app", "0", "", "2")),
    ("sold out, every 10th tap keyed", "gone", ("keyed", "0", "app", "10", "", "2")),
    ("repeat tap (the user holds its limit)", "again", ("again", "2000", "app", "0", "", "2")),
)


def prepare(service: Service, mode: str) -> None:
    """A sold-out campaign, and one whose 2,000 users each hold their one coupon (ids
    suffixed by the mode: both services share the server and namespace)."""
    service.campaign(f"gone-{mode}", 1)
    service.campaign(f"again-{mode}", 10**9)
    with httpx.Client(base_url=service.base) as http:
        http.post(f"/v1/campaigns/gone-{mode}/claims",
                  headers={"X-User-Id": "first"}).raise_for_status()
        for n in range(1, 2001):
            http.post(f"/v1/campaigns/again-{mode}/claims",
                      headers={"X-User-Id": f"again-{n}"}).raise_for_status()


def run(rounds: int) -> None:
    logs = Path(tempfile.mkdtemp(prefix="flashclaim-listener-"))
    server = EmbeddedServer(logs)
    url = server.start()
    services: dict[str, Service] = {}
    try:
        for mode in MODES:
            services[mode] = Service(url, 1, logs / f"{mode}.log",
                                     FLASHCLAIM_HTTP_LISTENER_ANSWERS=mode)
            prepare(services[mode], mode)
        runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for r in range(rounds):
            for name, campaign, args in SCENARIOS:
                for mode in MODES if r % 2 == 0 else MODES[::-1]:
                    service = services[mode]
                    path = ("/healthz" if campaign is None
                            else f"/v1/campaigns/{campaign}-{mode}/claims")
                    cpu = tree_cpu_seconds(service.proc.pid)
                    rps, requests = wrk(service.base + path, args)
                    us = (tree_cpu_seconds(service.proc.pid) - cpu) / requests * 1e6
                    runs.setdefault((name, mode), []).append((rps, us))
                    print(f"round {r + 1} {name} [{mode}]: {rps:,.0f} req/s, {us:.0f} us/req",
                          flush=True)
    finally:
        for service in services.values():
            service.stop()
        server.stop()
    print(f"\nmedians of {rounds} rounds (listener answers on | off):")
    for name, _, _ in SCENARIOS:
        on, off = (runs[(name, mode)] for mode in MODES)
        on_rps, off_rps = (statistics.median(r for r, _ in x) for x in (on, off))
        on_us, off_us = (statistics.median(u for _, u in x) for x in (on, off))
        print(f"  {name}: {on_rps:,.0f} req/s {on_us:.0f} us | {off_rps:,.0f} req/s "
              f"{off_us:.0f} us | x{on_rps / off_rps:.2f} req/s")


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
