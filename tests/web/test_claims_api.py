"""POST /v1/campaigns/{id}/claims: every outcome of the contract, over HTTP."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from flashclaim.keys import KeySpace
from flashclaim.runtime.embedded import free_port
from flashclaim.settings import Settings
from flashclaim.store.scripts import Scripts

from helpers import ADMIN, NAMESPACE, app_client, claim, claim_of, create_campaign, iso, stats


@pytest.mark.parametrize(
    ("name", "campaign", "prior_users", "user", "kwargs", "status", "code"),
    [
        ("granted", {}, [], "u1", {}, 201, None),
        ("granted with channel", {"channels": ["app"]}, [], "u1", {"channel": "app"}, 201, None),
        ("not eligible channel", {"channels": ["app"]}, [], "u1", {"channel": "web"}, 403,
         "not_eligible"),
        ("not eligible segment", {"segments": ["vip"]}, [], "u1", {"tags": "new"}, 403,
         "not_eligible"),
        ("eligible segment", {"segments": ["vip"]}, [], "u1", {"tags": "new, vip"}, 201, None),
        ("already claimed", {}, ["u1"], "u1", {}, 409, "already_claimed"),
        ("not started", {"starts_at": iso(timedelta(hours=1))}, [], "u1", {}, 409,
         "not_started"),
        ("ended", {"starts_at": iso(timedelta(hours=-2)), "ends_at": iso(timedelta(hours=-1))},
         [], "u1", {}, 409, "ended"),
        ("sold out", {"stock": 1}, ["u0"], "u1", {}, 410, "sold_out"),
    ],
)
async def test_claim_outcomes(
    client: httpx.AsyncClient, name: str, campaign: dict[str, Any], prior_users: list[str],
    user: str, kwargs: dict[str, Any], status: int, code: str | None,
) -> None:
    c = await create_campaign(client, **campaign)
    for prior in prior_users:
        assert (await claim(client, c["id"], prior)).status_code == 201
    response = await claim(client, c["id"], user, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    if code is None:
        assert body["user_id"] == user and body["campaign_id"] == c["id"]
        assert body["seq"] == len(prior_users) + 1
    else:
        assert body["error"] == code and body["message"]
        assert (await stats(client, c["id"]))["rejected"] == {code: 1}


async def test_paused_then_resumed(client: httpx.AsyncClient) -> None:
    c = await create_campaign(client)
    paused = await client.post(f"/v1/admin/campaigns/{c['id']}/pause", headers=ADMIN)
    assert paused.json()["status"] == "paused"
    response = await claim(client, c["id"], "u1")
    assert (response.status_code, response.json()["error"]) == (409, "paused")
    await client.post(f"/v1/admin/campaigns/{c['id']}/resume", headers=ADMIN)
    assert (await claim(client, c["id"], "u1")).status_code == 201


async def test_unknown_campaign(client: httpx.AsyncClient) -> None:
    response = await claim(client, "nope", "u1")
    assert (response.status_code, response.json()["error"]) == (404, "campaign_not_found")


async def test_no_identity(client: httpx.AsyncClient) -> None:
    c = await create_campaign(client)
    response = await client.post(f"/v1/campaigns/{c['id']}/claims")
    assert (response.status_code, response.json()["error"]) == (401, "unauthenticated")
    assert (await stats(client, c["id"]))["granted"] == 0


async def test_rate_limited_has_retry_after(client: httpx.AsyncClient) -> None:
    c = await create_campaign(client, per_user_limit=5, rate_limit={"max": 2, "per_seconds": 30})
    codes = [(await claim(client, c["id"], "bot")).status_code for _ in range(2)]
    response = await claim(client, c["id"], "bot")
    assert codes == [201, 201]
    assert response.status_code == 429
    assert response.json()["error"] == "rate_limited"
    assert 1 <= int(response.headers["Retry-After"]) <= 30


async def test_idempotent_replay_returns_the_same_claim(client: httpx.AsyncClient) -> None:
    c = await create_campaign(client, stock=1)
    first = await claim(client, c["id"], "u1", key="tap-1", channel="app")
    again = await claim(client, c["id"], "u1", key="tap-1", channel="app")
    assert (first.status_code, again.status_code) == (201, 200)
    assert claim_of(again) == claim_of(first)
    assert (await stats(client, c["id"]))["granted"] == 1


async def test_same_key_for_another_campaign_is_a_conflict(client: httpx.AsyncClient) -> None:
    a = await create_campaign(client)
    b = await create_campaign(client)
    assert (await claim(client, a["id"], "u1", key="k")).status_code == 201
    response = await claim(client, b["id"], "u1", key="k")
    assert (response.status_code, response.json()["error"]) == (409, "idempotency_key_reused")
    assert (await stats(client, b["id"]))["granted"] == 0


async def test_same_key_with_another_body_is_a_conflict(client: httpx.AsyncClient) -> None:
    c = await create_campaign(client)
    assert (await claim(client, c["id"], "u1", key="k", channel="app")).status_code == 201
    response = await claim(client, c["id"], "u1", key="k", channel="web")
    assert (response.status_code, response.json()["error"]) == (409, "idempotency_key_reused")


async def test_a_refused_claim_leaves_no_key_binding(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    """Stripe's rule: only a key that produced a claim stays bound. Refused keyed claims
    (missing campaign, rate limit, sold out) once left a Redis key each for 24 h."""
    for i in range(50):
        response = await claim(client, "no-such-campaign", "u1", key=f"k{i}")
        assert response.status_code == 404
    c = await create_campaign(client, stock=2, per_user_limit=2,
                              rate_limit={"max": 1, "per_seconds": 60})
    assert (await claim(client, c["id"], "u1")).status_code == 201  # uses u1's one tap
    limited = await claim(client, c["id"], "u1", key="limited")
    assert (limited.status_code, limited.json()["error"]) == (429, "rate_limited")
    assert (await claim(client, c["id"], "u2")).status_code == 201  # the last unit
    sold_out = await claim(client, c["id"], "u3", key="late")  # answered from memory
    assert (sold_out.status_code, sold_out.json()["error"]) == (410, "sold_out")
    assert await redis_client.keys(KeySpace(NAMESPACE).idempotency_pattern) == []


async def test_keyed_taps_after_sell_out_skip_the_script_but_still_replay(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    """After sell-out a keyed tap is answered with one read (the key's binding and its
    replay record), not the bind / script / release round trips; a retry of the key that
    won still gets its claim, and a key bound elsewhere is still refused."""
    c = await create_campaign(client, stock=1)
    won = await claim(client, c["id"], "u1", key="tap-1")
    assert won.status_code == 201
    assert (await claim(client, c["id"], "u2")).status_code == 410  # the gate learns it
    other = await create_campaign(client, stock=5)
    assert (await claim(client, other["id"], "u3", key="mine")).status_code == 201

    async def script_calls() -> int:
        """Script calls the server ran (a cluster client answers per node)."""
        stats = await redis_client.info("commandstats")
        per_node = [stats] if "cmdstat_evalsha" in stats or "cmdstat_eval" in stats \
            else [v for v in stats.values() if isinstance(v, dict)]
        return sum(int(node[n]["calls"]) for node in per_node
                   for n in ("cmdstat_evalsha", "cmdstat_eval") if n in node)

    before = await script_calls()
    replay = await claim(client, c["id"], "u1", key="tap-1")
    assert (replay.status_code, claim_of(replay)) == (200, claim_of(won))
    late = await claim(client, c["id"], "u4", key="late")
    assert (late.status_code, late.json()["error"]) == (410, "sold_out")
    reused = await claim(client, c["id"], "u3", key="mine")  # bound to the other campaign
    assert (reused.status_code, reused.json()["error"]) == (409, "idempotency_key_reused")
    assert await script_calls() == before  # no script ran for any of the three
    ks = KeySpace(NAMESPACE)
    bound = [await redis_client.exists(ks.idempotency(user, key))
             for user, key in (("u1", "tap-1"), ("u3", "mine"), ("u4", "late"))]
    assert bound == [1, 1, 0]  # the keys that granted stay bound; "late" was never bound
    stats = (await client.get(f"/v1/admin/campaigns/{c['id']}", headers=ADMIN)).json()
    assert stats["stats"]["rejected"]["sold_out"] == 2  # u2's and u4's, not the replay


async def test_a_key_refused_once_works_on_a_later_correct_retry(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    missing = await claim(client, "not-yet", "u1", key="tap-1")
    assert missing.status_code == 404
    c = await create_campaign(client)
    retry = await claim(client, c["id"], "u1", key="tap-1")  # not idempotency_key_reused
    assert retry.status_code == 201
    bindings = await redis_client.keys(KeySpace(NAMESPACE).idempotency_pattern)
    assert len(bindings) == 1  # a key that granted stays bound
    replay = await claim(client, c["id"], "u1", key="tap-1")
    assert (replay.status_code, claim_of(replay)) == (200, claim_of(retry))


async def test_keys_are_per_user(client: httpx.AsyncClient) -> None:
    c = await create_campaign(client)
    a = await claim(client, c["id"], "u1", key="same")
    b = await claim(client, c["id"], "u2", key="same")
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["claim_id"] != b.json()["claim_id"]


async def test_script_flush_between_claims(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    c = await create_campaign(client)
    assert (await claim(client, c["id"], "u1")).status_code == 201
    await redis_client.script_flush()
    assert (await claim(client, c["id"], "u2")).status_code == 201
    await redis_client.script_flush()
    assert (await client.get("/readyz")).status_code == 200
    assert all(await redis_client.script_exists(*Scripts(redis_client).shas))


async def test_claim_response_renders_times(client: httpx.AsyncClient) -> None:
    c = await create_campaign(client, coupons=[
        {"type": "cash", "value": 500, "validity": {"days": 1}},
        {"type": "discount", "percent_off": 15, "max_discount": 2000,
         "validity": {"from": "2026-11-11T00:00:00+08:00", "until": "2199-11-12T00:00:00Z"}},
    ])
    body = (await claim(client, c["id"], "u1")).json()
    assert body["claimed_at"].endswith("Z") and len(body["claimed_at"]) == 24
    cash, discount = body["coupons"]
    assert cash["valid_from"] == body["claimed_at"]
    assert discount["valid_from"] == "2026-11-10T16:00:00.000Z"
    assert discount["valid_until"] == "2199-11-12T00:00:00.000Z"
    assert discount["percent_off"] == 15 and "value" not in discount


async def test_store_unreachable_is_503_with_retry_after(server: object) -> None:
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0", admin_token="x",
                        redis_timeout_ms=200)
    async with app_client(settings) as client:
        response = await claim(client, "any", "u1")
        assert (response.status_code, response.json()["error"]) == (503, "unavailable")
        assert response.headers["Retry-After"] == "1"
        assert (await client.get("/readyz")).status_code == 503
        assert (await client.get("/healthz")).status_code == 200


async def test_namespaces_do_not_see_each_other(settings: Settings) -> None:
    other = Settings(redis_url=settings.redis_url, admin_token=settings.admin_token,
                     namespace="other")
    async with app_client(settings) as a, app_client(other) as b:
        c = await create_campaign(a, id="shared-id", stock=1)
        await create_campaign(b, id="shared-id", stock=1)
        assert (await claim(a, c["id"], "u1")).status_code == 201
        assert (await claim(b, c["id"], "u2")).status_code == 201
    assert KeySpace("other").campaign("x").meta.startswith("other:{x}")
