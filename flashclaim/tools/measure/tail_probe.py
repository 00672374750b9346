"""Where the tail at half load comes from (docs/benchmarks.md, "The tail at half load").

Starts an embedded Valkey and `flashclaim serve` with a hook that logs every garbage
collection over 1 ms, grants for 8 s with wrk to find the max rate, then paces claims at
max/DIVIDE (2: half) for 8 s and prints: p50, p99, the GC pauses in that window, Valkey's
script calls per claim, the service's CPU per claim, and each process's share of the wall
time running and waiting for a core (/proc/<pid>/task/*/schedstat). Optionally sets an AOF
mode first. Also times one Redis round trip in redis-py against a bare asyncio protocol.

    python -m flashclaim.tools.measure.tail_probe [always|everysec|no|off] [DIVIDE]
    python -m flashclaim.tools.measure.tail_probe roundtrip
"""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import cast
from urllib.parse import urlparse

import hiredis
import httpx
import redis
import uvloop
from redis.asyncio import Redis

from flashclaim.runtime.embedded import EmbeddedServer, free_port
from flashclaim.tools import children, loadgen
from flashclaim.tools.bench import REAL, Load, _summary, claim_request

# Runs `flashclaim serve` with a gc.callbacks hook writing "<time> gen<n> <ms>" lines.
GC_HOOK = """
import gc, os, sys, time
log = open(os.environ["GC_LOG"], "w", buffering=1)
started = [0.0]
def timed(phase, info):
    if phase == "start":
        started[0] = time.perf_counter()
    elif (ms := (time.perf_counter() - started[0]) * 1000) > 1:
        log.write(f"{time.time():.3f} gen{info['generation']} {ms:.1f}\\n")
gc.callbacks.append(timed)
from flashclaim.cli import main
sys.exit(main(sys.argv[1:]))
"""
SECONDS = 8


def sched(pid: int) -> tuple[int, int]:
    """(ns running, ns waiting for a core) over all threads of a process."""
    run = wait = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            fields = Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()
        except OSError:
            continue
        run, wait = run + int(fields[0]), wait + int(fields[1])
    return run, wait


def script_calls(url: str) -> int:
    with redis.Redis.from_url(url) as r:
        stats = r.info("commandstats")
    return sum(int(stats[k]["calls"]) for k in ("cmdstat_evalsha", "cmdstat_eval") if k in stats)


def probe(aof: str, divide: float) -> None:
    data = Path(tempfile.mkdtemp(prefix="flashclaim-tail-"))
    server = EmbeddedServer(data)
    url = server.start()
    with redis.Redis.from_url(url) as r:
        if aof == "off":
            r.config_set("appendonly", "no")
        else:
            r.config_set("appendfsync", aof)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = children.clean_env(FLASHCLAIM_REDIS_URL=url, FLASHCLAIM_ADMIN_TOKEN="t",
                             FLASHCLAIM_NAMESPACE="fc", GC_LOG=str(data / "gc.log"))
    with open(data / "serve.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-c", GC_HOOK, "serve", "--port", str(port)],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        children.wait_ready(base, proc)
        for campaign in ("plenty", "paced"):
            httpx.post(base + "/v1/admin/campaigns", headers={"Authorization": "Bearer t"},
                       json={"id": campaign, "name": campaign, "stock": 10**9,
                             "coupons": [{"type": "cash", "value": 500}]}).raise_for_status()
        top = Load(SECONDS, 64, 2, False).measure("granted", base, "/v1/campaigns/plenty/claims",
                                                  users="plenty")
        rate = top.rps / divide
        assert server.process is not None
        pids = {"service": proc.pid, "valkey": server.process.pid, "load": os.getpid()}
        before = {k: sched(p) for k, p in pids.items()}
        calls = script_calls(url)
        start = time.time()
        latencies: list[float] = []
        elapsed = uvloop.run(loadgen.run_paced(
            "127.0.0.1", port,
            lambda n: claim_request("/v1/campaigns/paced/claims", f"paced-{n}", n, REAL),
            rate, SECONDS, 256, lambda r: latencies.append(r.latency)))
        end = time.time()
        after = {k: sched(p) for k, p in pids.items()}
        calls = script_calls(url) - calls
        result = _summary("paced", latencies, elapsed)
        pauses = [line.split() for line in (data / "gc.log").read_text().splitlines()]
        during = [p for p in pauses if start <= float(p[0]) <= end]
        print(f"AOF {aof}: max {top.rps:,.0f}/s, paced at {rate:,.0f}/s: p50 "
              f"{result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, p99/p50 "
              f"{result.p99_ms / result.p50_ms:.1f}; GC pauses over 1 ms: "
              f"{[(p[1], p[2]) for p in during]}; {len(latencies) / max(calls, 1):.1f} claims "
              f"per script call; service CPU per claim "
              f"{(after['service'][0] - before['service'][0]) / 1e3 / len(latencies):.0f} us")
        for name in pids:
            ran = (after[name][0] - before[name][0]) / 1e9 / elapsed
            waited = (after[name][1] - before[name][1]) / 1e9 / elapsed
            print(f"  {name}: ran {ran:.0%} of the wall time, waited for a core {waited:.1%}")
    finally:
        children.stop(proc)
        server.stop()


class _Bare(asyncio.Protocol):
    """A Redis connection with nothing but hiredis: the least a round trip can cost."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.waiting: list[asyncio.Future[object]] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            self.waiting.pop(0).set_result(reply)

    def call(self, payload: bytes) -> asyncio.Future[object]:
        assert self.transport is not None
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        self.transport.write(payload)
        return future


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _round_trips(url: str, n: int = 20_000) -> None:
    client = Redis.from_url(url)
    await client.ping()
    used = _cpu()
    for _ in range(n):
        await client.ping()
    print(f"redis-py: {(_cpu() - used) / n * 1e6:.0f} us of CPU per PING round trip")
    await client.aclose()
    address = urlparse(url)
    assert address.hostname is not None and address.port is not None
    _, bare = await asyncio.get_running_loop().create_connection(
        _Bare, address.hostname, address.port)
    if address.password:
        password = address.password.encode()
        await bare.call(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(password), password))
    used = _cpu()
    for _ in range(n):
        await bare.call(b"*1\r\n$4\r\nPING\r\n")
    print(f"bare asyncio protocol: {(_cpu() - used) / n * 1e6:.0f} us of CPU per round trip")


def round_trips() -> None:
    server = EmbeddedServer(Path(tempfile.mkdtemp(prefix="flashclaim-rt-")))
    url = server.start()
    try:
        uvloop.run(_round_trips(url))
    finally:
        server.stop()


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "always"
    if what == "roundtrip":
        round_trips()
    else:
        probe(what, float(sys.argv[2]) if len(sys.argv) > 2 else 2.0)
