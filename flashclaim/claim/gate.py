"""The claim gate: answers from memory what Redis would answer anyway.

Most taps of a flash sale come after sell-out, or from users who already hold
their limit. The gate remembers, per process:

- campaigns that are closed: `ended` for good (time only moves forward);
  `sold_out` and `paused` for at most `closed_ttl_ms`, after which the next claim
  goes to Redis again: stock added or a resume is seen within that bound;
- (campaign, user) pairs that hold their lifetime limit (claim.lua says so with
  each answer), for `holder_ttl_ms`: a user's grant count never goes down, but an
  operator may raise the limit (PATCH), which every process sees within that bound.
  A daily limit is never remembered (it lifts at midnight).

It only learns from claim.lua's answers. A request with an Idempotency-Key may be the
replay of a grant: when the gate knows the answer, the claim service still looks for this
key's claim (one read, claim/idempotency.peek) and answers the replay if there is one.
Answers from memory skip the eligibility and rate-limit checks: "sold out" is true for
everyone. They are tallied and added to the campaign's rejection counts by `flush()`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from redis.asyncio import Redis

from flashclaim.claim.decision import ClaimCode, ClaimDecision
from flashclaim.keys import KeySpace

_FOREVER = float("inf")


class ClaimGate:
    def __init__(self, closed_ttl_ms: int = 200, max_holders: int = 1_000_000,
                 clock: Callable[[], float] = time.monotonic, holder_ttl_ms: int = 5000) -> None:
        self._ttl = closed_ttl_ms / 1000
        self._holder_ttl = holder_ttl_ms / 1000
        self._max_holders = max_holders
        self._clock = clock
        self._closed: dict[str, tuple[ClaimCode, float]] = {}  # campaign -> (code, until)
        # (campaign, user) -> until; insertion-ordered: the oldest is evicted first
        self._holders: dict[tuple[str, str], float] = {}
        self._tally: Counter[tuple[str, str]] = Counter()  # (campaign, code) answered here

    def answer(self, campaign_id: str, user_id: str, tally: bool = True) -> ClaimCode | None:
        """The code Redis would answer, when it is known here; None: ask Redis. With
        tally=False the caller counts the rejection itself, if it makes it (count())."""
        closed = self._closed.get(campaign_id)
        if closed is not None and closed[1] <= self._clock():
            del self._closed[campaign_id]
            closed = None
        code: ClaimCode | None = None
        if closed is not None and closed[0] is not ClaimCode.SOLD_OUT:
            code = closed[0]  # ended, paused: decided before the per-user limit
        elif self._holds(campaign_id, user_id):
            code = ClaimCode.ALREADY_CLAIMED
        elif closed is not None:
            code = closed[0]  # sold out
        if code is not None and tally:
            self.count(campaign_id, code)
        return code

    def count(self, campaign_id: str, code: ClaimCode) -> None:
        """One rejection answered from memory, for the campaign's stats."""
        self._tally[(campaign_id, code.value)] += 1

    def _holds(self, campaign_id: str, user_id: str) -> bool:
        until = self._holders.get((campaign_id, user_id))
        if until is None:
            return False
        if until <= self._clock():
            del self._holders[(campaign_id, user_id)]
            return False
        return True

    def learn(self, campaign_id: str, user_id: str, decision: ClaimDecision) -> None:
        code = decision.code
        if decision.holds_limit:  # after a grant that reached the limit, or already_claimed
            self._holders.pop((campaign_id, user_id), None)  # re-inserted: newest
            self._holders[(campaign_id, user_id)] = self._clock() + self._holder_ttl
            if len(self._holders) > self._max_holders:
                del self._holders[next(iter(self._holders))]
        if code is ClaimCode.ENDED:
            self._closed[campaign_id] = (code, _FOREVER)
        elif code in (ClaimCode.SOLD_OUT, ClaimCode.PAUSED):
            self._closed[campaign_id] = (code, self._clock() + self._ttl)
        elif code is ClaimCode.GRANTED:
            self._closed.pop(campaign_id, None)  # open after all (stock was added)

    def forget(self, campaign_id: str) -> None:
        """An admin change in this process: ask Redis again at once."""
        self._closed.pop(campaign_id, None)
        for pair in [p for p in self._holders if p[0] == campaign_id]:
            del self._holders[pair]

    async def flush(self, redis: Redis, keyspace: KeySpace) -> None:
        """Add the answers given from memory to the campaigns' rejection counts."""
        if not self._tally:
            return
        tally, self._tally = self._tally, Counter()
        async with redis.pipeline(transaction=False) as pipe:
            for (campaign_id, code), n in tally.items():
                pipe.hincrby(keyspace.campaign(campaign_id).rejected, code, n)
            await pipe.execute()
