"""The optional per-client-IP limit, behind a trusted proxy header."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from flashclaim.embedded import EmbeddedServer
from flashclaim.settings import Settings, SettingsError

from conftest import ADMIN_TOKEN, NAMESPACE, app_client
from helpers import create_campaign


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


async def test_a_proxy_header_that_is_not_an_address_is_400(limited: httpx.AsyncClient) -> None:
    c = await create_campaign(limited)
    response = await tap(limited, c["id"], "u1", "1.2.3.4, not-an-ip")
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


def test_the_setting_is_parsed() -> None:
    settings = Settings.from_env({"FLASHCLAIM_IP_RATE_LIMIT": "50/2"})
    assert settings.ip_rate_limit == (50, 2000)
    with pytest.raises(SettingsError):
        Settings.from_env({"FLASHCLAIM_IP_RATE_LIMIT": "fifty"})
