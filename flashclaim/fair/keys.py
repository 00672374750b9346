"""The fairness key, and the two keys derived from it: one signs challenges, one hashes
addresses and devices. Every service instance must share it (FLASHCLAIM_FAIRNESS_SECRET;
`serve` keeps one in the data directory)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from flashclaim.fair.challenge import Challenges
from flashclaim.fair.trace import Tracer


def derived(secret: bytes, purpose: str) -> bytes:
    return hmac.new(secret, purpose.encode(), hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class Fairness:
    challenges: Challenges
    tracer: Tracer

    @classmethod
    def of(cls, secret: bytes | None) -> Fairness:
        """From the shared secret; None (a tool, a test): a key of this process only."""
        key = secret or secrets.token_bytes(32)
        return cls(Challenges(derived(key, "challenge")), Tracer(derived(key, "trace")))
