"""`flashclaim bench`: the claim paths as fractions of the server's own ceiling.

Everything in one run, on one machine: the ceiling is the same service answering
`/healthz` under the same load tool. Load comes from wrk (with wrk/claims.lua)
when it is installed, else from the project's asyncio generator. After every
claim scenario the campaign is audited: no oversell, no lost or extra record.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import httpx
import redis
import uvloop
from redis.asyncio import Redis as AsyncRedis

from flashclaim.checks.audit import audit_campaign
from flashclaim.keys import KeySpace
from flashclaim.runtime.embedded import EmbeddedServer, free_port
from flashclaim.runtime.lifeline import die_with_parent
from flashclaim.runtime.private_files import open_private_log
from flashclaim.tables import text_table
from flashclaim.tools import children, loadgen
from flashclaim.validation import ascii_int

TOKEN = "bench-admin"
NAMESPACE = "bench"


@dataclass
class Result:
    scenario: str
    rps: float
    p50_ms: float
    p99_ms: float
    invariants: str = "-"
    note: str = ""
    requests: int = 0
    cpu_us: float | None = None  # the service's CPU (user + system) per request


@dataclass(frozen=True)
class Shape:
    """What each claim request carries."""

    body: bool = True  # Content-Type: application/json and {"channel": "app"}, as a grab button
    key_every: int = 10  # every k-th request carries an Idempotency-Key (0: none)
    tokens: Path | None = None  # bearer JWTs, one a line (jwt identity); else X-User-Id


REAL = Shape()  # the request a grab button sends (its client library keys every 10th)
TAP = Shape(key_every=0)  # the same without keys: the request issue 23's targets are set on
BARE = Shape(body=False, key_every=0)  # no body, no key: the old benchmark's request
APP_BODY = b'{"channel": "app"}'


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU of a process and its living descendants (from /proc)."""
    stats: dict[int, int] = {}
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        pid_of = ascii_int(entry.name, 10)
        if pid_of is None:
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        pid = pid_of
        stats[pid] = int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
        children.setdefault(int(fields[1]), []).append(pid)
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += stats.get(pid, 0)
        stack += children.get(pid, [])
    return total / os.sysconf("SC_CLK_TCK")


class Service:
    """`flashclaim serve` on a free port against a given Redis."""

    def __init__(self, redis_url: str, workers: int, log: Path, **env_vars: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = children.clean_env(FLASHCLAIM_REDIS_URL=redis_url, FLASHCLAIM_ADMIN_TOKEN=TOKEN,
                                 FLASHCLAIM_NAMESPACE=NAMESPACE, **env_vars)
        self.proc = children.start(["serve", "--port", str(self.port), "--workers",
                                    str(workers)], env, log)
        children.wait_ready(self.base, self.proc)

    def campaign(self, campaign_id: str, stock: int) -> str:
        httpx.post(self.base + "/v1/admin/campaigns", headers={"Authorization": f"Bearer {TOKEN}"},
                   json={"id": campaign_id, "name": campaign_id, "stock": stock,
                         "coupons": [{"type": "cash", "value": 500}]}).raise_for_status()
        return f"/v1/campaigns/{campaign_id}/claims"

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.proc.pid)

    def measured(self, run: Callable[[], Result]) -> Result:
        """run(), with the service's CPU per request it caused."""
        before = self.cpu_seconds()
        result = run()
        if result.requests:
            result.cpu_us = (self.cpu_seconds() - before) / result.requests * 1e6
        return result

    def stop(self) -> None:
        children.stop(self.proc)


class Yardstick(Service):
    """One of tools/bench_apps.py's apps (`bare` or `naive`) under the service's listener."""

    def __init__(self, kind: str, redis_url: str, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = children.clean_env(FLASHCLAIM_REDIS_URL=redis_url, FLASHCLAIM_NAMESPACE=NAMESPACE)
        with open_private_log(log) as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "flashclaim.tools.bench_apps", kind, "127.0.0.1",
                 str(self.port)], env=env, stdout=out, stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent)
        children.wait_ready(self.base, self.proc)


class Load:
    """One load tool for every scenario of a run: wrk if present, else the asyncio generator."""

    def __init__(self, seconds: float, connections: int, threads: int, force_python: bool) -> None:
        self.seconds, self.connections, self.threads = seconds, connections, threads
        self.wrk = None if force_python else shutil.which("wrk")
        self.name = "wrk" if self.wrk else "asyncio generator (wrk not installed)"

    def measure(self, name: str, base: str, path: str, method: str = "POST",
                users: str = "", pool: int = 0, shape: Shape = REAL) -> Result:
        if self.wrk:
            return self._wrk(name, base + path, method, users, pool, shape)
        return self._python(name, base, path, method, users, pool, shape)

    def _wrk(self, name: str, url: str, method: str, users: str, pool: int,
             shape: Shape) -> Result:
        command = [str(self.wrk), f"-t{self.threads}", f"-c{self.connections}",
                   f"-d{self.seconds}s", "--latency"]
        if method == "POST":
            script = resources.files("flashclaim.tools") / "wrk" / "claims.lua"
            with resources.as_file(script) as path:
                command += ["-s", str(path), url, "--", users, str(pool),
                            "app" if shape.body else "bare", str(shape.key_every),
                            str(shape.tokens or ""), str(self.threads)]
                out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        else:
            out = subprocess.run([*command, url], capture_output=True, text=True,
                                 check=True).stdout
        rps = float(_find(r"Requests/sec:\s+([\d.]+)", out))
        p50, p99 = (_ms(_find(rf"\s{p}%\s+([\d.]+\w+)", out)) for p in (50, 99))
        errors = re.search(r"Socket errors: (.*)", out)
        note = f"socket errors: {errors.group(1)}" if errors else ""
        requests = int(_find(r"(\d+) requests in", out))
        return Result(name, rps, p50, p99, note=note, requests=requests)

    def _python(self, name: str, base: str, path: str, method: str, users: str,
                pool: int, shape: Shape) -> Result:
        tokens = shape.tokens.read_text().split() if shape.tokens else []

        def make(n: int) -> loadgen.Request:
            user = f"{users}-{n % pool + 1}" if pool else f"{users}-{n}"
            if method != "POST":
                return loadgen.Request(method, path)
            return claim_request(path, user, n, shape, tokens)

        latencies: list[float] = []
        port = int(base.rsplit(":", 1)[1])
        elapsed = uvloop.run(loadgen.run_for("127.0.0.1", port, make, self.seconds,
                                              self.connections,
                                              lambda r: latencies.append(r.latency)))
        return _summary(name, latencies, elapsed)


def claim_request(path: str, user: str, n: int, shape: Shape,
                  tokens: list[str] | None = None) -> loadgen.Request:
    """The n-th claim request of a scenario, in its shape."""
    headers: list[tuple[str, str]] = [
        ("Authorization", f"Bearer {tokens[n % len(tokens)]}") if tokens else ("X-User-Id", user)]
    if shape.key_every and n % shape.key_every == 0:
        headers.append(("Idempotency-Key", f"{user}-k{n}"))
    if not shape.body:
        return loadgen.Request("POST", path, tuple(headers))
    headers.append(("Content-Type", "application/json"))
    return loadgen.Request("POST", path, tuple(headers), APP_BODY)


def _summary(name: str, latencies: list[float], elapsed: float) -> Result:
    ordered = sorted(latencies)
    return Result(name, len(ordered) / elapsed, loadgen.percentile(ordered, 50) * 1000,
                  loadgen.percentile(ordered, 99) * 1000, requests=len(ordered))


def _find(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise RuntimeError(f"unexpected wrk output (no {pattern!r}):\n{text}")
    return match.group(1)


def _ms(text: str) -> float:
    """wrk's '5.19ms', '812.00us', '1.02s' in milliseconds."""
    unit = text.lstrip("0123456789.")
    return float(text[: len(text) - len(unit)]) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def audit(redis_url: str, campaign_id: str) -> str:
    async def check() -> str:
        async with AsyncRedis.from_url(redis_url, decode_responses=True) as r:
            result = await audit_campaign(r, KeySpace(NAMESPACE), campaign_id)
        if result.ok:
            return f"ok: {result.granted} granted, {result.stream_length} records"
        return "BREACH: " + "; ".join(result.violations)
    return uvloop.run(check())


def pre_claim(base: str, path: str, users: str, pool: int) -> None:
    """Every user of the pool claims once, so later taps are repeats."""
    port = int(base.rsplit(":", 1)[1])
    requests = [loadgen.Request("POST", path, (("X-User-Id", f"{users}-{k}"),))
                for k in range(1, pool + 1)]
    uvloop.run(loadgen.run("127.0.0.1", port, requests, 32, lambda r: None))


def paced(name: str, base: str, path: str, rate: float, seconds: float,
          method: str = "POST") -> Result:
    latencies: list[float] = []
    port = int(base.rsplit(":", 1)[1])
    elapsed = uvloop.run(loadgen.run_paced(
        "127.0.0.1", port,
        lambda n: claim_request(path, f"paced-{n}", n, REAL) if method == "POST"
        else loadgen.Request(method, path),
        rate, seconds, 256, lambda r: latencies.append(r.latency)))
    result = _summary(name, latencies, elapsed)
    result.note = f"p99/p50 = {result.p99_ms / max(result.p50_ms, 1e-9):.1f}"
    return result


def flash_crowd(base: str, path: str, taps: int, users: int) -> Result:
    """Mixed: taps from users in random order (repeats included) against little stock."""
    import random

    rng = random.Random(5)
    order = [rng.randrange(users) if i >= users else i for i in range(taps)]
    rng.shuffle(order)
    requests = [claim_request(path, f"crowd-{u}", n, REAL) for n, u in enumerate(order)]
    latencies: list[float] = []
    port = int(base.rsplit(":", 1)[1])
    elapsed = uvloop.run(loadgen.run("127.0.0.1", port, requests, 256,
                                      lambda r: latencies.append(r.latency)))
    return _summary(f"mixed flash crowd ({taps:,} taps, {users:,} users)", latencies, elapsed)


def run_bench(args: argparse.Namespace) -> int:
    data_dir = Path(tempfile.mkdtemp(prefix="flashclaim-bench-"))
    server = EmbeddedServer(data_dir)
    url = server.start()
    load = Load(args.seconds, args.connections, args.threads, args.python_load)
    admin = redis.Redis.from_url(url, decode_responses=True)
    results: list[Result] = []
    print(f"flashclaim bench: {os.cpu_count()} cores, load from {load.name}, "
          f"{args.connections} connections, {args.seconds}s per scenario", flush=True)
    try:
        service = Service(url, 1, data_dir / "serve.log")
        try:
            def show(result: Result) -> Result:
                results.append(result)
                print(f"  {result.scenario}: {result.rps:,.0f} req/s", flush=True)
                return result

            base = service.base
            ceiling = show(service.measured(lambda: load.measure(
                "/healthz (the ceiling)", base, "/healthz", method="GET")))
            bare = show(yardstick("bare", url, data_dir, lambda y: load.measure(
                "bare refusal (an ASGI app answering 410, the second ceiling)", y.base,
                "/v1/campaigns/bare/claims", users="bare")))
            granted = show(service.measured(lambda: granted_claims(
                service, load, url, "claim granted, appendfsync always", "plenty")))
            service.campaign("naive-plenty", 10**9)
            naive = show(yardstick("naive", url, data_dir, lambda y: load.measure(
                "naive service granted (one EVALSHA a request), appendfsync always", y.base,
                "/v1/campaigns/naive-plenty/claims", users="naive-plenty")))
            naive.invariants = audit(url, "naive-plenty")
            granted.note = f"x{granted.rps / naive.rps:.2f} of the naive service"
            show(service.measured(lambda: granted_claims(
                service, load, url, "claim granted, no body (the old request)", "plenty-bare",
                BARE)))
            admin.config_set("appendfsync", "no")
            show(service.measured(lambda: granted_claims(
                service, load, url, "claim granted, no fsync", "plenty-nofsync")))
            admin.config_set("appendfsync", "always")
            path = service.campaign("gone", 1)
            pre_claim(base, path, "gone-first", 1)
            for name, users, shape in (("claim after sell-out", "late", TAP),
                                       ("claim after sell-out, every 10th keyed", "late-keyed",
                                        REAL),
                                       ("claim after sell-out, no body", "late-bare", BARE)):
                sold = service.measured(functools.partial(
                    load.measure, name, base, path, users=users, shape=shape))
                sold.invariants = audit(url, "gone")
                sold.note = f"x{sold.rps / bare.rps:.2f} of the bare refusal"
                show(sold)
                if shape is TAP:
                    sold_out = sold
            path = service.campaign("again", 10**9)
            pre_claim(base, path, "again", 2000)
            repeat = service.measured(lambda: load.measure(
                "repeat tap (user holds its limit)", base, path, users="again", pool=2000,
                shape=TAP))
            repeat.invariants = audit(url, "again")
            repeat.note = f"x{repeat.rps / bare.rps:.2f} of the bare refusal"
            show(repeat)
            path = service.campaign("paced", 10**9)
            rate = granted.rps / 2
            half = paced(f"claim at half the max rate ({rate:,.0f}/s, open loop)",
                         base, path, rate, args.seconds)
            half.invariants = audit(url, "paced")
            show(half)
            # The same open-loop generator on a trivial endpoint: its own share of the tail.
            show(paced(f"/healthz at the same rate ({rate:,.0f}/s, open loop)", base,
                       "/healthz", rate, args.seconds, method="GET"))
            path = service.campaign("crowd", args.crowd_stock)
            crowd = service.measured(lambda: flash_crowd(base, path, args.crowd_taps,
                                                         args.crowd_users))
            crowd.invariants = audit(url, "crowd")
            show(crowd)
            show(operator_grant(service, url, args.grant_users))
        finally:
            service.stop()
        show(jwt_claims(url, load, data_dir))
        if args.workers > 1:
            service = Service(url, args.workers, data_dir / "serve2.log")
            try:
                two = show(granted_claims(
                    service, load, url,
                    f"claim granted, appendfsync always, {args.workers} workers",
                    f"plenty-{args.workers}w"))
                two.note = f"x{two.rps / granted.rps:.2f} of 1 worker"
                many = show(service.measured(functools.partial(
                    load.measure, f"claim after sell-out, {args.workers} workers", service.base,
                    "/v1/campaigns/gone/claims", users="late-workers", shape=TAP)))
                many.note = f"x{many.rps / sold_out.rps:.2f} of 1 worker"
            finally:
                service.stop()
    finally:
        admin.close()
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    print()
    print(format_results(results, ceiling.rps, ceiling.cpu_us))
    breaches = [r for r in results if r.invariants.startswith("BREACH")]
    print("invariants: " + ("BREACH" if breaches else "every claim scenario: no oversell, "
                                                       "no lost or extra record"))
    return 1 if breaches else 0


JWT_KEY = "bench-jwt-key-of-at-least-thirty-two-chars"


def jwt_claims(url: str, load: Load, data_dir: Path, tokens: int = 150_000) -> Result:
    """Granted claims with the real shape, the user from a bearer JWT (HS256) instead of
    a gateway header: the identity check's own cost."""
    import jwt

    expires = int(time.time()) + 86_400
    path = data_dir / "tokens.txt"
    path.write_text("\n".join(jwt.encode({"sub": f"jwt-{i}", "exp": expires}, JWT_KEY,
                                          algorithm="HS256") for i in range(tokens)))
    service = Service(url, 1, data_dir / "serve-jwt.log", FLASHCLAIM_AUTH="jwt",
                      FLASHCLAIM_JWT_KEY=JWT_KEY)
    try:
        campaign = service.campaign("plenty-jwt", 10**9)
        result = service.measured(lambda: load.measure(
            "claim granted, jwt identity", service.base, campaign, shape=Shape(tokens=path)))
        result.invariants = audit(url, "plenty-jwt")
        return result
    finally:
        service.stop()


def operator_grant(service: Service, url: str, users: int) -> Result:
    """An operator grant of `users` users through the admin API (calls of 10,000), timed
    from the first call to the grant's "done"; then audited. req/s here: users/s."""
    path = service.campaign("granted-by-operator", 10**9)
    grants = path.removesuffix("/claims").replace("/v1/campaigns/", "/v1/admin/campaigns/") \
        + "/grants"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    started = time.monotonic()
    with httpx.Client(base_url=service.base, headers=headers, timeout=60) as http:
        for start in range(0, users, 10_000):
            batch = [f"g{i}" for i in range(start, min(start + 10_000, users))]
            http.post(grants, json={"grant_id": "bench", "users": batch}).raise_for_status()
        while http.get(grants + "/bench", params={"limit": 1}).json()["state"] != "done":
            time.sleep(0.05)
    seconds = time.monotonic() - started
    result = Result(f"operator grant of {users:,} users (users/s)", users / seconds, 0, 0,
                    note=f"{seconds:.1f}s in all")
    result.invariants = audit(url, "granted-by-operator")
    return result


def yardstick(kind: str, url: str, data_dir: Path, run: Callable[[Service], Result]
              ) -> Result:
    """A scenario against one of the yardstick apps, with that app's CPU per request."""
    app = Yardstick(kind, url, data_dir / f"{kind}.log")
    try:
        return app.measured(lambda: run(app))
    finally:
        app.stop()


def granted_claims(service: Service, load: Load, url: str, name: str, campaign: str,
                   shape: Shape = REAL) -> Result:
    """Distinct users on a campaign with stock to spare: every claim a grant; then audited."""
    path = service.campaign(campaign, 10**9)
    result = load.measure(name, service.base, path, users=campaign, shape=shape)
    result.invariants = audit(url, campaign)
    return result


def format_results(results: list[Result], ceiling: float, ceiling_cpu: float | None = None
                   ) -> str:
    header = ("scenario", "req/s", "x ceiling", "p50 ms", "p99 ms", "CPU us/req",
              "x CPU of ceiling", "invariants", "note")

    def cpu(r: Result) -> tuple[str, str]:
        if r.cpu_us is None:
            return "-", "-"
        return f"{r.cpu_us:.0f}", f"{r.cpu_us / ceiling_cpu:.2f}" if ceiling_cpu else "-"

    rows = [(r.scenario, f"{r.rps:,.0f}", f"{r.rps / ceiling:.2f}", f"{r.p50_ms:.1f}",
             f"{r.p99_ms:.1f}", *cpu(r), r.invariants, r.note) for r in results]
    lines = text_table(header, rows, sep=" | ", rule=True)
    return "\n".join(lines)
