"""Idempotency-Keys: what a key is (checked), what it is bound to, and its token in claim.lua.

The first use of a key, per user, binds it for 24 hours to the campaign and the body it came
with (`SET NX GET`: atomic on its own); another campaign or body under it is 409. The grant
itself is decided by claim.lua alone, which keeps each grant's claim under the key's token and
replays it. A refused claim releases the binding it made (compare and delete), so a later,
correct retry with the key is decided afresh and refused keys do not pile up in Redis.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from flashclaim.errors import IDEMPOTENCY_KEY_REUSED, ApiError, invalid_request
from flashclaim.keys import KeySpace, key_digest
from flashclaim.store.scripts import Scripts
from flashclaim.validation import IDEMPOTENCY_KEY_RE

BINDING_MS = 24 * 3600 * 1000  # how long a key stays bound to its first campaign and body


def checked_key(value: str | None) -> str | None:
    """The Idempotency-Key header as sent, if it is one (1-255 printable ASCII), else 400."""
    if value is not None and not IDEMPOTENCY_KEY_RE.fullmatch(value):
        raise invalid_request("Idempotency-Key must be 1-255 printable ASCII characters.")
    return value


def key_token(user_id: str, idempotency_key: str) -> str:
    """The claim's dedup token in claim.lua for a client's key (a grab without one uses its
    own claim id, a grant `g:<grant>:<user>`)."""
    return f"k:{user_id}:{key_digest(idempotency_key)}"


def fingerprint(campaign_id: str, channel: str | None, source_ref: str) -> str:
    """What a key is bound to: the campaign and the request's body."""
    return f"{campaign_id}\n{channel or ''}" + (f"\n{source_ref}" if source_ref else "")


@dataclass(frozen=True, slots=True)
class Binding:
    """A binding this request made (and must release if nothing is granted under it)."""

    key: str
    fingerprint: str


class IdempotencyKeys:
    def __init__(self, redis: Redis, scripts: Scripts, keyspace: KeySpace) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keyspace = keyspace

    async def bind(self, user_id: str, idempotency_key: str, bound_to: str) -> Binding | None:
        """Bind the key to `bound_to` (a fingerprint), or find it bound to the same; 409 when
        it is bound to anything else. The binding when this request made it, else None."""
        key = self._keyspace.idempotency(user_id, idempotency_key)
        previous = await self._redis.set(key, bound_to, nx=True, px=BINDING_MS, get=True)
        if previous is not None and previous != bound_to:
            raise ApiError(*IDEMPOTENCY_KEY_REUSED)
        return Binding(key, bound_to) if previous is None else None

    async def release(self, binding: Binding) -> None:
        """Unbind, if the key is still bound as this request bound it."""
        await self._scripts.release_idempotency(binding.key, binding.fingerprint)

    async def peek(self, user_id: str, idempotency_key: str, bound_to: str, home_key_id: str
                   ) -> str | None:
        """Without binding: the claim JSON granted under this key in the user's home bucket
        (None if there is none); 409 when the key is bound to another request. One round
        trip, for a tap the gate can answer."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(self._keyspace.idempotency(user_id, idempotency_key))
        pipe.hget(self._keyspace.campaign(home_key_id).dedup,
                  key_token(user_id, idempotency_key))
        bound, stored = await pipe.execute()
        if bound is not None and bound != bound_to:
            raise ApiError(*IDEMPOTENCY_KEY_REUSED)
        return None if stored is None else str(stored)
