"""The claim path: bind the Idempotency-Key, let claim.lua decide, render the answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson
from redis.asyncio import Redis

from flashclaim.claim.caps import CapGuard, Reservation
from flashclaim.claim.coalescer import ClaimCoalescer
from flashclaim.claim.decision import ClaimCode, ClaimDecision, ClaimRequest, rejection
from flashclaim.claim.gate import ClaimGate
from flashclaim.claim.idempotency import Binding, IdempotencyKeys, fingerprint, key_token
from flashclaim.claim.identity import Identity
from flashclaim.coupons import new_claim_id
from flashclaim.fair.keys import Fairness
from flashclaim.keys import KeySpace
from flashclaim.store.blocklist import Blocklist
from flashclaim.store.buckets import REFILL_ROUNDS, BucketRouter, Route
from flashclaim.store.cap_store import CapGroups
from flashclaim.store.connection import text
from flashclaim.store.scripts import Scripts
from flashclaim.stream import Source
from flashclaim.timefmt import to_rfc3339

Proof = tuple[object, object]  # (challenge token, nonce) as the request body carries them
_Decide = Callable[[list[ClaimRequest]], Awaitable[list[ClaimDecision]]]
# What a bucket answers when it alone ran out: another bucket may still sell.
REFILLABLE = (ClaimCode.SOLD_OUT, ClaimCode.BUDGET_EXHAUSTED)


@dataclass(frozen=True, slots=True)
class ClaimOutcome:
    status: int  # 201 granted, 200 replay
    claim: dict[str, Any]


class ClaimService:
    """Decides claims. Its collaborators come from the composition root (web/services.py);
    `ClaimService.over` builds the default ones, for tools and tests."""

    def __init__(self, *, redis: Redis, scripts: Scripts, keyspace: KeySpace, gate: ClaimGate,
                 blocklist: Blocklist, buckets: BucketRouter, coalescer: ClaimCoalescer,
                 idempotency: IdempotencyKeys, ip_limit: tuple[int, int] | None = None,
                 fairness: Fairness | None = None, caps: CapGuard | None = None) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keyspace = keyspace
        self.gate = gate
        self.blocklist = blocklist
        self.buckets = buckets
        self._coalescer = coalescer
        self._keys = idempotency
        self._ip_limit = ip_limit
        self.fairness = fairness or Fairness.of(None)
        self.caps = caps or CapGuard(scripts, keyspace, CapGroups(redis, keyspace))

    @classmethod
    def over(cls, redis: Redis, scripts: Scripts, keyspace: KeySpace, *,
             gate: ClaimGate | None = None, ip_limit: tuple[int, int] | None = None
             ) -> ClaimService:
        return cls(redis=redis, scripts=scripts, keyspace=keyspace, gate=gate or ClaimGate(),
                   blocklist=Blocklist(redis, scripts, keyspace),
                   buckets=BucketRouter(redis, scripts, keyspace),
                   coalescer=ClaimCoalescer(scripts, keyspace),
                   idempotency=IdempotencyKeys(redis, scripts, keyspace), ip_limit=ip_limit)

    async def claim(
        self, campaign_id: str, who: Identity, channel: str | None, idempotency_key: str | None,
        client_ip: str | None = None, source: Source = Source.GRAB, source_ref: str = "",
        proof: Proof | None = None,
    ) -> ClaimOutcome:
        """A grab, or a code redemption (source CODE, source_ref the code's keyed hash):
        the user's own request. `proof`: the (challenge token, nonce) it carries."""
        if idempotency_key is None:
            known = self.refusal_from_memory(campaign_id, who)
            if known is not None:  # what Redis would say, without asking it
                raise rejection(known)
        else:
            known = self.gate.answer(campaign_id, who.user_id, tally=False)
            if known is not None:  # the answer is known, unless this key's claim exists
                return await self._keyed_from_memory(campaign_id, who, channel,
                                                     idempotency_key, source_ref, known)
        solved = self._verified(campaign_id, who, proof)  # a wrong one: one hash, no Redis
        route = await self.buckets.route(campaign_id, who.user_id)
        claim_id = new_claim_id(route.key_id)  # names the slot its coupons are kept in
        reservation: Reservation | None = None
        if route.cap_group:
            reserved = await self.caps.reserve(route.cap_group, who.user_id, claim_id,
                                               route.pack)
            if isinstance(reserved, ClaimDecision):
                return await self._capped(route, who, channel, idempotency_key, source_ref,
                                          reserved)
            reservation = reserved
        binding: Binding | None = None
        if idempotency_key is None:
            # A server-made token still lets claim.lua recognise a client-library retry.
            token = "r:" + claim_id
        else:
            binding = await self._keys.bind(who.user_id, idempotency_key,
                                            fingerprint(campaign_id, channel, source_ref))
            token = key_token(who.user_id, idempotency_key)
        request = ClaimRequest(claim_id, token, who.user_id, who.tags, channel, idempotency_key,
                               client_ip, self._ip_limit, source, source_ref,
                               await self.blocklist.is_blocked(who.user_id),
                               device_id=who.device_id, challenge=solved,
                               trace=self.fairness.tracer.of(client_ip, who.device_id))
        decision = await self._coalescer.decide(route.key_id, request)
        if decision.code in REFILLABLE and route.buckets > 1:
            [decision] = await self._refilled(route, [request], [decision], self._one(route))
        if reservation is not None:
            await self.caps.settle(reservation, decision)
        self.gate.learn(campaign_id, who.user_id, decision)
        if binding is not None and decision.code not in (ClaimCode.GRANTED, ClaimCode.REPLAY):
            # Nothing was granted under this key: it must not stay bound (a later, correct
            # retry with it must work, and refused keys must not pile up in Redis).
            await self._keys.release(binding)
        if decision.code is ClaimCode.GRANTED:
            return ClaimOutcome(201, render_claim(decision.payload))
        if decision.code is ClaimCode.REPLAY:
            # Without a client key, a replay can only be our own retried call (its reply was
            # lost): to this client it is the original grant.
            status = 201 if idempotency_key is None else 200
            return ClaimOutcome(status, render_claim(decision.payload))
        raise rejection(decision.code, decision.payload)

    async def _capped(self, route: Route, who: Identity, channel: str | None,
                      idempotency_key: str | None, source_ref: str, refusal: ClaimDecision
                      ) -> ClaimOutcome:
        """A claim the user's cap group refused: a keyed retry of an earlier grant is still
        answered that grant (it takes no more room); anything else is the refusal."""
        if idempotency_key is not None:
            stored = await self._keys.peek(who.user_id, idempotency_key,
                                           fingerprint(route.campaign_id, channel, source_ref),
                                           route.key_id)
            if stored is not None:
                return ClaimOutcome(200, render_claim(stored))
        self.gate.count(route.campaign_id, refusal.code)
        raise rejection(refusal.code, refusal.payload)

    def _verified(self, campaign_id: str, who: Identity, proof: Proof | None) -> str:
        """A proof of work, checked (403 challenge_invalid when wrong), packed for claim.lua;
        "" for none (claim.lua refuses it if the campaign asks for one)."""
        if proof is None:
            return ""
        token, nonce = proof
        return self.fairness.challenges.verify(campaign_id, who.user_id, token, nonce,
                                               int(time.time() * 1000)).packed()

    async def enter(self, campaign_id: str, who: Identity, channel: str | None,
                    client_ip: str | None, proof: Proof | None) -> tuple[int, bool]:
        """An entry into a drawn campaign, decided by claim.lua with a claim's rules: when
        it was entered (epoch ms), and whether just now; a refusal raises its ApiError.
        Idempotent: an entrant entering again is answered its entry (spending nothing)."""
        solved = self._verified(campaign_id, who, proof)
        claim_id = new_claim_id(campaign_id)
        request = ClaimRequest(claim_id, "e:" + who.user_id, who.user_id, who.tags, channel,
                               None, client_ip, self._ip_limit,
                               blocked=await self.blocklist.is_blocked(who.user_id),
                               device_id=who.device_id, challenge=solved, entry=True,
                               trace=self.fairness.tracer.of(client_ip, who.device_id))
        [reply] = await self._scripts.claim(self._keyspace.campaign(campaign_id), [request])
        decision = ClaimDecision.of(reply)
        if decision.code is not ClaimCode.ENTERED:
            raise rejection(decision.code, decision.payload)
        entered_at, _, again = decision.payload.partition(":")
        return int(entered_at), not again

    def refusal_from_memory(self, campaign_id: str, who: Identity) -> ClaimCode | None:
        """The refusal of a tap without an Idempotency-Key that this process knows without
        asking Redis (sold out, ended, paused, the user holds its limit): what claim.lua
        would answer. Counted in the campaign's stats when made. The listener asks this for
        a tap it holds whole (web/http_server.py); the claim path asks it first."""
        return self.gate.answer(campaign_id, who.user_id)

    async def grant(self, campaign_id: str, grant_id: str, users: list[Identity],
                    values: list[int | None] | None = None) -> list[ClaimDecision]:
        """An operator grant to many users: one batch of claim.lua decisions, each idempotent
        per (grant id, user) through its dedup token, so a resubmitted or resumed grant
        replays instead of granting twice."""
        routes = [await self.buckets.route(campaign_id, who.user_id) for who in users]
        requests = [
            ClaimRequest(new_claim_id(route.key_id), f"g:{grant_id}:{who.user_id}", who.user_id,
                         who.tags, Source.GRANT.value, None, source=Source.GRANT,
                         source_ref=grant_id, blocked=await self.blocklist.is_blocked(who.user_id),
                         value=value)
            for who, route, value in zip(users, routes, values or [None] * len(users),
                                         strict=True)
        ]
        if routes and routes[0].cap_group:
            decisions = await self._capped_batch(routes, requests)
        else:
            decisions = await self._decide_routed(routes, requests)
        for who, decision in zip(users, decisions, strict=True):
            self.gate.learn(campaign_id, who.user_id, decision)
        return decisions

    async def _capped_batch(self, routes: list[Route], requests: list[ClaimRequest]
                            ) -> list[ClaimDecision]:
        """A grant's users on a capped campaign: each reserved under its cap first; those
        refused are answered the refusal (or, resumed, the grant they hold already), the
        others decided by claim.lua and then settled."""
        reserved = await asyncio.gather(*(
            self.caps.reserve(route.cap_group, r.user_id, r.claim_id, route.pack)
            for route, r in zip(routes, requests, strict=True)))
        decided: dict[int, ClaimDecision] = {}
        for i, found in enumerate(reserved):
            if isinstance(found, ClaimDecision):
                stored = await self._redis.hget(
                    self._keyspace.campaign(routes[i].key_id).dedup, requests[i].dedup_token)
                decided[i] = found if stored is None else ClaimDecision(
                    ClaimCode.REPLAY, text(stored))
                if stored is None:
                    self.gate.count(routes[i].campaign_id, found.code)
        todo = [i for i in range(len(requests)) if i not in decided]
        found_now = await self._decide_routed([routes[i] for i in todo],
                                              [requests[i] for i in todo])
        decided.update(zip(todo, found_now, strict=True))
        await self.caps.settle_all([(r, decided[i]) for i, r in enumerate(reserved)
                                    if isinstance(r, Reservation)])
        return [decided[i] for i in range(len(requests))]

    async def grant_drawn(self, campaign_id: str, users: list[str]) -> list[ClaimDecision]:
        """The winners of a drawn campaign (one bucket), granted through claim.lua with
        source "draw", each idempotent per user (dedup token "d:<user>"): a draw begun
        again after a restart replays its grants."""
        requests = [
            ClaimRequest(new_claim_id(campaign_id), "d:" + user, user, (), None, None,
                         source=Source.DRAW, blocked=await self.blocklist.is_blocked(user))
            for user in users
        ]
        decide = self._batch(Route(campaign_id, 1, 0))
        decisions = await decide(requests)
        for user, decision in zip(users, decisions, strict=True):
            self.gate.learn(campaign_id, user, decision)
        return decisions

    async def _decide_routed(self, routes: list[Route], requests: list[ClaimRequest]
                             ) -> list[ClaimDecision]:
        """A batch over users of one campaign: one claim.lua call per bucket, in order within
        it (refilled like a single claim)."""
        decided: dict[int, ClaimDecision] = {}
        by_bucket: dict[int, list[int]] = {}
        for i, route in enumerate(routes):
            by_bucket.setdefault(route.bucket, []).append(i)
        for indices in by_bucket.values():
            route = routes[indices[0]]
            batch = [requests[i] for i in indices]
            decide = self._batch(route)
            found = await self._refilled(route, batch, await decide(batch), decide)
            decided.update(zip(indices, found, strict=True))
        return [decided[i] for i in range(len(requests))]

    async def _refilled(self, route: Route, requests: list[ClaimRequest],
                        decided: list[ClaimDecision], decide: _Decide) -> list[ClaimDecision]:
        """The decisions, after asking again for those the bucket refused as sold out (or
        out of budget) once stock (budget) moved in from another bucket (at most
        REFILL_ROUNDS times; a campaign of one bucket has nowhere to take it from). The one
        refill rule of claims and grants."""
        decided = list(decided)
        todo = [i for i, d in enumerate(decided) if d.code in REFILLABLE]
        rounds = REFILL_ROUNDS
        while todo and route.buckets > 1 and rounds and await self.buckets.refill(route):
            rounds -= 1  # stock moved in (or is on its way): ask the bucket again
            again = await decide([replace(requests[i], retry_of=decided[i].code)
                                  for i in todo])
            for i, d in zip(todo, again, strict=True):
                decided[i] = d
            todo = [i for i in todo if decided[i].code in REFILLABLE]
        return decided

    def _one(self, route: Route) -> _Decide:
        """A user's own claim: through the coalescer, batched with others of the bucket."""
        async def decide(requests: list[ClaimRequest]) -> list[ClaimDecision]:
            return [await self._coalescer.decide(route.key_id, r) for r in requests]
        return decide

    def _batch(self, route: Route) -> _Decide:
        """A grant's users: one script call of their own."""
        keys = self._keyspace.campaign(route.key_id)

        async def decide(requests: list[ClaimRequest]) -> list[ClaimDecision]:
            return [ClaimDecision.of(d) for d in await self._scripts.claim(keys, requests)]
        return decide

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
        home = (await self.buckets.route(campaign_id, who.user_id)).key_id  # holds its replays
        stored = await self._keys.peek(who.user_id, idempotency_key,
                                       fingerprint(campaign_id, channel, source_ref), home)
        if stored is not None:
            return ClaimOutcome(200, render_claim(stored))
        self.gate.count(campaign_id, known)
        raise rejection(known)


def render_claim(payload: str) -> dict[str, Any]:
    """The stream's claim JSON (epoch ms) as the HTTP API shows it (RFC 3339)."""
    claim: dict[str, Any] = orjson.loads(payload)
    claim["claimed_at"] = to_rfc3339(claim["claimed_at"])
    for coupon in claim["coupons"]:
        coupon["valid_from"] = to_rfc3339(coupon["valid_from"])
        coupon["valid_until"] = to_rfc3339(coupon["valid_until"])
    return claim
