"""The claim endpoint's one-pass headers answer as Starlette's Headers do."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from flashclaim.web.http import TapHeaders

RAW = [
    [(b"x-user-id", b"u1"), (b"content-type", b"application/json")],
    [(b"x-forwarded-for", b"1.2.3.4"), (b"x-user-id", b"first"), (b"x-forwarded-for", b"5.6.7.8"),
     (b"x-user-id", b"second")],
    [(b"x-user-tags", b"vip, new"), (b"idempotency-key", b"k\xe9")],  # latin-1, as HTTP
    [],
]
NAMES = ["x-user-id", "x-user-tags", "content-type", "idempotency-key", "x-forwarded-for",
         "authorization", "transfer-encoding", "X-Forwarded-For", "X-User-Id"]


@pytest.mark.parametrize("raw", RAW)
def test_one_pass_headers_answer_as_starlettes(raw: list[tuple[bytes, bytes]]) -> None:
    ours, theirs = TapHeaders(raw), Headers(raw=raw)
    for name in NAMES:
        assert ours.get(name) == theirs.get(name), name
        assert (name in ours) == (name in theirs), name
        assert ours.getlist(name) == theirs.getlist(name), name
