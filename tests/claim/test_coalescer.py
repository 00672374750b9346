"""Coalescing changes cost, never outcomes."""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import Sequence
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from flashclaim.claim.coalescer import ClaimCoalescer
from flashclaim.claim.decision import ClaimDecision, ClaimRequest
from flashclaim.keys import KeySpace
from flashclaim.runtime.embedded import free_port
from flashclaim.schemas.campaigns import campaign_spec
from flashclaim.store.campaign_store import CampaignStore
from flashclaim.store.connection import server_time_ms
from flashclaim.store.scripts import ScriptClaim, ScriptDecision, Scripts


class CountingScripts(Scripts):
    """Real scripts; remembers the size of each claim call."""

    def __init__(self, redis: Redis) -> None:
        super().__init__(redis)
        self.batch_sizes: list[int] = []

    async def claim(self, keys: Any, requests: Sequence[ScriptClaim]) -> list[ScriptDecision]:
        self.batch_sizes.append(len(requests))
        return await super().claim(keys, requests)


CAMPAIGNS: dict[str, dict[str, Any]] = {
    "small": {"stock": 5},
    "limit3": {"stock": 40, "per_user_limit": 3},
    "pack": {"stock": 20, "coupons": [{"type": "cash", "value": 1}] * 3, "segments": ["vip"]},
}


async def setup(r: Redis, scripts: Scripts, ks: KeySpace) -> None:
    now = await server_time_ms(r)
    for cid, fields in CAMPAIGNS.items():
        body = {"id": cid, "name": cid, "coupons": [{"type": "cash", "value": 500}], **fields}
        await CampaignStore(r, scripts, ks).create(campaign_spec(body, now), now)


def sequence(n: int) -> list[tuple[str, ClaimRequest]]:
    rng = random.Random(42)
    out = []
    for _ in range(n):
        user = f"u{rng.randrange(30)}"
        claim_id = secrets.token_hex(8)
        token = rng.choice([f"r:{claim_id}", f"k:{user}:same"])  # some replays
        tags = ("vip",) if rng.random() < 0.5 else ()
        out.append((rng.choice(list(CAMPAIGNS)),
                    ClaimRequest(claim_id, token, user, tags, None, None)))
    return out


def outcome(d: ClaimDecision) -> tuple[str, int | None]:
    seq = None
    if d.code in ("granted", "replay"):
        seq = int(d.payload.split('"seq":')[1].split(",")[0])
    return d.code.value, seq


async def test_batched_equals_one_by_one(redis_client: Redis) -> None:
    claims = sequence(300)
    one_by_one_ks, batched_ks = KeySpace("single"), KeySpace("batched")
    scripts = CountingScripts(redis_client)
    await setup(redis_client, scripts, one_by_one_ks)
    await setup(redis_client, scripts, batched_ks)

    expected = []
    for cid, req in claims:
        [d] = await scripts.claim(one_by_one_ks.campaign(cid), [req])
        expected.append(outcome(ClaimDecision.of(d)))
    scripts.batch_sizes.clear()

    coalescer = ClaimCoalescer(scripts, batched_ks, max_batch=50)
    got = await asyncio.gather(*(coalescer.decide(cid, req) for cid, req in claims))

    assert [outcome(d) for d in got] == expected
    assert len(scripts.batch_sizes) < len(claims) / 10  # it did batch
    assert max(scripts.batch_sizes) == 50  # and respected the bound
    assert {code for code, _ in expected} >= {
        "granted", "replay", "sold_out", "already_claimed", "not_eligible"}


async def test_a_lone_claim_goes_alone(redis_client: Redis) -> None:
    scripts = CountingScripts(redis_client)
    ks = KeySpace("lone")
    await setup(redis_client, scripts, ks)
    coalescer = ClaimCoalescer(scripts, ks)
    for i in range(3):
        d = await coalescer.decide("small", ClaimRequest(f"c{i}", f"r:c{i}", f"u{i}", (), None,
                                                         None))
        assert d.code == "granted"
    assert scripts.batch_sizes == [1, 1, 1]


async def test_store_errors_reach_every_waiter_and_then_clear() -> None:
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    coalescer = ClaimCoalescer(Scripts(dead), KeySpace("dead"))
    requests = [ClaimRequest(f"c{i}", f"r:c{i}", f"u{i}", (), None, None) for i in range(5)]
    results = await asyncio.gather(*(coalescer.decide("x", r) for r in requests),
                                   return_exceptions=True)
    assert all(isinstance(r, RedisConnectionError) for r in results), results
    assert coalescer._queues == {}  # nothing stuck: the next claim starts afresh
    with pytest.raises(RedisConnectionError):
        await coalescer.decide("x", requests[0])
    await dead.aclose()
