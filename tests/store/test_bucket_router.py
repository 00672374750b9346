"""The bucket router's layout lookup: a crowd's first taps on a campaign share one read,
and a tap that goes away does not take the read from the others."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from flashclaim.keys import KeySpace
from flashclaim.store.buckets import BucketRouter
from flashclaim.store.scripts import Scripts

from helpers import NAMESPACE

KS = KeySpace(NAMESPACE)


async def hmget_calls(r: Redis) -> int:
    stats = await r.info("commandstats")
    return int(stats.get("cmdstat_hmget", {}).get("calls", 0))


async def test_a_crowd_shares_one_layout_read_and_survives_a_cancelled_tap(
        redis_client: Redis) -> None:
    await redis_client.hset(KS.campaign("hot").meta, mapping={"id": "hot", "buckets": 3})
    router = BucketRouter(redis_client, Scripts(redis_client), KS)
    before = await hmget_calls(redis_client)
    first = asyncio.create_task(router.count("hot"))
    others = [asyncio.create_task(router.count("hot")) for _ in range(50)]
    await asyncio.sleep(0)  # all 51 are waiting on the one read
    first.cancel()  # the tap that started it goes away
    assert await asyncio.gather(*others) == [3] * 50
    assert await hmget_calls(redis_client) - before == 1
    assert await router.count("hot") == 3  # remembered: no read at all
    assert await hmget_calls(redis_client) - before == 1
    assert await router.count("nothing-here") == 1  # unknown: not remembered
    assert await router.count("nothing-here") == 1
    assert await hmget_calls(redis_client) - before == 3
