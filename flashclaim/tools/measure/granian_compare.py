"""uvicorn (`flashclaim serve`) against granian, on one embedded Valkey, in one run: req/s and
the server's CPU per request for /healthz, granted claims, and taps after sell-out (with and
without the request body), with wrk -t2 -c64 (docs/benchmarks.md, "granian, evaluated").
granian is not a dependency: `pip install granian` first.

    python -m flashclaim.tools.measure.granian_compare
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

import httpx

from flashclaim.runtime.embedded import EmbeddedServer, free_port
from flashclaim.tools import children
from flashclaim.tools.bench import tree_cpu_seconds

SECONDS = 6
SCENARIOS = (  # name, path, claims.lua arguments (None: a GET)
    ("/healthz", "/healthz", None),
    ("granted (real shape)", "/v1/campaigns/plenty/claims", ("g", "0", "app", "10", "", "2")),
    ("sold-out (real shape)", "/v1/campaigns/gone/claims", ("late", "0", "app", "10", "", "2")),
    ("sold-out (no body)", "/v1/campaigns/gone/claims", ("bare", "0", "bare", "0", "", "2")),
)


def wrk(url: str, args: tuple[str, ...] | None) -> tuple[float, int]:
    """(req/s, requests) of one wrk run."""
    command = ["wrk", "-t2", "-c64", f"-d{SECONDS}s"]
    if args is None:
        out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    else:
        script = resources.files("flashclaim.tools") / "wrk" / "claims.lua"
        with resources.as_file(script) as path:
            out = subprocess.run([*command, "-s", str(path), url, "--", *args],
                                 capture_output=True, text=True, check=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    requests = re.search(r"(\d+) requests in", out)
    assert rps and requests, out
    return float(rps.group(1)), int(requests.group(1))


def measure(server_kind: str, redis_url: str, logs: Path) -> list[tuple[float, float]]:
    """(req/s, CPU µs per request) per scenario, under one HTTP server."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = children.clean_env(FLASHCLAIM_REDIS_URL=redis_url, FLASHCLAIM_ADMIN_TOKEN="t",
                             FLASHCLAIM_NAMESPACE=server_kind)
    command = [sys.executable, "-m", "flashclaim", "serve", "--port", str(port)]
    if server_kind == "granian":
        command = ["granian", "--interface", "asgi", "--factory", "--loop", "uvloop",
                   "--workers", "1", "--port", str(port), "--no-ws", "--log-level", "warning",
                   "flashclaim.web.app:create_app"]
    with open(logs / f"{server_kind}.log", "wb") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        children.wait_ready(base, proc)
        for campaign, stock in (("plenty", 10**9), ("gone", 1)):
            httpx.post(base + "/v1/admin/campaigns", headers={"Authorization": "Bearer t"},
                       json={"id": campaign, "name": campaign, "stock": stock,
                             "coupons": [{"type": "cash", "value": 500}]}).raise_for_status()
        httpx.post(base + "/v1/campaigns/gone/claims",
                   headers={"X-User-Id": "first"}).raise_for_status()
        rows = []
        for _, path, args in SCENARIOS:
            cpu = tree_cpu_seconds(proc.pid)
            rps, requests = wrk(base + path, args)
            rows.append((rps, (tree_cpu_seconds(proc.pid) - cpu) / requests * 1e6))
        return rows
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    logs = Path(tempfile.mkdtemp(prefix="flashclaim-granian-"))
    server = EmbeddedServer(logs)
    url = server.start()
    try:
        uvicorn, granian = measure("uvicorn", url, logs), measure("granian", url, logs)
    finally:
        server.stop()
    for (name, _, _), (u_rps, u_cpu), (g_rps, g_cpu) in zip(SCENARIOS, uvicorn, granian,
                                                              strict=True):
        print(f"{name:22} uvicorn {u_rps:8,.0f} req/s {u_cpu:4.0f} us/req | granian "
              f"{g_rps:8,.0f} req/s {g_cpu:4.0f} us/req | x{g_rps / u_rps:.2f}")


if __name__ == "__main__":
    main()
