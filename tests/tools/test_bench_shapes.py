"""The benchmark sends what a grab button sends, and counts the service's CPU."""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson

from flashclaim.tools.bench import BARE, REAL, Shape, claim_request, tree_cpu_seconds


def test_the_real_request_has_a_json_body_and_sometimes_a_key() -> None:
    requests = [claim_request("/v1/campaigns/c/claims", f"u{n}", n, REAL) for n in range(1, 21)]
    for r in requests:
        headers = dict(r.headers)
        assert headers["Content-Type"] == "application/json"
        assert orjson.loads(r.body) == {"channel": "app"}
    keyed = [r for r in requests if "Idempotency-Key" in dict(r.headers)]
    assert len(keyed) == 2  # one in ten
    assert len({dict(r.headers)["Idempotency-Key"] for r in keyed}) == 2  # never reused


def test_the_bare_request_has_no_body_and_jwt_replaces_the_header(tmp_path: Path) -> None:
    bare = claim_request("/p", "u1", 10, BARE)
    assert bare.body == b"" and dict(bare.headers) == {"X-User-Id": "u1"}
    tokens = ["t0", "t1", "t2"]
    jwt = claim_request("/p", "u1", 4, Shape(tokens=tmp_path / "unused"), tokens)
    assert dict(jwt.headers)["Authorization"] == "Bearer t1" and "X-User-Id" not in dict(
        jwt.headers)


def test_process_cpu_grows_with_work() -> None:
    before = tree_cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:  # burn 0.3 s of CPU
        pass
    assert tree_cpu_seconds(os.getpid()) - before >= 0.2
