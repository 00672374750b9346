"""A small, low-overhead HTTP/1.1 load generator: keep-alive connections on asyncio.

Used by `flashclaim demo` and the benchmark. It speaks just enough HTTP for the
service (Content-Length bodies, keep-alive) so that the generator, not the
service, stays cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Response:
    request: Request
    status: int
    body: bytes
    latency: float  # seconds


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self._reader, self._writer

    async def send(self, req: Request) -> tuple[int, bytes]:
        reader, writer = await self._open()
        head = [f"{req.method} {req.path} HTTP/1.1", f"Host: {self.host}",
                f"Content-Length: {len(req.body)}"]
        head += [f"{k}: {v}" for k, v in req.headers]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + req.body)
        status_line = await reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length, close = 0, False
        while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        body = await reader.readexactly(length)
        if close:
            await self.close()
        return status, body

    async def attempt(self, req: Request) -> tuple[int, bytes]:
        """send(), with a failed connection answered as status 0 (and closed for a retry)."""
        try:
            return await self.send(req)
        except (OSError, asyncio.IncompleteReadError) as exc:
            await self.close()
            return 0, repr(exc).encode()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None


async def run(
    host: str, port: int, requests: Iterable[Request], concurrency: int,
    on_response: Callable[[Response], None],
) -> float:
    """Send every request over `concurrency` keep-alive connections; returns elapsed seconds."""
    queue = iter(requests)

    async def worker() -> None:
        conn = Connection(host, port)
        try:
            for req in queue:  # shared iterator: each request is taken once
                started = time.perf_counter()
                status, body = await conn.attempt(req)
                on_response(Response(req, status, body, time.perf_counter() - started))
        finally:
            await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


async def run_for(
    host: str, port: int, make: Callable[[int], Request], seconds: float, concurrency: int,
    on_response: Callable[[Response], None],
) -> float:
    """Closed loop: `concurrency` connections send back to back for `seconds`."""
    deadline = time.perf_counter() + seconds

    def requests() -> Iterator[Request]:
        n = 0
        while time.perf_counter() < deadline:
            n += 1
            yield make(n)

    return await run(host, port, requests(), concurrency, on_response)


async def run_paced(
    host: str, port: int, make: Callable[[int], Request], rate: float, seconds: float,
    concurrency: int, on_response: Callable[[Response], None],
) -> float:
    """Open loop: requests start at a fixed rate whatever the answers' speed; latency counts
    from the scheduled start, so queueing is not hidden (no coordinated omission)."""
    total = int(rate * seconds)
    counter = iter(range(total))
    started = time.perf_counter()

    async def worker() -> None:
        conn = Connection(host, port)
        try:
            for i in counter:
                scheduled = started + i / rate
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                req = make(i)
                status, body = await conn.attempt(req)
                on_response(Response(req, status, body, time.perf_counter() - scheduled))
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started
