"""The Redis connection and what the service needs to know about the server it talks to."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote

import redis
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import ClusterNode
from redis.exceptions import (
    BusyLoadingError,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from flashclaim.errors import ApiError, unavailable
from flashclaim.runtime.embedded import running_url
from flashclaim.settings import Settings, SettingsError
from flashclaim.validation import ascii_int

CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")
log = logging.getLogger("flashclaim")

# The store's one failure: anything that keeps Redis from answering. The parts above the
# store catch this name (and map it with `store_failure`); only the store knows it is
# redis-py's.
StoreError = RedisError
Client = Redis  # the asyncio client the service holds (a cluster client behaves as one)


def store_failure(exc: StoreError) -> ApiError:
    """The store failed (down, stalled, out of memory, cannot persist): logged, then 503."""
    expected = (OutOfMemoryError, ReadOnlyError, BusyLoadingError, NoPermissionError)
    if isinstance(exc, ResponseError) and not isinstance(exc, expected) and \
            not str(exc).startswith(("MISCONF", "BUSY")):
        log.error("unexpected Redis reply: %s", exc)
    else:
        log.warning("Redis unavailable: %s: %s", exc.__class__.__name__, exc)
    return unavailable()


@dataclass(frozen=True, slots=True)
class ClusterAddress:
    """redis+cluster://[[user]:password@]host:port[,host:port...]: the seed nodes (any
    reachable one is enough; the client learns the rest), the credentials, TLS."""

    seeds: list[tuple[str, int]]
    username: str | None
    password: str | None
    tls: bool


def is_cluster_url(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEMES)


def parse_cluster_url(url: str) -> ClusterAddress:
    """ValueError when the URL is not a cluster URL with at least one host:port."""
    scheme, _, rest = url.partition("://")
    if scheme + "://" not in CLUSTER_SCHEMES:
        raise ValueError("a cluster URL starts with redis+cluster:// or rediss+cluster://")
    credentials, _, hosts = rest.rpartition("@")
    hosts = hosts.split("/", 1)[0]  # a database number means nothing on a cluster
    seeds = []
    for seed in hosts.split(","):
        host, _, raw_port = seed.rpartition(":")
        port = ascii_int(raw_port, 5)
        if not host or port is None or not 1 <= port <= 65535:
            raise ValueError(f"{seed!r} is not host:port")
        seeds.append((host, port))
    user, _, password = credentials.partition(":") if credentials else ("", "", "")
    return ClusterAddress(seeds, unquote(user) or None, unquote(password) or None,
                          scheme.startswith("rediss"))


def connect(settings: Settings, url: str) -> Redis:
    """A pooled asyncio client. One retry on a dropped connection: safe, because every
    claim carries a request id that claim.lua deduplicates. No retry on a timeout: a
    stalled server must cost a claim one timeout (then 503), not two."""
    if is_cluster_url(url):
        return _connect_cluster(settings, parse_cluster_url(url))
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


def _connect_cluster(settings: Settings, address: ClusterAddress) -> Redis:
    """redis-py's cluster client: it routes each command (and each script call, by its
    keys) to the master of the key's slot and follows MOVED/ASK during resharding and
    failover. It answers the same commands as a single-node client, so the service holds
    it under the same type."""
    timeout = settings.redis_timeout_ms / 1000
    client = AsyncRedisCluster(
        startup_nodes=[AsyncClusterNode(host, port) for host, port in address.seeds],
        username=address.username, password=address.password, ssl=address.tls,
        decode_responses=True, socket_timeout=timeout, socket_connect_timeout=timeout,
        max_connections=settings.redis_connections,
    )
    return cast(Redis, client)


def tool_client(url: str, timeout_s: float) -> Redis:
    """An asyncio client for the command-line tools (no pool bound), single node or cluster."""
    if is_cluster_url(url):
        address = parse_cluster_url(url)
        return cast(Redis, AsyncRedisCluster(
            startup_nodes=[AsyncClusterNode(host, port) for host, port in address.seeds],
            username=address.username, password=address.password, ssl=address.tls,
            decode_responses=True, socket_timeout=timeout_s))
    return Redis.from_url(url, decode_responses=True, socket_timeout=timeout_s)


def sync_client(url: str, **options: Any) -> redis.Redis:
    """A synchronous client for the command-line tools, single node or cluster."""
    if is_cluster_url(url):
        address = parse_cluster_url(url)
        client = redis.RedisCluster(
            startup_nodes=[ClusterNode(host, port)  # type: ignore[no-untyped-call]
                           for host, port in address.seeds],
            username=address.username, password=address.password, ssl=address.tls,
            decode_responses=True, **options)
        return cast(redis.Redis, client)
    return redis.Redis.from_url(url, decode_responses=True, **options)


def as_map(reply: Any) -> dict[Any, Any]:
    """A map reply (HGETALL, XINFO), parsed or raw. redis-py's cluster client leaves the
    replies of a MULTI/EXEC pipeline raw: flat [key, value, ...] lists."""
    if isinstance(reply, list):
        return dict(zip(reply[::2], reply[1::2], strict=True))
    return dict(reply or {})


def as_entries(reply: Any) -> list[tuple[Any, dict[Any, Any]]]:
    """XRANGE entries, parsed or raw (as in as_map): (id, fields) pairs."""
    return [(entry_id, as_map(fields)) for entry_id, fields in reply or []]


def text_map(raw: Mapping[Any, Any]) -> dict[str, str]:
    """A hash reply as str -> str (the client decodes responses; this only narrows types)."""
    return {str(k): str(v) for k, v in raw.items()}


def text(value: Any) -> str:
    """One reply value as str: bytes decoded (a client made without decode_responses),
    None (a missing key or field) as ""."""
    if value is None:
        return ""
    return bytes(value).decode() if isinstance(value, bytes | memoryview) else str(value)


def stream_rows(reply: Any) -> list[tuple[str, dict[str, str]]]:
    """An XRANGE-like reply as (entry id, fields) text (redis-py types it as a union)."""
    return [(text(i), {text(k): text(v) for k, v in (f or {}).items()}) for i, f in reply or []]


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


async def run_pipeline(pipe: Any, raise_on_error: bool = True) -> list[Any]:
    """pipe.execute(), with redis-py's own faults turned into what they stand for
    (client_fault)."""
    try:
        replies: list[Any] = await pipe.execute(raise_on_error=raise_on_error)
    except (AttributeError, TypeError) as exc:
        raise client_fault(exc) or exc from exc
    return replies


def client_fault(exc: BaseException) -> RedisError | None:
    """An AttributeError or TypeError raised inside redis-py itself: its cluster client
    can tear down a connection another task is using (after a timeout or a failover it
    re-reads the topology and disconnects the old nodes; seen in the failover tests and
    once in a crowd on a starved CI machine; redis/redis-py#3835 is the same family).
    That is the lost connection it stands for: a 503 and a retry, not a 500."""
    if not isinstance(exc, AttributeError | TypeError):
        return None
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = "" if tb is None else tb.tb_frame.f_code.co_filename
    if f"{os.sep}redis{os.sep}" not in where:
        return None  # our own bug: a 500, logged
    return RedisConnectionError(f"connection lost inside the Redis client ({exc})")


def redis_url_of(settings: Settings) -> str:
    """FLASHCLAIM_REDIS_URL, else the embedded server `serve` runs on this data directory
    (the commands other than serve reach Redis this way)."""
    url = settings.redis_url or running_url(settings.data_dir)
    if url is None:
        raise SettingsError(
            f"no Redis: set FLASHCLAIM_REDIS_URL, or run `flashclaim serve` with data dir "
            f"{settings.data_dir}"
        )
    return url
