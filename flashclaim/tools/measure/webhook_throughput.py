"""Webhook delivery on the embedded default: a local receiver (asyncio, HTTP/1.1 keep-alive),
one endpoint, the dispatcher in this process.

1. Throughput: EVENTS events waiting in the outbox, delivered in order to one endpoint:
   events a second.
2. Lag at a steady load: events told at RATE a second for SECONDS (about the demo's grant
   rate), each event's delay from its outbox write to its receipt: p50, p99, max.

    python -m flashclaim.tools.measure.webhook_throughput
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from flashclaim.keys import KeySpace
from flashclaim.outbox import OutEvent
from flashclaim.runtime.embedded import EmbeddedServer, free_port
from flashclaim.store.connection import tool_client
from flashclaim.tools.loadgen import percentile
from flashclaim.webhooks.dispatcher import Dispatcher, Policy
from flashclaim.webhooks.endpoints import EndpointStore

EVENTS = 20_000
RATE = 500
SECONDS = 10
KS = KeySpace("whbench")


class Receiver:
    """Counts deliveries and when each arrived (by the event's sequence number)."""

    def __init__(self) -> None:
        self.arrived: dict[int, float] = {}
        self.port = free_port()
        self.expected = 0
        self.all_in = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                n = int(body.split(b'"n":', 1)[1].split(b"}", 1)[0])
                self.arrived[n] = time.time()
                if len(self.arrived) >= self.expected:
                    self.all_in.set()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionResetError):
            writer.close()


async def _measure(url: str) -> None:
    r = tool_client(url, timeout_s=30)
    receiver = Receiver()
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", receiver.port)
    await EndpointStore(r, KS).create(f"http://127.0.0.1:{receiver.port}/", ["claim.granted"], 3)
    told: dict[int, float] = {}

    def event(n: int) -> OutEvent:
        return OutEvent(f"claim.granted:{n}", "claim.granted", "c", int(time.time() * 1000),
                        {"n": n})
    pipe = r.pipeline(transaction=False)
    for n in range(EVENTS):
        pipe.xadd(KS.outbox, event(n).fields())  # type: ignore[arg-type]
    await pipe.execute()
    dispatcher = Dispatcher(r, KS, Policy(poll_s=0.01))
    stop = asyncio.Event()
    started = time.perf_counter()
    receiver.expected = EVENTS
    task = asyncio.create_task(dispatcher.run(stop))
    await receiver.all_in.wait()
    took = time.perf_counter() - started
    print(f"throughput: {EVENTS:,} waiting events delivered in order to one endpoint in "
          f"{took:.1f} s: {EVENTS / took:,.0f} events/s")
    base = EVENTS
    receiver.all_in.clear()
    receiver.expected = base + RATE * SECONDS
    for i in range(RATE * SECONDS):
        n = base + i
        told[n] = time.time()
        await r.xadd(KS.outbox, event(n).fields())  # type: ignore[arg-type]
        await asyncio.sleep(max(0.0, (i + 1) / RATE - (time.time() - told[base])))
    await receiver.all_in.wait()
    lags = sorted((receiver.arrived[n] - told[n]) * 1000 for n in told)
    print(f"lag at {RATE} events/s for {SECONDS} s: p50 {percentile(lags, 50):.1f} ms, "
          f"p99 {percentile(lags, 99):.1f} ms, max {lags[-1]:.1f} ms")
    stop.set()
    await task
    server.close()
    await r.aclose()


def main() -> None:
    data = Path(tempfile.mkdtemp(prefix="flashclaim-wh-"))
    embedded = EmbeddedServer(data)
    url = embedded.start()
    try:
        asyncio.run(_measure(url))
    finally:
        embedded.stop()


if __name__ == "__main__":
    main()
