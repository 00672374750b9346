"""The optional per-client-IP limit, behind a trusted proxy header."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from flashclaim.keys import KeySpace
from flashclaim.runtime.embedded import EmbeddedServer, free_port
from flashclaim.settings import Settings, SettingsError
from flashclaim.tools import children

from helpers import ADMIN_TOKEN, NAMESPACE, app_client, create_campaign


@pytest.fixture
async def limited(server: EmbeddedServer) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(redis_url=server.url, admin_token=ADMIN_TOKEN, namespace=NAMESPACE,
                        ip_rate_limit=(2, 60_000), client_ip_header="X-Forwarded-For")
    async with app_client(settings) as client:
        yield client


async def tap(client: httpx.AsyncClient, campaign: str, user: str,
              forwarded: str) -> httpx.Response:
    return await client.post(f"/v1/campaigns/{campaign}/claims",
                             headers={"X-User-Id": user, "X-Forwarded-For": forwarded})


async def test_one_address_is_limited_across_users(limited: httpx.AsyncClient) -> None:
    c = await create_campaign(limited)
    # The rightmost entry is the one the trusted proxy appended; the left part is the
    # client's own claim and can be forged.
    answers = [await tap(limited, c["id"], f"u{i}", f"1.2.3.{i}, 203.0.113.7")
               for i in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 429]
    assert answers[2].json()["error"] == "rate_limited"
    assert 1 <= int(answers[2].headers["Retry-After"]) <= 60
    other = await tap(limited, c["id"], "u9", "203.0.113.8")
    assert other.status_code == 201


async def test_a_forged_first_header_line_is_ignored(limited: httpx.AsyncClient) -> None:
    """A client sends its own X-Forwarded-For line; the proxy appends another: only the
    last element of the last line is the proxy's."""
    c = await create_campaign(limited)
    answers = []
    for i in range(3):
        headers = [("X-User-Id", f"u{i}"), ("X-Forwarded-For", f"198.51.100.{i}"),
                   ("X-Forwarded-For", f"10.9.9.{i}, 203.0.113.7")]
        answers.append(await limited.post(f"/v1/campaigns/{c['id']}/claims", headers=headers))
    assert [a.status_code for a in answers] == [201, 201, 429]  # all from 203.0.113.7


async def test_a_user_named_like_an_address_has_its_own_counter(
    limited: httpx.AsyncClient,
) -> None:
    """User "ip:203.0.113.7" once shared the rate-limit counter of that address."""
    c = await create_campaign(limited, rate_limit={"max": 2, "per_seconds": 60},
                              per_user_limit=5)
    for _ in range(2):  # the user spends its own rate limit from another address
        assert (await tap(limited, c["id"], "ip:203.0.113.7", "198.51.100.1")).status_code == 201
    assert (await tap(limited, c["id"], "ip:203.0.113.7", "198.51.100.1")).status_code == 429
    # ... and the address it is named after still has its whole IP allowance
    assert (await tap(limited, c["id"], "carol", "203.0.113.7")).status_code == 201
    assert (await tap(limited, c["id"], "dave", "203.0.113.7")).status_code == 201


def test_user_and_address_counters_have_separate_keys() -> None:
    keys = KeySpace("fc").campaign("c")
    assert keys.rate_limit("ip:203.0.113.7") != keys.ip_rate_limit("203.0.113.7")


async def test_a_proxy_header_that_is_not_an_address_is_400(limited: httpx.AsyncClient) -> None:
    c = await create_campaign(limited)
    response = await tap(limited, c["id"], "u1", "1.2.3.4, not-an-ip")
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


def test_the_setting_is_parsed() -> None:
    settings = Settings.from_env({"FLASHCLAIM_IP_RATE_LIMIT": "50/2"})
    assert settings.ip_rate_limit == (50, 2000)
    with pytest.raises(SettingsError):
        Settings.from_env({"FLASHCLAIM_IP_RATE_LIMIT": "fifty"})


def test_without_a_configured_header_the_peer_is_the_client(tmp_path: Path) -> None:
    """A real serve: with no FLASHCLAIM_CLIENT_IP_HEADER, X-Forwarded-For (even from a local
    peer, whom uvicorn would trust by default) does not change whose taps are counted."""
    port = free_port()
    env = children.clean_env(FLASHCLAIM_IP_RATE_LIMIT="2/60", FLASHCLAIM_ADMIN_TOKEN="t")
    proc = children.start(["serve", "--port", str(port), "--data-dir", str(tmp_path / "d")],
                          env, tmp_path / "serve.log")
    base = f"http://127.0.0.1:{port}"
    try:
        children.wait_ready(base, proc)
        with httpx.Client(base_url=base) as http:
            http.post("/v1/admin/campaigns", headers={"Authorization": "Bearer t"}, json={
                "id": "ip", "name": "ip", "stock": 100,
                "coupons": [{"type": "cash", "value": 1}]}).raise_for_status()
            codes = [http.post("/v1/campaigns/ip/claims", headers={
                "X-User-Id": f"u{i}", "X-Forwarded-For": f"198.51.100.{i}"}).status_code
                for i in range(3)]
        assert codes == [201, 201, 429]  # one peer: its third tap is over its limit
    finally:
        assert children.stop(proc) == 0
