"""The only place Redis key names are built.

Every key of one campaign carries the campaign id as its hash tag, so one script
can touch them all on Redis Cluster. Ids that users supply are validated to
exclude '{' and '}', so they can never move a key to another slot.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CampaignKeys:
    meta: str  # hash: definition and live counters (stock, remaining, granted, paused)
    users: str  # hash: user_id -> grants held
    dedup: str  # hash: dedup token -> claim JSON, for replays
    rejected: str  # hash: error code -> count
    stream: str  # stream: one entry per grant
    dead_letter: str  # stream: entries a consumer could not process, with the reason
    _rate_prefix: str

    # Users and client addresses count in separate namespaces ("u:" and "ip:"): a user
    # named "ip:203.0.113.7" must not share the counter of that address.
    def rate_limit(self, user_id: str) -> str:
        """String counter of one user's taps in the current rate-limit window."""
        return self._rate_prefix + "u:" + user_id

    def ip_rate_limit(self, client_ip: str) -> str:
        """String counter of one client IP's taps on this campaign in the current window."""
        return self._rate_prefix + "ip:" + client_ip

    def script_keys(self) -> list[str]:
        """KEYS[1..5] of claim.lua, in order."""
        return [self.meta, self.users, self.dedup, self.rejected, self.stream]


@dataclass(frozen=True, slots=True)
class KeySpace:
    namespace: str

    def campaign(self, campaign_id: str) -> CampaignKeys:
        base = f"{self.namespace}:{{{campaign_id}}}:"
        return CampaignKeys(
            meta=base + "campaign",
            users=base + "users",
            dedup=base + "dedup",
            rejected=base + "rejected",
            stream=base + "claims",
            dead_letter=base + "dead",
            _rate_prefix=base + "rl:",
        )

    @property
    def registry(self) -> str:
        """Sorted set of every campaign id, scored by creation time (epoch ms)."""
        return f"{self.namespace}:campaigns"

    @property
    def idempotency_pattern(self) -> str:
        """A SCAN/KEYS pattern for every Idempotency-Key binding (for operators and tests)."""
        return f"{self.namespace}:idem:*"

    def idempotency(self, user_id: str, idempotency_key: str) -> str:
        """Binds one user's Idempotency-Key to the first campaign and body it was used with."""
        return f"{self.namespace}:idem:{user_id}:{key_digest(idempotency_key)}"


def key_digest(idempotency_key: str) -> str:
    """A fixed-size, brace-free stand-in for a client's Idempotency-Key inside key names."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
