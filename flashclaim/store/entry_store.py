"""What the API reads of a fair sale: a campaign's proof-of-work difficulty, a user's entry
into a drawn campaign and its result, and the entries, a page at a time."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from flashclaim.errors import ApiError
from flashclaim.keys import KeySpace
from flashclaim.store.connection import text

ENTRIES_LIMIT_RANGE = (1, 10_000)



@dataclass(frozen=True, slots=True)
class EntryStanding:
    entered_at: int | None  # None: not entered
    draw_state: str  # "open", "drawing", "done"
    claim: str | None  # the claim JSON of a winner


class EntryStore:
    def __init__(self, redis: Redis, keyspace: KeySpace) -> None:
        self._redis = redis
        self._keyspace = keyspace

    async def difficulty(self, campaign_id: str) -> tuple[int | None, int]:
        """The campaign's proof-of-work bits (None: it asks for none) and its starts_at;
        404 if no campaign."""
        found, bits, starts_at = await self._redis.hmget(
            self._keyspace.campaign(campaign_id).meta, ["id", "pow_bits", "starts_at"])
        if found is None:
            raise ApiError(404, "campaign_not_found", "No such campaign.")
        return (int(text(bits)) if text(bits) else None), int(text(starts_at))

    async def standing(self, campaign_id: str, user_id: str) -> EntryStanding:
        """A user's entry and what the draw gave it; 404 (not_a_draw) for other campaigns."""
        keys = self._keyspace.campaign(campaign_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hmget(keys.meta, ["id", "admission", "draw_state"])
            pipe.hget(keys.entries, user_id)
            pipe.hget(keys.dedup, "d:" + user_id)
            (found, admission, state), entry, claim = await pipe.execute()
        if found is None:
            raise ApiError(404, "campaign_not_found", "No such campaign.")
        if text(admission) != "draw":
            raise ApiError(409, "not_a_draw", "This campaign is not drawn; grab it instead.")
        entered_at = int(text(entry).partition("\x1f")[0]) if entry is not None else None
        return EntryStanding(entered_at, text(state), None if claim is None else text(claim))

    async def page(self, campaign_id: str, cursor: int, limit: int
                   ) -> tuple[list[tuple[str, int]], int]:
        """Entries (user, entered_at ms) from an HSCAN cursor, and the next cursor (0: done).
        A page may hold a few more or fewer than `limit` (HSCAN's COUNT is a hint)."""
        keys = self._keyspace.campaign(campaign_id)
        if not await self._redis.exists(keys.meta):
            raise ApiError(404, "campaign_not_found", "No such campaign.")
        nxt, found = await self._redis.hscan(keys.entries, cursor, count=limit)
        assert isinstance(found, dict)  # (no_values is not asked for)
        rows = sorted((text(u), int(text(v).partition("\x1f")[0])) for u, v in found.items())
        return rows, int(nxt)
