"""Cap groups: their settings (a hash, name -> JSON), read by the claim path through a
cache of one second, so a change reaches every instance within a second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis

from flashclaim.keys import KeySpace
from flashclaim.store.connection import text_map
from flashclaim.zones import offset_rules, zone

_FRESH_S = 1.0
_RULES_AHEAD_MS = 3 * 86_400_000  # tz_rules reach this far past each read (a second old)


@dataclass(frozen=True, slots=True)
class CapSettings:
    name: str
    max_unused: int | None
    max_daily: int | None
    timezone: str

    def packed(self) -> bytes:
        return orjson.dumps({"max_unused": self.max_unused, "max_daily": self.max_daily,
                             "timezone": self.timezone})

    @classmethod
    def unpack(cls, name: str, raw: str) -> CapSettings:
        d = orjson.loads(raw)
        return cls(name, d["max_unused"], d["max_daily"], d["timezone"])

    def tz_rules(self, now_ms: int) -> str:
        """The group's day boundaries, as lua/include/local_day.lua reads them."""
        return offset_rules(zone(self.timezone), now_ms, now_ms + _RULES_AHEAD_MS)


class CapGroups:
    def __init__(self, redis: Redis, keyspace: KeySpace,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._redis = redis
        self._key = keyspace.cap_groups
        self._clock = clock
        self._cache: dict[str, tuple[CapSettings, str]] = {}  # name -> (group, its tz_rules)
        self._read_at = float("-inf")
        # One read in flight, shared by every claim that finds the copy old (a crowd must
        # not read the groups once a tap), as the blocklist's copy does; a change made here
        # meanwhile (its generation) keeps that read from counting as fresh.
        self._reading: asyncio.Task[None] | None = None
        self._generation = 0

    async def put(self, settings: CapSettings) -> bool:
        """Create or replace a group; True when it is new."""
        created = bool(await self._redis.hset(self._key, settings.name, settings.packed()))
        self._changed()
        return created

    async def delete(self, name: str) -> bool:
        removed = bool(await self._redis.hdel(self._key, name))
        self._changed()
        return removed

    def _changed(self) -> None:
        self._generation += 1
        self._read_at = float("-inf")

    async def all(self) -> list[CapSettings]:
        stored = text_map(await self._redis.hgetall(self._key))
        return [CapSettings.unpack(name, raw) for name, raw in sorted(stored.items())]

    async def exists(self, name: str) -> bool:
        """Whether the group exists now (not through the claim path's one-second copy: a
        campaign may name a group another instance made a moment ago)."""
        return bool(await self._redis.hexists(self._key, name))

    async def get(self, name: str) -> tuple[CapSettings, str] | None:
        """The group as read at most a second ago, with its day boundaries (tz_rules, made
        with the read, not once a claim); None: no such group: nothing capped."""
        if self._clock() - self._read_at >= _FRESH_S:
            if self._reading is None or self._reading.done():
                self._reading = asyncio.ensure_future(self._read())
            await asyncio.shield(self._reading)
        return self._cache.get(name)

    async def _read(self) -> None:
        generation = self._generation
        now_ms = int(time.time() * 1000)  # (a day's boundaries: the service's clock will do)
        groups = {g.name: (g, g.tz_rules(now_ms)) for g in await self.all()}  # a handful
        self._cache = groups
        if generation == self._generation:
            self._read_at = self._clock()
