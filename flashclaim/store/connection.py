"""The Redis connection and what the service needs to know about the server it talks to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from flashclaim.settings import Settings


def connect(settings: Settings, url: str) -> Redis:
    """A pooled asyncio client. One retry on a dropped connection: safe, because every
    claim carries a request id that claim.lua deduplicates. No retry on a timeout: a
    stalled server must cost a claim one timeout (then 503), not two."""
    timeout = settings.redis_timeout_ms / 1000
    # Bounded: a burst of taps waits for one of `redis_connections` connections
    # (up to the timeout, then 503) instead of opening one connection per tap.
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=settings.redis_connections,
        timeout=timeout,
        decode_responses=True,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.05), retries=1,
                    supported_errors=(RedisConnectionError,)),
        retry_on_error=[RedisConnectionError],
    )
    return Redis.from_pool(pool)


def text_map(raw: Mapping[Any, Any]) -> dict[str, str]:
    """A hash reply as str -> str (the client decodes responses; this only narrows types)."""
    return {str(k): str(v) for k, v in raw.items()}


def time_reply_ms(reply: tuple[Any, Any]) -> int:
    """A TIME reply (seconds, microseconds) in epoch ms; for sync and async clients."""
    seconds, micros = reply
    return int(seconds) * 1000 + int(micros) // 1000


async def server_time_ms(redis: Redis) -> int:
    """Now, by the Redis server clock: one clock for every service instance."""
    return time_reply_ms(await redis.time())


async def server_warnings(redis: Redis) -> list[str]:
    """What about this server could lose or refuse claims: eviction, no persistence."""
    try:
        config = await redis.config_get("maxmemory-policy", "appendonly", "appendfsync")
    except ResponseError:
        # CONFIG is often disabled on managed servers; INFO still tells persistence.
        info = await redis.info("persistence")
        config = {"appendonly": "yes" if info.get("aof_enabled") else "no"}
    warnings = []
    policy = config.get("maxmemory-policy")
    if policy is not None and policy != "noeviction":
        warnings.append(
            f"maxmemory-policy is {policy!r}: the server may evict campaign keys; "
            "set it to 'noeviction'"
        )
    if config.get("appendonly") != "yes":
        warnings.append(
            "appendonly is off: granted claims since the last snapshot would be lost in a "
            "crash; set appendonly yes (appendfsync always for no loss at all)"
        )
    elif config.get("appendfsync") not in (None, "always"):
        warnings.append(
            f"appendfsync is {config.get('appendfsync')!r}: up to a second of granted claims "
            "can be lost in a crash; appendfsync always loses none"
        )
    return warnings
