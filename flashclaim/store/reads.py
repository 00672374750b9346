"""Reads that the service (asyncio) and the tools (synchronous) both make, written once.

A read is a generator: it yields a batch of commands (redis-py method names and their
arguments), receives their replies, and returns what it found. `run` and `run_async` send
each batch as one pipeline on a synchronous or an asynchronous client, so the logic of a fact
(how far the ledger is behind a stream, which campaigns are bucketed) exists once, and the
two shells only carry it. A failed command's reply is the exception itself, for the read to
judge: `missing` tells a key that is not there from a store that failed (which `ok` raises).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any, TypeVar

import redis
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from flashclaim.keys import KeySpace
from flashclaim.store.connection import text_map

T = TypeVar("T")
Command = tuple[Any, ...]  # ("xinfo_groups", stream): a client method and its arguments
Read = Generator[Sequence[Command], list[Any], T]


def run(r: redis.Redis, read: Read[T]) -> T:
    """The read, on a synchronous client."""
    try:
        batch = next(read)
        while True:
            batch = read.send(_queued(r, batch).execute(raise_on_error=False) if batch else [])
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def run_async(r: Redis, read: Read[T]) -> T:
    """The read, on an asyncio client."""
    try:
        batch = next(read)
        while True:
            replies = await _queued(r, batch).execute(raise_on_error=False) if batch else []
            batch = read.send(replies)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def _queued(r: redis.Redis | Redis, batch: Sequence[Command]) -> Any:
    """A pipeline (synchronous or asyncio, as the client) holding the batch's commands."""
    pipe = r.pipeline(transaction=False)
    for name, *args in batch:
        getattr(pipe, name)(*args)
    return pipe


def ok(reply: Any) -> Any:
    """The reply, or the store's failure raised (a cluster down, a lost connection)."""
    if isinstance(reply, Exception):
        raise reply
    return reply


def missing(reply: Any) -> bool:
    """The command found no such key (XINFO on a stream not created yet); any other failure
    is raised."""
    if isinstance(reply, ResponseError) and "no such key" in str(reply).lower():
        return True
    ok(reply)
    return False


def lag_from(groups: list[dict[str, Any]], group: str, added: int) -> tuple[int, str | None]:
    """Entries of a stream the group has not acknowledged: pending plus not yet delivered;
    every entry ever added when the group has not joined the stream yet. When the server
    cannot say how many are undelivered (after deletions inside the stream), the second
    value is the group's last delivered id: the entries after it are to be counted too, by
    reading them (exact, never a guess)."""
    g = next((x for x in groups if str(x["name"]) == group), None)
    if g is None:
        return added, None
    undelivered = g.get("lag")
    if undelivered is None:
        return int(g["pending"]), str(g["last-delivered-id"])
    return int(g["pending"]) + int(undelivered), None


def ledger_lags(streams: Sequence[str], group: str) -> Read[list[int]]:
    """How far `group` is behind each stream (0 for a stream not created yet)."""
    if not streams:
        return []
    replies = yield [c for s in streams for c in (("xinfo_groups", s), ("xinfo_stream", s))]
    counts: dict[int, str] = {}  # stream index -> last delivered id, where lag is unknown
    lags: list[int] = []
    for i, (groups, info) in enumerate(zip(replies[::2], replies[1::2], strict=True)):
        if missing(groups) or missing(info):
            lags.append(0)  # no such stream yet: nothing to carry
            continue
        lag, count_after = lag_from(groups, group, int(info["entries-added"]))
        lags.append(lag)
        if count_after is not None:
            counts[i] = count_after
    if counts:
        found = yield [("xrange", streams[i], "(" + after, "+") for i, after in counts.items()]
        for i, entries in zip(counts, found, strict=True):
            lags[i] += len(ok(entries) or [])
    return lags


def bucketed_campaigns(keyspace: KeySpace) -> Read[dict[str, int]]:
    """Every campaign with more than one bucket, and its bucket count. The index lists
    candidates (written before the campaign); each campaign's own meta is the truth."""
    [index] = yield [("hgetall", keyspace.bucketed)]
    candidates = list(text_map(ok(index)))
    counts = yield [("hget", keyspace.campaign(c).meta, "buckets") for c in candidates]
    return {c: int(n) for c, n in zip(candidates, map(ok, counts), strict=True)
            if n and int(n) > 1}
