"""Many concurrent claims against little stock: exactly the stock is granted, no more."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import httpx
import pytest
from redis.asyncio import Redis

from flashclaim.checks.audit import audit_campaign, read_stream
from flashclaim.keys import KeySpace
from flashclaim.stream import ClaimRecord

from helpers import claim, create_campaign, entries, stats


async def flash_crowd(
    client: httpx.AsyncClient, campaign_id: str, users: list[str]
) -> tuple[Counter[int], list[dict[str, object]]]:
    """Every tap in flight at once; returns status counts and the granted claims."""
    responses = await asyncio.gather(*(claim(client, campaign_id, u) for u in users))
    granted = [r.json() for r in responses if r.status_code == 201]
    return Counter(r.status_code for r in responses), granted


@pytest.mark.parametrize(("per_user_limit", "distinct", "taps_each"), [(1, 2000, 1), (3, 700, 3)])
async def test_exactly_the_stock_is_granted(
    client: httpx.AsyncClient, redis_client: Redis, keyspace: KeySpace,
    per_user_limit: int, distinct: int, taps_each: int,
) -> None:
    stock = 300
    c = await create_campaign(client, stock=stock, per_user_limit=per_user_limit)
    users = [f"user-{i}" for i in range(distinct)] * taps_each
    users += random.Random(7).sample(users, 600)  # fast re-tappers on top
    random.Random(8).shuffle(users)
    assert len(users) >= 2600

    statuses, granted = await flash_crowd(client, c["id"], users)

    assert statuses[201] == stock
    assert set(statuses) <= {201, 409, 410}, statuses
    seqs = sorted(int(str(g["seq"])) for g in granted)
    assert seqs == list(range(1, stock + 1))
    per_user = Counter(g["user_id"] for g in granted)
    assert max(per_user.values()) <= per_user_limit
    records = [r for r in await read_stream(redis_client, keyspace.campaign(c["id"]).stream)]
    assert len(records) == stock
    assert {r.claim_id for r in records if isinstance(r, ClaimRecord)} == {
        g["claim_id"] for g in granted}
    s = await stats(client, c["id"])
    assert (s["granted"], s["remaining"]) == (stock, 0)
    assert sum(s["rejected"].values()) == len(users) - stock
    audit = await audit_campaign(redis_client, keyspace, c["id"])
    assert audit.ok, audit.violations


async def test_audit_catches_each_breach(
    client: httpx.AsyncClient, redis_client: Redis, keyspace: KeySpace
) -> None:
    """The auditor above must be able to fail: plant each breach and see it reported."""
    c = await create_campaign(client, stock=3)
    for user in ["a", "b"]:
        await claim(client, c["id"], user)
    keys = keyspace.campaign(c["id"])
    assert (await audit_campaign(redis_client, keyspace, c["id"])).ok

    [(first_id, fields), _] = await entries(redis_client, keys.stream)
    await redis_client.xadd(keys.stream, dict(fields))  # type: ignore[arg-type]  # a duplicate
    violations = (await audit_campaign(redis_client, keyspace, c["id"])).violations
    assert any("stream: extra:" in v for v in violations)
    assert any("duplicated seq" in v for v in violations)
    assert any("duplicated claim_id" in v for v in violations)
    assert any("above per_user_limit" in v for v in violations)

    last_id = (await entries(redis_client, keys.stream))[-1][0]
    await redis_client.xdel(keys.stream, first_id, last_id)  # a lost record
    violations = (await audit_campaign(redis_client, keyspace, c["id"])).violations
    assert any("stream: lost:" in v for v in violations)
    assert any("seq gap" in v for v in violations)

    await redis_client.hset(keys.meta, mapping={"granted": 5, "remaining": 0})  # oversold
    violations = (await audit_campaign(redis_client, keyspace, c["id"])).violations
    assert any(v.startswith("oversold") for v in violations)
