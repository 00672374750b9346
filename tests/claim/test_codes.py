"""Redemption codes: made from secrets, typed safely, stored only as keyed hashes, found
through their hash slot, redeemed by claim.lua's one decision, and guarded against guessing."""

from __future__ import annotations

import asyncio
import csv
import io
import secrets
import time
from typing import Any

import httpx
from redis.asyncio import Redis

from flashclaim.codes import ALPHABET, CODE_CHARS, campaign_slot, check_char, make_code, normalize
from flashclaim.keys import KeySpace
from flashclaim.settings import Settings

from helpers import ADMIN, LoopWatch, app_client, claim_of, create_campaign, stats


async def make_codes(client: httpx.AsyncClient, campaign_id: str, count: int,
                     uses: int = 1, **extra: int) -> list[str]:
    r = await client.post(f"/v1/admin/campaigns/{campaign_id}/codes", headers=ADMIN,
                          json={"count": count, "uses_per_code": uses, **extra})
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 30
    while True:
        batches = (await client.get(f"/v1/admin/campaigns/{campaign_id}/codes",
                                    headers=ADMIN)).json()["batches"]
        if all(b["state"] in ("ready", "exported") for b in batches):
            break
        assert time.monotonic() < deadline, batches
        await asyncio.sleep(0.02)
    export = await client.get(f"/v1/admin/campaigns/{campaign_id}/codes.csv", headers=ADMIN)
    assert export.status_code == 200 and export.headers["cache-control"] == "no-store"
    rows = list(csv.DictReader(io.StringIO(export.text)))
    return [row["code"] for row in rows]


async def redeem(client: httpx.AsyncClient, code: str, user: str, **headers: str
                 ) -> httpx.Response:
    return await client.post("/v1/redemptions", json={"code": code},
                             headers={"X-User-Id": user, **headers})


def test_the_check_character_catches_every_typo_and_swap() -> None:
    code = normalize(make_code(b"k" * 32, secrets.token_bytes(32), 1, 1234))
    assert code is not None and len(code) == CODE_CHARS
    assert not set(code) & set("01OIL")
    for i in range(CODE_CHARS):
        for c in ALPHABET:
            if c != code[i]:
                assert normalize(code[:i] + c + code[i + 1:]) is None, (i, c)
    for i in range(CODE_CHARS - 1):
        if code[i] != code[i + 1]:
            assert normalize(code[:i] + code[i + 1] + code[i] + code[i + 2:]) is None, i
    assert normalize(code.lower()) == code
    assert normalize(" " + "-".join(code[i:i + 6] for i in (0, 6, 12)) + " ") == code
    assert check_char(code[:-1]) == code[-1]


async def test_codes_are_exported_once_and_redis_never_holds_one(
    client: httpx.AsyncClient, redis_client: Redis, keyspace: KeySpace,
) -> None:
    c = await create_campaign(client, stock=5000)
    codes = await make_codes(client, c["id"], 2000)
    assert len(codes) == len(set(codes)) == 2000
    slot = campaign_slot(c["id"])
    assert all(normalize(code) is not None for code in codes)
    assert {normalize(code)[:3] for code in codes} == {  # type: ignore[index]
        make_code(b"x" * 32, b"n", 0, slot)[:3]}  # every code names the campaign's slot
    again = await client.get(f"/v1/admin/campaigns/{c['id']}/codes.csv", headers=ADMIN)
    assert (again.status_code, again.json()["error"]) == (410, "codes_exported")
    batches = (await client.get(f"/v1/admin/campaigns/{c['id']}/codes", headers=ADMIN)).json()
    assert [b["state"] for b in batches["batches"]] == ["exported"]
    assert await redis_client.hlen(keyspace.campaign(c["id"]).codes()) == 2000
    stored: list[Any] = []
    async for key in redis_client.scan_iter(f"{keyspace.namespace}:*"):
        kind = await redis_client.type(key)
        if kind == "hash":
            for field, value in (await redis_client.hgetall(key)).items():
                stored += [field, value]
        elif kind == "string":
            stored.append(await redis_client.get(key) or "")
    plain = {normalize(code) for code in codes} | set(codes)
    assert not any(str(p) in str(s) for s in stored for p in list(plain)[:50])


async def test_a_code_grants_once_by_the_rules_of_a_grab(
    client: httpx.AsyncClient, redis_client: Redis, keyspace: KeySpace,
) -> None:
    c = await create_campaign(client, stock=10, per_user_limit=1)
    first, second, third = await make_codes(client, c["id"], 3)
    r = await redeem(client, first, "u1")
    assert r.status_code == 201 and r.json()["source"] == "code" and "server_time" in r.json()
    used = await redeem(client, first, "u2")
    assert (used.status_code, used.json()["error"]) == (410, "code_used")
    # the per-user limit holds across codes, and a refused redemption spends no use
    refused = await redeem(client, second, "u1")
    assert (refused.status_code, refused.json()["error"]) == (409, "already_claimed")
    assert (await redeem(client, second, "u3")).status_code == 201
    # replay with an Idempotency-Key returns the same claim
    a = await redeem(client, third, "u4", **{"Idempotency-Key": "r-1"})
    b = await redeem(client, third, "u4", **{"Idempotency-Key": "r-1"})
    assert (a.status_code, b.status_code) == (201, 200) and claim_of(a) == claim_of(b)
    typo = third[:-1] + ("2" if third[-1] != "2" else "3")
    assert (await redeem(client, typo, "u5")).json()["error"] == "code_not_found"
    s = await stats(client, c["id"])
    assert (s["granted"], s["recorded"]) == (3, 3)
    assert s["rejected"]["code_used"] == 1


async def test_fifty_users_on_one_single_use_code_get_one_grant(
    client: httpx.AsyncClient,
) -> None:
    c = await create_campaign(client, stock=100)
    [code] = await make_codes(client, c["id"], 1)
    answers = await asyncio.gather(*(redeem(client, code, f"racer{i}") for i in range(50)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] + [410] * 49
    assert (await stats(client, c["id"]))["granted"] == 1


async def test_ten_thousand_guesses_find_nothing_and_the_limiter_engages(
    settings: Settings, redis_client: Redis,
) -> None:
    async with app_client(settings) as client:
        c = await create_campaign(client, stock=100)
        await make_codes(client, c["id"], 200)
        slot = campaign_slot(c["id"])
        answered: dict[int, int] = {}
        for i in range(10_000):
            guess = make_code(b"attacker-key" * 3, secrets.token_bytes(8), i, slot)
            r = await redeem(client, guess, f"bot{i % 20}")
            answered[r.status_code] = answered.get(r.status_code, 0) + 1
            if r.status_code == 429:
                assert int(r.headers["retry-after"]) >= 1
        assert 201 not in answered
        assert set(answered) == {404, 429}
        assert answered[404] <= 50  # the address's failures; after that, 429 for all
        assert (await stats(client, c["id"]))["granted"] == 0


async def test_bad_code_requests_are_refused_and_write_nothing(
    client: httpx.AsyncClient, redis_client: Redis, keyspace: KeySpace,
) -> None:
    c = await create_campaign(client)
    url = f"/v1/admin/campaigns/{c['id']}/codes"
    for body in ({}, {"count": 0}, {"count": 1_000_001}, {"count": 5, "uses_per_code": 0},
                 {"count": "5"}, {"count": 5, "prefix": "X"}):
        assert (await client.post(url, headers=ADMIN, json=body)).status_code == 400, body
    r = await client.post("/v1/admin/campaigns/nope/codes", headers=ADMIN, json={"count": 1})
    assert r.status_code == 404
    await redis_client.set(keyspace.campaign(c["id"]).codes_issued, 999_999)
    r = await client.post(url, headers=ADMIN, json={"count": 2})
    assert (r.status_code, r.json()["error"]) == (409, "too_many_codes")
    assert (await client.get(url, headers=ADMIN)).json()["batches"] == []
    assert await redis_client.zcard(keyspace.pending_code_batches) == 0
    for body in ({}, {"code": 5}, {"code": ""}, {"code": "x" * 65},
                 {"code": "ABC", "extra": 1}):
        r = await client.post("/v1/redemptions", json=body, headers={"X-User-Id": "u"})
        assert r.status_code == 400, body
    assert (await client.post("/v1/redemptions", json={"code": "AAAAAA"})).status_code == 401


async def test_codes_need_a_secret(server: Any) -> None:
    plain = Settings(redis_url=server.url, admin_token="test-admin-token", namespace="t")
    async with app_client(plain) as client:
        c = await create_campaign(client)
        r = await client.post(f"/v1/admin/campaigns/{c['id']}/codes", headers=ADMIN,
                              json={"count": 1})
        assert (r.status_code, r.json()["error"]) == (503, "codes_not_configured")


async def test_a_code_of_an_ended_campaign_is_refused_as_a_grab_would_be(
    client: httpx.AsyncClient,
) -> None:
    c = await create_campaign(client)
    [code] = await make_codes(client, c["id"], 1)
    await client.post(f"/v1/admin/campaigns/{c['id']}/end", headers=ADMIN)
    r = await redeem(client, code, "u1")
    assert (r.status_code, r.json()["error"]) == (409, "ended")
    assert (await redeem(client, code, "u2")).json()["error"] == "ended"  # its use not spent


def guesses(campaign_id: str, n: int) -> list[str]:
    """Codes that pass the check character and name the campaign's slot, but do not exist."""
    slot = campaign_slot(campaign_id)
    return [make_code(b"attacker-key" * 3, secrets.token_bytes(8), i, slot) for i in range(n)]


async def test_a_thousand_wrong_codes_at_once_get_exactly_the_limit_of_lookups(
    client: httpx.AsyncClient,
) -> None:
    """The attempt is counted before the lookup, in one script: concurrency cannot pass it."""
    c = await create_campaign(client, stock=100)
    gate = asyncio.Semaphore(40)  # (the cluster client has no waiting pool)

    async def guess(code: str) -> int:
        async with gate:
            return (await redeem(client, code, "greedy")).status_code

    answers = await asyncio.gather(*(guess(code) for code in guesses(c["id"], 1000)))
    assert sorted(set(answers)) == [404, 429]
    assert answers.count(404) == 10  # FailureLimit.per_user lookups, not one more


async def test_a_busy_address_does_not_lock_out_users_with_good_codes(
    client: httpx.AsyncClient,
) -> None:
    """Behind one gateway address, 60 users mistype once: the address is past its limit,
    yet a user who has not failed redeems a valid code; one who failed there once is held
    to one failure."""
    c = await create_campaign(client, stock=100)
    good = await make_codes(client, c["id"], 3)
    for i, code in enumerate(guesses(c["id"], 60)):
        assert (await redeem(client, code, f"typo{i}")).status_code == 404
    assert (await redeem(client, good[0], "clean")).status_code == 201
    assert (await redeem(client, guesses(c["id"], 1)[0], "typo0")).status_code == 429
    # a user without failures still gets its one try at the busy address
    assert (await redeem(client, guesses(c["id"], 1)[0], "newcomer")).status_code == 404
    assert (await redeem(client, good[1], "newcomer")).status_code == 429


async def test_a_shared_code_is_redeemed_once_per_user_unless_the_batch_says_more(
    client: httpx.AsyncClient,
) -> None:
    c = await create_campaign(client, stock=100, per_user_limit=10)
    [shared] = await make_codes(client, c["id"], 1, uses=5)
    assert (await redeem(client, shared, "first")).status_code == 201
    again = await redeem(client, shared, "first")
    assert (again.status_code, again.json()["error"]) == (409, "code_already_redeemed")
    assert [(await redeem(client, shared, f"u{i}")).status_code for i in range(5)] == \
        [201, 201, 201, 201, 410]
    [twice] = await make_codes(client, c["id"], 1, uses=5, uses_per_user=2)
    assert [(await redeem(client, twice, "fan")).status_code for _ in range(3)] == [201, 201, 409]
    batches = (await client.get(f"/v1/admin/campaigns/{c['id']}/codes", headers=ADMIN)).json()
    assert sorted(b["uses_per_user"] for b in batches["batches"]) == [1, 2]
    over = await client.post(f"/v1/admin/campaigns/{c['id']}/codes", headers=ADMIN,
                             json={"count": 1, "uses_per_code": 2, "uses_per_user": 3})
    assert over.status_code == 400


async def test_two_exports_at_once_hand_out_each_code_once(client: httpx.AsyncClient) -> None:
    c = await create_campaign(client, stock=100)
    await make_codes_unexported(client, c["id"], 3000)
    url = f"/v1/admin/campaigns/{c['id']}/codes.csv"
    first, second = await asyncio.gather(client.get(url, headers=ADMIN),
                                         client.get(url, headers=ADMIN))
    assert sorted([first.status_code, second.status_code]) == [200, 410]
    done = first if first.status_code == 200 else second
    assert len(list(csv.DictReader(io.StringIO(done.text)))) == 3000


async def make_codes_unexported(client: httpx.AsyncClient, campaign_id: str, count: int
                                ) -> None:
    r = await client.post(f"/v1/admin/campaigns/{campaign_id}/codes", headers=ADMIN,
                          json={"count": count})
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 120
    while True:
        batches = (await client.get(f"/v1/admin/campaigns/{campaign_id}/codes",
                                    headers=ADMIN)).json()["batches"]
        if all(b["state"] == "ready" for b in batches):
            return
        assert time.monotonic() < deadline, batches
        await asyncio.sleep(0.05)


async def test_generating_and_exporting_codes_leave_the_loop_free(
    client: httpx.AsyncClient,
) -> None:
    """The loop that answers claims is never held for long by codes being made or written
    out: a hundred thousand of each (the hashing and the CSV are made on a thread)."""
    c = await create_campaign(client, stock=100)
    async with LoopWatch() as generating:
        await make_codes_unexported(client, c["id"], 100_000)
    async with LoopWatch() as exporting:
        export = await client.get(f"/v1/admin/campaigns/{c['id']}/codes.csv", headers=ADMIN)
    assert export.status_code == 200 and export.text.count("\n") == 100_001
    for watch in (generating, exporting):
        assert watch.stalled_share < 0.25, (watch.stalled_share, watch.longest)
        assert watch.longest < 0.25, watch.longest
