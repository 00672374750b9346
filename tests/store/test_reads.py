"""Reads shared by sync and async code (store/reads.py): a key that is not there is an
answer; a store that fails is an error, never taken for "nothing there"."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from flashclaim.keys import KeySpace
from flashclaim.store.reads import bucketed_campaigns, ledger_lags, run, run_async

from helpers import NAMESPACE, SyncRedis


async def test_no_stream_is_no_lag_but_a_failure_is_raised(redis_client: Redis,
                                                             sync_redis: SyncRedis) -> None:
    assert await run_async(redis_client, ledger_lags(["no-such-stream"], "ledger")) == [0]
    assert run(sync_redis, ledger_lags(["no-such-stream"], "ledger")) == [0]
    await redis_client.set("a-string", "x")  # XINFO on it fails: WRONGTYPE, not "no such key"
    with pytest.raises(ResponseError):
        await run_async(redis_client, ledger_lags(["a-string"], "ledger"))
    with pytest.raises(ResponseError):
        run(sync_redis, ledger_lags(["a-string"], "ledger"))


async def test_a_failed_index_read_is_raised(redis_client: Redis) -> None:
    keyspace = KeySpace(NAMESPACE)
    assert await run_async(redis_client, bucketed_campaigns(keyspace)) == {}
    await redis_client.set(keyspace.bucketed, "not a hash")
    with pytest.raises(ResponseError):
        await run_async(redis_client, bucketed_campaigns(keyspace))
