"""Small helpers shared by the HTTP tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from conftest import ADMIN_TOKEN
from redis.asyncio import Redis

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def iso(delta: timedelta) -> str:
    """An RFC 3339 time `delta` from now (the test machine's clock is Redis' clock)."""
    return (datetime.now(UTC) + delta).isoformat()


def campaign_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Double 11",
        "stock": 10,
        "coupons": [{"type": "threshold", "value": 2000, "min_spend": 10000}],
    }
    body.update(overrides)
    return body


async def create_campaign(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/v1/admin/campaigns", json=campaign_body(**overrides),
                                 headers=ADMIN)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def claim(
    client: httpx.AsyncClient, campaign_id: str, user: str, *, tags: str | None = None,
    channel: str | None = None, key: str | None = None,
) -> httpx.Response:
    headers = {"X-User-Id": user}
    if tags is not None:
        headers["X-User-Tags"] = tags
    if key is not None:
        headers["Idempotency-Key"] = key
    body = None if channel is None else {"channel": channel}
    return await client.post(f"/v1/campaigns/{campaign_id}/claims", json=body, headers=headers)


async def stats(client: httpx.AsyncClient, campaign_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/admin/campaigns/{campaign_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["stats"]
    return result


async def entries(r: Redis, stream: str) -> list[tuple[str, dict[str, str]]]:
    """All entries of a stream, typed (the client decodes responses)."""
    raw = await r.xrange(stream) or []
    return [(str(i), {str(k): str(v) for k, v in (f or {}).items()}) for i, f in raw]
