"""uvicorn's httptools protocol with the limits a public listener needs.

uvicorn bounds neither the size of a request head nor the time a client may take
to send it, and keeps connections that never send a byte. Here, per connection:

- the head (request line and headers) must arrive within header_timeout_s of the
  connection opening or of the first chunk of a head that arrives in pieces, else
  the connection is closed;
- the head may not exceed header_max_bytes: the client gets 431 and is closed
  before more of it is buffered;
- the body must arrive within body_timeout_s of the head, else the client gets 408 and
  is closed. The timer is armed only for a body that did not come with its head (the
  usual request arrives in one piece and costs no timer), and the app is told the
  deadline is kept here (BODY_DEADLINE_KEPT in the scope's extensions), so it arms none;
- a response sent before its request body was complete closes the connection (a
  client trickling a body holds nothing after its 408);
- beyond max_connections open connections per process, a new one gets 503 and is
  closed at once.

And one shortcut, for the taps a flash sale is made of: a POST whose body arrives with its
head is held until the body is complete, then offered to the app's `answer_now` (the claim
endpoint's: a refusal memory knows, worked out by the same checks in the same order as the
ASGI path). When it answers, the response is written here, byte for byte what uvicorn writes
for the same ASGI messages, and no ASGI task runs at all; otherwise the request goes on as
uvicorn would have run it. It relies on uvicorn's internals (the range pinned in
pyproject.toml); tests/web/test_same_answers.py holds its bytes to the ASGI path's.

The limits come from the Settings in the environment (serve passes them to every
worker that way); see the README's settings table.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Protocol, cast

import orjson
from starlette.types import Scope
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

from flashclaim.errors import request_timeout
from flashclaim.settings import Settings
from flashclaim.web.http import BODY_DEADLINE_KEPT


def _closing_answer(status: str, code: str, message: str, extra_headers: str = "") -> bytes:
    """A whole JSON error response, written by the listener itself, that closes the
    connection (the app never sees the request)."""
    body = orjson.dumps({"error": code, "message": message})
    return (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\nconnection: close\r\n"
            f"{extra_headers}content-length: {len(body)}\r\n\r\n").encode() + body


_431 = _closing_answer("431 Request Header Fields Too Large", "headers_too_large",
                       "The request head is over the limit.")
_503 = _closing_answer("503 Service Unavailable", "unavailable",
                       "Too many connections; try again.", "retry-after: 1\r\n")
_400 = _closing_answer("400 Bad Request", "invalid_request", "Malformed HTTP request.")


class AnswersNow(Protocol):
    """An app that can answer some requests from their whole body without an ASGI cycle:
    (status, headers beyond the server's own, body), or None to be run as usual."""

    def answer_now(self, scope: Scope, received: bytes
                   ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None: ...


@functools.cache
def _settings() -> Settings:
    return Settings.from_env()


@functools.cache
def _408(seconds: float) -> bytes:
    error = request_timeout(seconds)
    return _closing_answer("408 Request Timeout", error.code, error.message)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        s = _settings()
        self._max_head = s.header_max_bytes
        self._head_timeout = s.header_timeout_s
        self._max_connections = s.max_connections
        self._in_head = True
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timeout = s.body_timeout_s
        self._body_timer: asyncio.TimerHandle | None = None
        self._answers: AnswersNow | None = self.app if (
            s.listener_answers == "on" and hasattr(self.app, "answer_now")) else None
        self._holding = False  # inside on_headers_complete, for a request that may be answered
        self._held: tuple[RequestResponseCycle, ASGI3Application] | None = None
        # The request being answered now: with pipelining, not the last one parsed
        # (self.cycle), which may still be receiving its body.
        self._answering: RequestResponseCycle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self._max_connections:
            transport.write(_503)
            transport.close()
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self._cancel_body_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        self._start_held()  # a request whose body did not complete in this chunk
        if self._in_head:  # still inside the head after this chunk: all of it was head
            if self._head_bytes > self._max_head and not self.transport.is_closing():
                self.transport.write(_431)
                self.transport.close()
            else:
                # A head split over chunks gets its deadline; a whole head (the usual
                # case) costs no timer at all.
                self._arm_head_timer()
        elif self._body_timer is None and self.cycle is not None and self.cycle.more_body:
            # The body did not come whole with this chunk: from now on it has a deadline.
            self._body_timer = self.loop.call_later(self._body_timeout, self._body_too_slow)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._cancel_head_timer()
        self.scope.setdefault("extensions", {})[BODY_DEADLINE_KEPT] = {}
        self._holding = self._answers is not None and self.parser.get_method() == b"POST"
        try:
            super().on_headers_complete()
        finally:
            self._holding = False

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        # Held, not started, when its body may yet complete in this chunk; never a request
        # that asked for 100-continue (the ASGI path sends the interim response).
        if self._holding and app is self.app and not cycle.waiting_for_100_continue:
            self._held = (cycle, app)
            return
        self._answering = cycle
        super()._start_asgi_task(cycle, app)

    def _start_held(self) -> None:
        if self._held is not None:
            cycle, app = self._held
            self._held = None
            self._answering = cycle
            super()._start_asgi_task(cycle, app)

    def on_message_complete(self) -> None:
        self._cancel_body_timer()
        super().on_message_complete()
        if self._held is not None and self._held[0] is self.cycle:
            if self._answered(self.cycle):
                self._held = None
            else:
                self._start_held()

    def _answered(self, cycle: RequestResponseCycle) -> bool:
        """Whether the app answered the held request now; if so, the response is written
        and the cycle is complete, as RequestResponseCycle.send leaves it."""
        assert self._answers is not None
        if self.flow.write_paused or self.transport.is_closing():
            return False  # the ASGI path waits for the client to read; so must this
        reply = self._answers.answer_now(cast(Scope, cycle.scope), bytes(cycle.body))
        if reply is None:
            return False
        status, headers, body = reply
        self.transport.write(_response(cycle, status, headers, body))
        self._answering = cycle
        cycle.response_started = cycle.response_complete = True
        cycle.message_event.set()
        if not cycle.keep_alive:
            self.transport.close()
        # A second answer within one chunk must not leave the first's keep-alive timer armed.
        self._unset_keepalive_if_required()
        cycle.on_response()
        return True

    def on_response_complete(self) -> None:
        answered = self._answering
        if answered is not None and answered.more_body:  # answered before its body ended
            self.transport.close()
            return
        super().on_response_complete()

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self._head_timeout, self._head_too_slow)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def send_400_response(self, msg: str) -> None:
        """A request HTTP cannot parse (a bad Transfer-Encoding, say): a JSON 400 like every
        other refusal, not uvicorn's plain text."""
        self.transport.write(_400)
        self.transport.close()

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_too_slow(self) -> None:
        self._body_timer = None
        cycle = self.cycle
        if cycle is None or not cycle.more_body or self.transport.is_closing():
            return
        if not cycle.response_started:
            self.transport.write(_408(self._body_timeout))
        self.transport.close()

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self.transport.close()


def _response(cycle: RequestResponseCycle, status: int, headers: list[tuple[bytes, bytes]],
              body: bytes) -> bytes:
    """The bytes RequestResponseCycle.send writes for a response with a Content-Length (and
    no Connection header of the app's), and the access log line it writes."""
    if cycle.access_log:
        scope = cycle.scope
        cycle.access_logger.info('%s - "%s %s HTTP/%s" %d', get_client_addr(scope),
                                 scope["method"], get_path_with_query_string(scope),
                                 scope["http_version"], status)
    content = [STATUS_LINE[status]]
    for name, value in (*cycle.default_headers, *headers):
        content.extend([name.lower(), b": ", value, b"\r\n"])
    if not cycle.keep_alive:
        content.append(b"connection: close\r\n")
    content.extend([b"\r\n", body])
    return b"".join(content)
