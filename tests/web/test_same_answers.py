"""The claim's answers, byte for byte, for a table of requests over raw sockets to a real
`flashclaim serve`, through both paths that answer claims: the listener's own answers from
memory (FLASHCLAIM_HTTP_LISTENER_ANSWERS=on, web/http_server.py) and the app's ASGI endpoint
(=off). Each path must give the same status line, the same headers in the same order, and
the same body. Times and generated ids are masked; everything else is compared exactly.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from flashclaim.tools.children import serving

TOKEN = "same-answers-admin-token"
SOLD_OUT = (b'{"error":"sold_out","message":"All coupons of this campaign have been claimed.",'
            b'"server_time":"T"}')
HELD = (b'{"error":"already_claimed","message":"This user already holds the most coupons this '
        b'campaign allows.","server_time":"T"}')
JSON = b"application/json"


@dataclass(frozen=True)
class Answer:
    status: bytes  # the status line
    headers: dict[bytes, bytes]  # lower-case names; content-length checked against the body
    body: bytes  # times masked as "T", claim and coupon ids as "ID"
    names: tuple[bytes, ...] = ()  # the header names as sent, in order


# What uvicorn writes before the app's own headers, and the app's, in order.
SERVER_HEADERS = (b"date", b"server")
CLAIM_HEADERS = (b"content-type", b"content-length")


def mask(body: bytes) -> bytes:
    body = re.sub(rb'"(server_time|claimed_at|valid_from|valid_until)":"[^"]+"', rb'"\1":"T"',
                  body)
    return re.sub(rb'"(claim_id|coupon_id)":"[^"]+"', rb'"\1":"ID"', body)


def read_answers(sock: socket.socket, count: int) -> list[Answer]:
    """`count` responses from the connection, in order."""
    buffer, answers = b"", list[Answer]()
    sock.settimeout(10)
    while len(answers) < count:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            assert chunk, f"the connection closed after {len(answers)} answers"
            buffer += chunk
        head, buffer = buffer.split(b"\r\n\r\n", 1)
        status, *lines = head.split(b"\r\n")
        pairs = [line.split(b": ", 1) for line in lines]
        headers = {k: v for k, v in pairs}
        length = int(headers[b"content-length"])
        while len(buffer) < length:
            chunk = sock.recv(65536)
            assert chunk, "the connection closed mid-body"
            buffer += chunk
        body, buffer = buffer[:length], buffer[length:]
        answers.append(Answer(status, headers, mask(body), tuple(k for k, _ in pairs)))
    return answers


def closed_after(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, TimeoutError):
        return False


@pytest.fixture(scope="module", params=["on", "off"], ids=["listener", "app"])
def listener_answers(request: pytest.FixtureRequest) -> str:
    """FLASHCLAIM_HTTP_LISTENER_ANSWERS: every test of this module runs through both paths."""
    return str(request.param)


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory, listener_answers: str) -> Iterator[int]:
    data = tmp_path_factory.mktemp("same") / "data"
    env = {"FLASHCLAIM_HTTP_LISTENER_ANSWERS": listener_answers}
    with serving(data, "--admin-token", TOKEN, env=env) as base:
        admin = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=base, headers=admin) as http:
            for cid, stock in (("gone", 1), ("open", 1000)):
                http.post("/v1/admin/campaigns", json={
                    "id": cid, "name": cid, "stock": stock, "per_user_limit": 1,
                    "coupons": [{"type": "cash", "value": 500}]}).raise_for_status()
            for cid, extra in (("slow", {"rate_limit": {"max": 1, "per_seconds": 600},
                                         "per_user_limit": 5}),
                               ("daily", {"per_user_limit": 5, "per_user_daily_limit": 1})):
                http.post("/v1/admin/campaigns", json={
                    "id": cid, "name": cid, "stock": 100, **extra,
                    "coupons": [{"type": "cash", "value": 500}]}).raise_for_status()
            for cid in ("slow", "daily"):  # each user's first tap there: granted
                assert http.post(f"/v1/campaigns/{cid}/claims",
                                 headers={"X-User-Id": "limited"}).status_code == 201
            taken = http.post("/v1/campaigns/gone/claims", headers={"X-User-Id": "first"})
            assert taken.status_code == 201
            held = http.post("/v1/campaigns/open/claims", headers={"X-User-Id": "holder"})
            assert held.status_code == 201
        yield int(base.rsplit(":", 1)[1])


def tap(campaign: str, user: str | None, body: bytes | None = b'{"channel":"app"}',
        extra: bytes = b"", version: bytes = b"HTTP/1.1") -> bytes:
    head = b"POST /v1/campaigns/" + campaign.encode() + b"/claims " + version + b"\r\n"
    head += b"Host: t\r\n"
    if user is not None:
        head += b"X-User-Id: " + user.encode() + b"\r\n"
    if body is not None:
        head += b"Content-Type: application/json\r\nContent-Length: " \
            + str(len(body)).encode() + b"\r\n"
    return head + extra + b"\r\n" + (body or b"")


def error(status: bytes, code: str, message: str) -> Answer:
    body = (b'{"error":"' + code.encode() + b'","message":"' + message.encode()
            + b'","server_time":"T"}')
    return Answer(status, {b"content-type": JSON, b"content-length": str(len(body)).encode()},
                  body)


GONE = Answer(b"HTTP/1.1 410 Gone", {b"content-type": JSON,
                                     b"content-length": str(len(SOLD_OUT)).encode()}, SOLD_OUT)
HOLDS = Answer(b"HTTP/1.1 409 Conflict", {b"content-type": JSON,
                                          b"content-length": str(len(HELD)).encode()}, HELD)

CASES: list[tuple[str, bytes, list[Answer]]] = [
    ("sold out, JSON body", tap("gone", "u1"), [GONE]),
    ("sold out, no body", tap("gone", "u2", None), [GONE]),
    ("sold out, again (from memory)", tap("gone", "u3"), [GONE]),
    ("the user holds its limit", tap("open", "holder"), [HOLDS]),
    ("no user", tap("gone", None),
     [error(b"HTTP/1.1 401 Unauthorized", "unauthenticated",
            "Send the user id in the X-User-Id header.")]),
    ("a bad user id", tap("gone", "bad id"),
     [error(b"HTTP/1.1 400 Bad Request", "invalid_request",
            "X-User-Id must be 1-128 chars of A-Za-z0-9_.:@-.")]),
    ("malformed JSON", tap("gone", "u4", b'{"channel":'),
     [error(b"HTTP/1.1 400 Bad Request", "invalid_request", "The body is not valid JSON.")]),
    ("an unknown field", tap("gone", "u5", b'{"chanel":"app"}'),
     [error(b"HTTP/1.1 400 Bad Request", "invalid_request", "Unknown field 'chanel'.")]),
    ("a channel of the wrong type", tap("gone", "u6", b'{"channel":7}'),
     [error(b"HTTP/1.1 400 Bad Request", "invalid_request",
            "channel: expected `str | null`, got `int`.")]),
    ("a repeated key", tap("gone", "u7", b'{"channel":"a","channel":"b"}'),
     [error(b"HTTP/1.1 400 Bad Request", "invalid_request",
            "The key 'channel' appears twice in the JSON body.")]),
    ("not JSON", tap("gone", "u8").replace(b"application/json", b"text/plain"),
     [error(b"HTTP/1.1 415 Unsupported Media Type", "unsupported_media_type",
            "Send the body as application/json.")]),
    ("two taps pipelined", tap("gone", "u9") + tap("open", "holder"), [GONE, HOLDS]),
    ("an Idempotency-Key too long", tap("gone", "u10", extra=b"Idempotency-Key: " + b"k" * 300
                                         + b"\r\n"),
     [error(b"HTTP/1.1 400 Bad Request", "invalid_request",
            "Idempotency-Key must be 1-255 printable ASCII characters.")]),
    ("a keyed tap after sell-out", tap("gone", "u11", extra=b"Idempotency-Key: k-1\r\n"),
     [GONE]),
    ("no such campaign", tap("nope", "u12"),
     [error(b"HTTP/1.1 404 Not Found", "campaign_not_found", "No such campaign.")]),
]


@pytest.mark.parametrize(("name", "request_bytes", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_request_gets_exactly_its_answer(port: int, name: str, request_bytes: bytes,
                                              expected: list[Answer]) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request_bytes)
        got = read_answers(sock, len(expected))
    for answer, want in zip(got, expected, strict=True):
        assert answer.status == want.status, name
        assert answer.body == want.body, name
        for header, value in want.headers.items():
            if header == b"content-length":  # the real length: the masked body's differs
                continue
            assert answer.headers[header] == value, (name, header)
        assert int(answer.headers[b"content-length"]) > 0
        assert answer.names == SERVER_HEADERS + CLAIM_HEADERS, name
        assert answer.headers[b"server"] == b"uvicorn"


def test_a_tap_that_expects_100_continue_gets_it_first(port: int) -> None:
    """The interim response the ASGI path sends when the body is asked for: a tap holding
    its body back for it is never answered by the listener without it."""
    raw = tap("gone", "c1", extra=b"Expect: 100-continue\r\n")
    head, body = raw.split(b"\r\n\r\n", 1)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head + b"\r\n\r\n")
        sock.settimeout(10)
        interim = b""
        while b"\r\n\r\n" not in interim:
            chunk = sock.recv(1)
            assert chunk, "closed before the interim response"
            interim += chunk
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        [answer] = read_answers(sock, 1)
    assert (answer.status, answer.body) == (GONE.status, GONE.body)


def test_many_taps_in_one_packet_are_all_answered_in_order(port: int) -> None:
    """Hundreds of taps pipelined in one write: every one answered, in order, on a connection
    that then stays open for the next (an answer written by the listener leaves no stale
    keep-alive timer behind)."""
    taps = [tap("gone", f"p{i}") if i % 2 else tap("open", "holder") for i in range(600)]
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"".join(taps))
        got = read_answers(sock, len(taps))
        sock.sendall(tap("gone", "p-after"))
        [after] = read_answers(sock, 1)
    assert [a.status for a in got] == [GONE.status if i % 2 else HOLDS.status
                                       for i in range(600)]
    assert after.status == GONE.status


def test_pipelined_taps_split_inside_a_body_are_all_answered(port: int) -> None:
    """Ten taps pipelined in two writes, the cut inside the sixth one's body: the first
    answers are sent while that body is still coming, and the connection stays open (it was
    once closed as if the request being answered had not finished sending)."""
    taps = b"".join(tap("gone", f"s{i}") for i in range(10))
    sixth = taps.index(b"X-User-Id: s5")
    cut = taps.index(b'{"channel"', sixth) + 5
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(taps[:cut])
        time.sleep(0.2)  # the gap is the point: the first taps are answered meanwhile
        sock.sendall(taps[cut:])
        got = read_answers(sock, 10)
    assert [a.status for a in got] == [GONE.status] * 10


def test_the_listener_answers_only_when_on(port: int, listener_answers: str) -> None:
    """The table went through the path it names: with listener answers on, taps were
    answered by the listener; off, none was."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for i in range(3):  # one at a time: each arrives whole, on a connection at rest
            sock.sendall(tap("gone", f"m{i}"))
            assert read_answers(sock, 1)[0].status == GONE.status
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    [line] = [x for x in metrics.splitlines()
              if x.startswith("flashclaim_claims_in_listener_total ")]
    answered = float(line.split()[1])
    assert (answered >= 3) if listener_answers == "on" else (answered == 0), answered


def test_the_limits_answer_with_their_wait(port: int) -> None:
    """A tap over the rate limit and one over the daily limit: the refusal and a Retry-After
    (its value is the time left, so only its range is fixed)."""
    for campaign, code, message, most in (
            ("slow", "rate_limited", "Too many taps; slow down.", 600),
            ("daily", "daily_limit", "This user has claimed today's limit; try again tomorrow.",
             86_400)):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(tap(campaign, "limited"))
            [answer] = read_answers(sock, 1)
        want = error(b"HTTP/1.1 429 Too Many Requests" if code == "rate_limited"
                     else b"HTTP/1.1 409 Conflict", code, message)
        assert (answer.status, answer.body) == (want.status, want.body), campaign
        assert 1 <= int(answer.headers[b"retry-after"]) <= most, campaign
        assert answer.names == SERVER_HEADERS + CLAIM_HEADERS + (b"retry-after",), campaign


def test_jwt_identity_answers_the_same_way(tmp_path: Path, listener_answers: str) -> None:
    """The user from a bearer JWT instead of the gateway's header: the same answers, and
    the same 401 for a missing or a bad token."""
    import jwt

    key = "same-answers-jwt-key-of-thirty-two-chars"
    env = {"FLASHCLAIM_AUTH": "jwt", "FLASHCLAIM_JWT_KEY": key,
           "FLASHCLAIM_HTTP_LISTENER_ANSWERS": listener_answers}
    with serving(tmp_path / "data", "--admin-token", TOKEN, env=env) as base:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            http.post("/v1/admin/campaigns", json={
                "id": "gone", "name": "gone", "stock": 1,
                "coupons": [{"type": "cash", "value": 500}]}).raise_for_status()
        port = int(base.rsplit(":", 1)[1])
        good = jwt.encode({"sub": "j1", "exp": int(time.time()) + 600}, key, algorithm="HS256")
        forged = jwt.encode({"sub": "j2", "exp": int(time.time()) + 600}, "x" * 32,
                            algorithm="HS256")
        cases = [
            (b"Authorization: Bearer " + good.encode() + b"\r\n", b"HTTP/1.1 201 Created", None),
            (b"Authorization: Bearer " + good.encode() + b"\r\n", b"HTTP/1.1 409 Conflict",
             HELD),
            (b"", b"HTTP/1.1 401 Unauthorized", error(
                b"", "unauthenticated", "Send a bearer token: Authorization: Bearer <JWT>.").body),
            (b"Authorization: Bearer " + forged.encode() + b"\r\n", b"HTTP/1.1 401 Unauthorized",
             error(b"", "unauthenticated", "The bearer token is not valid.").body),
        ]
        for extra, status, body in cases:
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(tap("gone", None, extra=extra))
                [answer] = read_answers(sock, 1)
            assert answer.status == status, (extra, answer.body)
            if body is not None:
                assert answer.body == body


def test_the_framing_variants_get_the_same_answer(port: int) -> None:
    """HTTP/1.0 (answered, then closed), Connection: close, a chunked body, and a body that
    arrives after its head: each answered as the plain request is."""
    variants = {
        "HTTP/1.0": tap("gone", "f1", version=b"HTTP/1.0"),
        "Connection: close": tap("gone", "f2", extra=b"Connection: close\r\n"),
        "chunked": (b"POST /v1/campaigns/gone/claims HTTP/1.1\r\nHost: t\r\nX-User-Id: f3\r\n"
                    b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"11\r\n{\"channel\":\"app\"}\r\n0\r\n\r\n"),
    }
    for name, raw in variants.items():
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(raw)
            [answer] = read_answers(sock, 1)
            assert (answer.status.split(b" ", 1)[1], answer.body) == (b"410 Gone", SOLD_OUT), name
            closing = (b"connection",) if name != "chunked" else ()
            assert answer.names == SERVER_HEADERS + CLAIM_HEADERS + closing, name
            assert answer.headers.get(b"connection", b"close") == b"close", name
            if closing:
                assert closed_after(sock), f"{name}: the connection stayed open"
    with socket.create_connection(("127.0.0.1", port)) as sock:  # the body after its head
        raw = tap("gone", "f4")
        head, body = raw.split(b"\r\n\r\n", 1)
        sock.sendall(head + b"\r\n\r\n")
        time.sleep(0.2)  # the gap is the point here: the body has not come with its head
        sock.sendall(body)
        [answer] = read_answers(sock, 1)
        assert (answer.status, answer.body) == (b"HTTP/1.1 410 Gone", SOLD_OUT)


def test_a_granted_claim_and_its_keyed_replay(port: int, tmp_path: Path) -> None:
    """A grant (201) and the same Idempotency-Key again (200): the same claim, byte for
    byte, ids and times included."""
    raw = tap("open", "g1", extra=b"Idempotency-Key: replay-1\r\n")
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(raw)
        [granted] = read_answers(sock, 1)
        sock.sendall(raw)
        [replay] = read_answers(sock, 1)
    assert granted.status == b"HTTP/1.1 201 Created" and replay.status == b"HTTP/1.1 200 OK"
    assert granted.body == replay.body
    assert granted.body.startswith(b'{"claim_id":"ID","campaign_id":"open","user_id":"g1",')
