"""Slow, unfinished and oversized requests: bounded in time and memory, never a grant.

In-process tests drive the claim endpoint with hand-made ASGI messages (a body that
never ends, a client that leaves mid-body); the listener's limits are tested on a
real `flashclaim serve` over raw sockets.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import orjson

from flashclaim.runtime.embedded import EmbeddedServer, free_port
from flashclaim.settings import Settings
from flashclaim.tools import children

from helpers import app_client, create_campaign, stats

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]


def claim_scope(campaign_id: str, user: str, content_length: int | None) -> dict[str, Any]:
    headers = [(b"x-user-id", user.encode()), (b"content-type", b"application/json")]
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": f"/v1/campaigns/{campaign_id}/claims",
            "raw_path": f"/v1/campaigns/{campaign_id}/claims".encode(), "query_string": b"",
            "root_path": "", "headers": headers, "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8000)}


async def call(app: Any, scope: dict[str, Any], receive: Receive) -> tuple[int, Message]:
    """Run one request through the ASGI app; its status and decoded JSON body."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], orjson.loads(sent[1]["body"])


def messages(*items: Message) -> Receive:
    queue = list(items)

    async def receive() -> Message:
        return queue.pop(0)
    return receive


async def never_finishes() -> Message:
    await asyncio.Event().wait()  # a client that sent its headers and nothing more
    raise AssertionError("unreachable")


async def test_a_client_that_leaves_mid_body_is_not_granted(settings: Settings) -> None:
    async with app_client(settings) as client:
        c = await create_campaign(client)
        app = client._transport.app  # type: ignore[attr-defined]
        left = messages({"type": "http.request", "body": b"", "more_body": True},
                        {"type": "http.disconnect"})
        status, body = await call(app, claim_scope(c["id"], "u1", 18), left)
        assert (status, body["error"]) == (400, "invalid_request")
        short = messages({"type": "http.request", "body": b"{}", "more_body": False})
        status, body = await call(app, claim_scope(c["id"], "u2", 18), short)  # says 18, sent 2
        assert (status, body["error"]) == (400, "invalid_request")
        assert (await stats(client, c["id"]))["granted"] == 0


async def test_slow_bodies_hold_no_claim_slot_and_time_out(settings: Settings) -> None:
    """2,000 unfinished bodies once made every real claim 503 ("shedding load")."""
    slow = replace(settings, max_in_flight=2, body_timeout_s=0.5)
    async with app_client(slow) as client:
        c = await create_campaign(client)
        app = client._transport.app  # type: ignore[attr-defined]
        stuck = [asyncio.create_task(call(app, claim_scope(c["id"], f"slow{i}", 18),
                                          never_finishes)) for i in range(20)]
        await asyncio.sleep(0)  # all 20 are now waiting for their bodies
        real = await client.post(f"/v1/campaigns/{c['id']}/claims", json={"channel": "app"},
                                 headers={"X-User-Id": "real"})
        assert real.status_code == 201
        answers = await asyncio.wait_for(asyncio.gather(*stuck), 10)
        assert {(status, body["error"]) for status, body in answers} == {
            (408, "request_timeout")}
        assert (await stats(client, c["id"]))["granted"] == 1


async def test_error_bodies_with_client_input_are_not_cached(settings: Settings) -> None:
    """The rejection cache was keyed by messages naming client-chosen fields: 20,000
    random field names grew the process by 360 MiB."""
    app = app_client(settings)
    async with app as client:
        c = await create_campaign(client)
        endpoint = app.app.endpoint
        assert endpoint is not None  # (the public listener takes claims)
        for _ in range(500):
            response = await client.post(
                f"/v1/campaigns/{c['id']}/claims", headers={"X-User-Id": "u1"},
                json={secrets.token_hex(8): 1})
            assert response.status_code == 400 and "Unknown field" in response.json()["message"]
        for user in ("u1", "u2", "u3"):  # fixed rejections are still cached, once each
            await client.post(f"/v1/campaigns/{c['id']}/claims",
                              headers={"X-User-Id": user}, json={"channel": "app"})
        await create_campaign(client, id="gone", stock=1)
        for user in ("a", "b", "c"):
            await client.post("/v1/campaigns/gone/claims", headers={"X-User-Id": user})
        assert endpoint.cached_bodies == 1  # sold_out


# -- the listener's limits, on a real `flashclaim serve` ---------------------------------

@contextmanager
def serve(tmp_path: Path, server: EmbeddedServer, **env: str) -> Iterator[tuple[int, int]]:
    """`flashclaim serve` on an existing Redis with these settings; (port, pid)."""
    port = free_port()
    proc = children.start(
        ["serve", "--port", str(port), "--redis-url", server.url, "--data-dir",
         str(tmp_path / "data")], children.clean_env(**env), tmp_path / "serve.log")
    try:
        children.wait_ready(f"http://127.0.0.1:{port}", proc)
        yield port, proc.pid
    finally:
        assert children.stop(proc) == 0, (tmp_path / "serve.log").read_text()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def closed_by_server(sock: socket.socket, timeout: float) -> bytes | None:
    """What the server sent before closing the connection; None if it stayed open."""
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return received


def test_an_oversize_request_head_is_refused_early(tmp_path: Path,
                                                   server: EmbeddedServer) -> None:
    """A 300 MiB header once grew the process by 490 MiB."""
    with serve(tmp_path, server, FLASHCLAIM_HTTP_MAX_HEADER_BYTES="8192") as (port, pid):
        before = rss_kib(pid)
        sent = 0
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
            try:
                for _ in range(256):  # up to 64 MiB, unless the server closes first
                    sock.sendall(b"a" * 262_144)
                    sent += 262_144
            except (BrokenPipeError, ConnectionResetError):
                pass
            answer = closed_by_server(sock, 10)
        assert sent < 64 * 1024 * 1024  # it stopped reading long before the end
        assert answer is None or answer.startswith(b"HTTP/1.1 431") or answer == b""
        assert rss_kib(pid) - before < 20 * 1024
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200


def test_unfinished_heads_and_silent_connections_are_closed(tmp_path: Path,
                                                           server: EmbeddedServer) -> None:
    """20,600 connections with unfinished headers once kept /healthz down for 60 s."""
    with serve(tmp_path, server, FLASHCLAIM_HTTP_HEADER_TIMEOUT_S="1") as (port, _):
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(30)]
        try:
            for i, sock in enumerate(socks):
                if i % 2:  # half send part of a head; the others never send a byte
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")
            started = time.monotonic()
            for sock in socks:
                assert closed_by_server(sock, 10) is not None
            assert time.monotonic() - started < 10
        finally:
            for sock in socks:
                sock.close()
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200


def test_connections_beyond_the_cap_are_refused_at_once(tmp_path: Path,
                                                         server: EmbeddedServer) -> None:
    env = {"FLASHCLAIM_HTTP_MAX_CONNECTIONS": "5", "FLASHCLAIM_HTTP_HEADER_TIMEOUT_S": "2"}
    with serve(tmp_path, server, **env) as (port, _):
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
        try:
            with socket.create_connection(("127.0.0.1", port)) as extra:
                answer = closed_by_server(extra, 5)
            assert answer is not None and answer.startswith(b"HTTP/1.1 503")
            head, _, body = answer.partition(b"\r\n\r\n")  # (its length was once off by one)
            assert f"content-length: {len(body)}".encode() in head.split(b"\r\n")
            assert orjson.loads(body)["error"] == "unavailable"
            for sock in held:  # the idle ones are closed by the head timeout ...
                assert closed_by_server(sock, 10) is not None
        finally:
            for sock in held:
                sock.close()
        # ... and the listener serves again
        deadline = time.monotonic() + 10
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_the_listener_keeps_the_body_deadline(tmp_path: Path, server: EmbeddedServer) -> None:
    """A body that does not come with its head gets the listener's deadline (408, closed);
    one that arrives in pieces within it is served; the app arms no timer of its own."""
    env = {"FLASHCLAIM_HTTP_BODY_TIMEOUT_S": "1", "FLASHCLAIM_ADMIN_TOKEN": "tok"}
    with serve(tmp_path, server, **env) as (port, _):
        base = f"http://127.0.0.1:{port}"
        httpx.post(base + "/v1/admin/campaigns", headers={"Authorization": "Bearer tok"},
                   json={"id": "slow", "name": "slow", "stock": 5,
                         "coupons": [{"type": "cash", "value": 100}]}).raise_for_status()
        head = (b"POST /v1/campaigns/slow/claims HTTP/1.1\r\nHost: x\r\nX-User-Id: u%d\r\n"
                b"Content-Type: application/json\r\nContent-Length: 18\r\n\r\n")
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(head % 1 + b'{"chan')  # and then nothing
            started = time.monotonic()
            answer = closed_by_server(sock, 10)
            waited = time.monotonic() - started
        assert answer is not None and answer.startswith(b"HTTP/1.1 408"), answer
        assert b'"request_timeout"' in answer and 0.9 < waited < 5, waited
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(head % 2 + b'{"chan')
            time.sleep(0.2)  # the client's own pace between its two packets
            sock.sendall(b'nel": "app"}')
            sock.settimeout(10)
            reply = sock.recv(65536)
        assert reply.startswith(b"HTTP/1.1 201"), reply
        stats = httpx.get(base + "/v1/admin/campaigns/slow",
                          headers={"Authorization": "Bearer tok"}).json()["stats"]
        assert stats["granted"] == 1


def test_a_request_http_cannot_parse_gets_a_json_400(tmp_path: Path,
                                                     server: EmbeddedServer) -> None:
    with serve(tmp_path, server) as (port, _), \
            socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /v1/campaigns/x/claims HTTP/1.1\r\nHost: x\r\nX-User-Id: u\r\n"
                     b"Transfer-Encoding: U\r\nContent-Length: 2\r\n\r\n{}")
        answer = closed_by_server(sock, 10)
    assert answer is not None and answer.startswith(b"HTTP/1.1 400"), answer
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head
    assert orjson.loads(body)["error"] == "invalid_request"
