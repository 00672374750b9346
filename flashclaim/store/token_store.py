"""Named operator tokens: made (the token answered once), listed, revoked; and each
service's copy of them, re-read within a second of a change (revocation included).

Only a token's SHA-256 is stored. A request's token is hashed and looked up: the lookup's
timing can tell nothing of a token, since what is compared is a hash of it, not it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis

from flashclaim.errors import ApiError
from flashclaim.keys import KeySpace
from flashclaim.roles import token_digest
from flashclaim.runtime.poll_loop import poll_forever
from flashclaim.store.connection import text


@dataclass(frozen=True, slots=True)
class TokenInfo:
    name: str
    role: str
    created_at: int


class TokenStore:
    def __init__(self, redis: Redis, keyspace: KeySpace) -> None:
        self._redis = redis
        self._keyspace = keyspace
        self._by_digest: dict[str, TokenInfo] = {}
        self._rev: str | None = None

    async def create(self, name: str, role: str) -> tuple[TokenInfo, str]:
        ks = self._keyspace
        token = "fct_" + secrets.token_urlsafe(32)
        info = TokenInfo(name, role, int(time.time() * 1000))
        stored = orjson.dumps({"role": role, "digest": token_digest(token),
                               "created_at": info.created_at})
        if not await self._redis.hsetnx(ks.tokens, name, stored):
            raise ApiError(409, "token_exists", f"A token named {name!r} exists.")
        await self._redis.hset(ks.token_digests, token_digest(token), name)
        await self._redis.incr(ks.tokens_rev)
        await self.refresh()
        return info, token

    async def all(self) -> list[TokenInfo]:
        raw = await self._redis.hgetall(self._keyspace.tokens)
        found = []
        for name, value in raw.items():
            d = orjson.loads(value)
            found.append(TokenInfo(text(name), d["role"], int(d["created_at"])))
        return sorted(found, key=lambda t: t.name)

    async def revoke(self, name: str) -> None:
        ks = self._keyspace
        raw = await self._redis.hget(ks.tokens, name)
        if raw is None:
            raise ApiError(404, "token_not_found", f"No token named {name!r}.")
        await self._redis.hdel(ks.token_digests, orjson.loads(raw)["digest"])
        await self._redis.hdel(ks.tokens, name)
        await self._redis.incr(ks.tokens_rev)
        await self.refresh()

    # ---- this service's copy ----------------------------------------------------------

    def find(self, token: str) -> TokenInfo | None:
        return self._by_digest.get(token_digest(token))

    async def refresh(self) -> None:
        """Re-read the tokens if they changed since the last read (one GET otherwise)."""
        ks = self._keyspace
        rev = text(await self._redis.get(ks.tokens_rev) or "0")
        if rev == self._rev:
            return
        raw = await self._redis.hgetall(ks.tokens)
        by_digest = {}
        for name, value in raw.items():
            d = orjson.loads(value)
            by_digest[d["digest"]] = TokenInfo(text(name), d["role"], int(d["created_at"]))
        self._by_digest, self._rev = by_digest, rev

    async def refresh_forever(self, every: float = 0.5) -> None:
        await poll_forever(self.refresh, asyncio.Event(), every, "tokens")
