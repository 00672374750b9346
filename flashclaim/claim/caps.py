"""Caps across campaigns: a user may hold at most N unused coupons, and receive at most M
grants a day, of the campaigns sharing a cap group (docs/design.md, "Caps across
campaigns").

The group's campaigns live in different hash slots, so one script cannot decide the cap
with the stock. Each claim on a capped campaign therefore takes three steps:

1. cap_reserve.lua, in the user's own slot, reserves room for the pack (or refuses
   `cap_reached` / `cap_daily_limit`): concurrent claims of one user meet here, in order.
2. claim.lua decides the claim in the campaign's slot, as for any campaign.
3. cap_settle.lua turns the reservation into held coupons (granted) or gives it back.

A crash between 2 and 3 leaves the reservation counting until it lapses (RESERVATION_MS);
the ledger consumer settles every grant of a capped campaign again from the stream
(ledger/cap_feed.py), so the cap holds exactly unless the ledger is further behind than
a reservation lives.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import orjson

from flashclaim.claim.decision import ClaimCode, ClaimDecision
from flashclaim.keys import CapKeys, KeySpace
from flashclaim.packed import join
from flashclaim.store.cap_store import CapGroups
from flashclaim.store.scripts import Scripts

RESERVATION_MS = 60_000  # how long a claim in flight counts if its service dies mid-claim
CAP_CALLS = 32  # cap scripts in flight at once (a crowd waits its turn, as for a connection)


@dataclass(frozen=True, slots=True)
class Reservation:
    keys: CapKeys
    member: str  # "<claim id>\x1f<coupons>"


def reservation_member(claim_id: str, pack: int) -> str:
    return join(claim_id, str(pack))


def granted_coupons(claim_json: str) -> tuple[str, int, list[tuple[str, int]]]:
    """A grant's claim id, when it was granted, and its coupons with their valid_until
    (epoch ms), from claim.lua's claim JSON."""
    claim = orjson.loads(claim_json)
    return (claim["claim_id"], int(claim["claimed_at"]),
            [(c["coupon_id"], int(c["valid_until"])) for c in claim["coupons"]])


class CapGuard:
    def __init__(self, scripts: Scripts, keyspace: KeySpace, groups: CapGroups,
                 concurrency: int = CAP_CALLS) -> None:
        self._scripts = scripts
        self._keyspace = keyspace
        self.groups = groups
        # Each capped claim sends two scripts of its own (claims themselves are batched):
        # bounded, so a crowd queues here instead of exhausting the connection pool (a
        # cluster client refuses a command beyond it instead of waiting).
        self._calls = asyncio.Semaphore(concurrency)

    async def reserve(self, group_name: str, user_id: str, claim_id: str, pack: int
                      ) -> Reservation | ClaimDecision | None:
        """Room for one claim of `pack` coupons: a reservation to settle, a refusal, or
        None when the group does not exist (any more): nothing is capped."""
        found = await self.groups.get(group_name)
        if found is None:
            return None
        group, tz_rules = found
        keys = self._keyspace.cap(group_name, user_id)
        member = reservation_member(claim_id, pack)
        async with self._calls:
            code, payload = await self._scripts.cap_reserve(
                keys, member, pack, group.max_unused, group.max_daily, tz_rules,
                RESERVATION_MS)
        if code != "reserved":
            return ClaimDecision(ClaimCode(code), payload)
        return Reservation(keys, member)

    async def settle(self, reservation: Reservation, decision: ClaimDecision) -> None:
        """After claim.lua decided: a grant's coupons now count as held; anything else
        (a refusal, a replay of a grant settled before) gives the room back."""
        claim_id, at, coupons = "", 0, list[tuple[str, int]]()
        if decision.code is ClaimCode.GRANTED:
            claim_id, at, coupons = granted_coupons(decision.payload)
        async with self._calls:
            await self._scripts.cap_settle(reservation.keys, reservation.member, claim_id, at,
                                           coupons)

    async def settle_all(self, pairs: list[tuple[Reservation, ClaimDecision]]) -> None:
        await asyncio.gather(*(self.settle(r, d) for r, d in pairs))
