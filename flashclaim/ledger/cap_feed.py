"""The ledger consumer's part in caps across campaigns (docs/design.md, "Caps across
campaigns"): what the claim path could not be trusted to finish.

- Every grant of a capped campaign is settled again from the stream (cap_settle.lua is
  idempotent), so a service that died between claim.lua and its own settle leaves the
  cap exact once the ledger has carried the grant.
- A use (redeemed, confirmed) takes the coupon out of the user's held set: until the
  ledger sees it, a used coupon still counts, which refuses more, never grants more.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import redis

from flashclaim.claim.caps import reservation_member
from flashclaim.coupons import USED_UP, CouponEvent
from flashclaim.keys import KeySpace
from flashclaim.store.connection import text
from flashclaim.store.scripts import load_sources
from flashclaim.stream import ClaimRecord

_GROUP_TTL_S = 5.0  # a campaign's cap group is fixed at creation; re-read for a new id
_GROUPS_KEPT = 10_000


class CapFeed:
    def __init__(self, r: redis.Redis, keyspace: KeySpace) -> None:
        self.r = r
        self.keyspace = keyspace
        self._settle = r.register_script(load_sources()["cap_settle"])
        self._groups: dict[str, tuple[str, float]] = {}  # campaign -> (group, read until)

    def _group_of(self, campaign_id: str) -> str:
        known = self._groups.get(campaign_id)
        if known is not None and known[1] > time.monotonic():
            return known[0]
        group = text(self.r.hget(self.keyspace.campaign(campaign_id).meta, "cap_group"))
        if len(self._groups) >= _GROUPS_KEPT:
            self._groups.clear()
        self._groups[campaign_id] = (group, time.monotonic() + _GROUP_TTL_S)
        return group

    def claims(self, records: Iterable[ClaimRecord]) -> int:
        """Settle the grants of capped campaigns; the number settled only now (a service
        died before it settled them)."""
        settled = 0
        for record in records:
            group = self._group_of(record.campaign_id)
            if not group:
                continue
            keys = self.keyspace.cap(group, record.user_id)
            coupons = record.claim["coupons"]
            flat = [x for c in coupons for x in (c["coupon_id"], int(c["valid_until"]))]
            settled += int(self._settle(
                keys=keys.script_keys(),
                args=[reservation_member(record.claim_id, len(coupons)), record.claim_id,
                      record.claimed_at, *flat]))
        return settled

    def uses(self, events: Iterable[CouponEvent]) -> int:
        """A used coupon no longer counts as held; the number taken out."""
        taken = 0
        for event in events:
            if event.event not in USED_UP:
                continue
            group = self._group_of(event.campaign_id)
            if group:
                taken += int(self.r.zrem(self.keyspace.cap(group, event.user_id).held,
                                         event.coupon_id))
        return taken
