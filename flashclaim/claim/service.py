"""The claim path: bind the Idempotency-Key, let claim.lua decide, render the answer."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import orjson
from redis.asyncio import Redis

from flashclaim.claim.coalescer import ClaimCoalescer
from flashclaim.claim.gate import ClaimGate
from flashclaim.claim.identity import Identity
from flashclaim.coupons import new_claim_id
from flashclaim.errors import CLAIM_REJECTIONS, IDEMPOTENCY_KEY_REUSED, ApiError
from flashclaim.keys import KeySpace, key_digest
from flashclaim.store.blocklist import Blocklist
from flashclaim.store.buckets import REFILL_ROUNDS, BucketRouter, Route
from flashclaim.store.scripts import ClaimCode, ClaimDecision, ClaimRequest, Scripts, Source
from flashclaim.timefmt import to_rfc3339

# How long an Idempotency-Key stays bound to the campaign and body it was first used with.
IDEMPOTENCY_BINDING_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class ClaimOutcome:
    status: int  # 201 granted, 200 replay
    claim: dict[str, Any]


class ClaimService:
    def __init__(self, redis: Redis, scripts: Scripts, keyspace: KeySpace,
                 gate: ClaimGate | None = None, ip_limit: tuple[int, int] | None = None,
                 blocklist: Blocklist | None = None) -> None:
        self._redis = redis
        self._scripts = scripts
        self._ip_limit = ip_limit
        self.blocklist = blocklist or Blocklist(redis, scripts, keyspace)
        self._keyspace = keyspace
        self._coalescer = ClaimCoalescer(scripts, keyspace)
        self.gate = gate or ClaimGate()
        self.buckets = BucketRouter(redis, scripts, keyspace)

    async def claim(
        self, campaign_id: str, who: Identity, channel: str | None, idempotency_key: str | None,
        client_ip: str | None = None, source: Source = Source.GRAB, source_ref: str = "",
    ) -> ClaimOutcome:
        """A grab, or a code redemption (source CODE, source_ref the code's keyed hash):
        the user's own request."""
        if idempotency_key is None:
            known = self.gate.answer(campaign_id, who.user_id)
            if known is not None:  # what Redis would say, without asking it
                raise _rejection(known, "")
        else:
            known = self.gate.answer(campaign_id, who.user_id, tally=False)
            if known is not None:  # the answer is known, unless this key's claim exists
                return await self._keyed_from_memory(campaign_id, who, channel,
                                                     idempotency_key, source_ref, known)
        route = await self.buckets.route(campaign_id, who.user_id)
        claim_id = new_claim_id(route.key_id)  # names the slot its coupons are kept in
        binding: tuple[str, str] | None = None
        if idempotency_key is None:
            # A server-made token still lets claim.lua recognise a client-library retry.
            token = "r:" + claim_id
        else:
            binding = await self._bind_idempotency_key(campaign_id, who, channel,
                                                       idempotency_key, source_ref)
            token = f"k:{who.user_id}:{key_digest(idempotency_key)}"
        request = ClaimRequest(claim_id, token, who.user_id, who.tags, channel, idempotency_key,
                               client_ip, self._ip_limit, source, source_ref,
                               await self.blocklist.is_blocked(who.user_id))
        decision = await self._coalescer.decide(route.key_id, request)
        rounds = REFILL_ROUNDS if route.buckets > 1 else 0
        while decision.code is ClaimCode.SOLD_OUT and rounds and await self.buckets.refill(route):
            rounds -= 1  # stock moved in (or is on its way): ask the bucket again
            decision = await self._coalescer.decide(route.key_id, replace(request, retry=True))
        self.gate.learn(campaign_id, who.user_id, decision)
        if binding is not None and decision.code not in (ClaimCode.GRANTED, ClaimCode.REPLAY):
            # Nothing was granted under this key: it must not stay bound (a later, correct
            # retry with it must work, and refused keys must not pile up in Redis).
            await self._scripts.release_idempotency(*binding)
        if decision.code is ClaimCode.GRANTED:
            return ClaimOutcome(201, render_claim(decision.payload))
        if decision.code is ClaimCode.REPLAY:
            # Without a client key, a replay can only be our own retried call (its reply was
            # lost): to this client it is the original grant.
            status = 201 if idempotency_key is None else 200
            return ClaimOutcome(status, render_claim(decision.payload))
        raise _rejection(decision.code, decision.payload)

    async def grant(self, campaign_id: str, grant_id: str, users: list[Identity]
                    ) -> list[ClaimDecision]:
        """An operator grant to many users: one batch of claim.lua decisions, each idempotent
        per (grant id, user) through its dedup token, so a resubmitted or resumed grant
        replays instead of granting twice."""
        routes = [await self.buckets.route(campaign_id, who.user_id) for who in users]
        requests = [
            ClaimRequest(new_claim_id(route.key_id), f"g:{grant_id}:{who.user_id}", who.user_id,
                         who.tags, Source.GRANT.value, None, source=Source.GRANT,
                         source_ref=grant_id, blocked=await self.blocklist.is_blocked(who.user_id))
            for who, route in zip(users, routes, strict=True)
        ]
        decisions = await self._decide_routed(routes, requests)
        for who, decision in zip(users, decisions, strict=True):
            self.gate.learn(campaign_id, who.user_id, decision)
        return decisions

    async def _decide_routed(self, routes: list[Route], requests: list[ClaimRequest]
                             ) -> list[ClaimDecision]:
        """A batch over users of one campaign: one claim.lua call per bucket, in order within
        it; the claims a bucket refused as sold out are retried there after a refill."""
        decided: dict[int, ClaimDecision] = {}
        by_bucket: dict[int, list[int]] = {}
        for i, route in enumerate(routes):
            by_bucket.setdefault(route.bucket, []).append(i)
        for indices in by_bucket.values():
            route = routes[indices[0]]
            keys = self._keyspace.campaign(route.key_id)
            todo, rounds = indices, REFILL_ROUNDS
            while todo and rounds:
                retry = rounds < REFILL_ROUNDS  # after a refill (its sold_out was counted)
                rounds -= 1
                found = await self._scripts.claim(
                    keys, [replace(requests[i], retry=retry) for i in todo])
                decided.update(zip(todo, found, strict=True))
                todo = [i for i in todo if decided[i].code is ClaimCode.SOLD_OUT]
                if not todo or route.buckets == 1 or not await self.buckets.refill(route):
                    break
        return [decided[i] for i in range(len(requests))]

    async def flush_tallies(self) -> None:
        """Add the rejections answered from memory to the campaigns' stats in Redis."""
        await self.gate.flush(self._redis, self._keyspace)

    def campaign_changed(self, campaign_id: str) -> None:
        """An operator changed the campaign (pause, resume, stock): what this process
        knew of it from memory no longer holds."""
        self.gate.forget(campaign_id)

    async def _keyed_from_memory(
        self, campaign_id: str, who: Identity, channel: str | None, idempotency_key: str,
        source_ref: str, known: ClaimCode,
    ) -> ClaimOutcome:
        """A keyed tap where the gate knows the answer (sold out, ended, paused, the user
        holds the limit): claim.lua would only add a replay of this key's claim, or, before
        it, a conflicting use of the key. One round trip reads both; nothing is bound, as a
        refused key must not stay bound anyway (the full path binds, then releases it)."""
        key = self._keyspace.idempotency(who.user_id, idempotency_key)
        token = f"k:{who.user_id}:{key_digest(idempotency_key)}"
        home = (await self.buckets.route(campaign_id, who.user_id)).key_id  # holds its replays
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(key)
        pipe.hget(self._keyspace.campaign(home).dedup, token)
        bound, stored = await pipe.execute()
        if bound is not None and bound != _fingerprint(campaign_id, channel, source_ref):
            raise ApiError(*IDEMPOTENCY_KEY_REUSED)
        if stored is not None:
            return ClaimOutcome(200, render_claim(stored))
        self.gate.count(campaign_id, known)
        raise _rejection(known, "")

    async def _bind_idempotency_key(
        self, campaign_id: str, who: Identity, channel: str | None, idempotency_key: str,
        source_ref: str,
    ) -> tuple[str, str] | None:
        """The first use of a key fixes its campaign and body; any other use is a conflict.

        SET NX GET makes the binding atomic on its own; the grant itself is still
        decided by claim.lua alone, which replays the stored claim for this key.
        Returns (key, fingerprint) when this request made the binding, else None.
        """
        fingerprint = _fingerprint(campaign_id, channel, source_ref)
        key = self._keyspace.idempotency(who.user_id, idempotency_key)
        previous = await self._redis.set(key, fingerprint, nx=True, px=IDEMPOTENCY_BINDING_MS,
                                         get=True)
        if previous is not None and previous != fingerprint:
            raise ApiError(*IDEMPOTENCY_KEY_REUSED)
        return (key, fingerprint) if previous is None else None


def _fingerprint(campaign_id: str, channel: str | None, source_ref: str) -> str:
    """What an Idempotency-Key is bound to: the campaign and the request's body."""
    return f"{campaign_id}\n{channel or ''}" + (f"\n{source_ref}" if source_ref else "")


def _rejection(code: ClaimCode, payload: str) -> ApiError:
    status, message = CLAIM_REJECTIONS[code]
    retry_after = None
    if code in (ClaimCode.RATE_LIMITED, ClaimCode.DAILY_LIMIT):
        retry_after = max(1, math.ceil(int(payload) / 1000))
    return ApiError(status, code.value, message, retry_after=retry_after)


def render_claim(payload: str) -> dict[str, Any]:
    """The stream's claim JSON (epoch ms) as the HTTP API shows it (RFC 3339)."""
    claim: dict[str, Any] = orjson.loads(payload)
    claim["claimed_at"] = to_rfc3339(claim["claimed_at"])
    for coupon in claim["coupons"]:
        coupon["valid_from"] = to_rfc3339(coupon["valid_from"])
        coupon["valid_until"] = to_rfc3339(coupon["valid_until"])
    return claim
