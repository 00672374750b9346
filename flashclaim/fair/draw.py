"""A drawn campaign's winners: anyone can recompute them from the entries and the seed.

Each entrant's rank is the hex HMAC-SHA256 keyed with the seed's 32 bytes over the UTF-8
user id; the winners are the `stock` entrants of the smallest ranks (ascending). The
seed's SHA-256 is published when the campaign is created, the seed once the draw is
done: the operator could not have chosen a seed that favours anyone after seeing the
entries, and everybody can check that it did not.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
from collections.abc import Iterable


def rank(seed: bytes, user_id: str) -> str:
    return hmac.new(seed, user_id.encode(), hashlib.sha256).hexdigest()


def winners(seed: bytes, entrants: Iterable[str], stock: int) -> list[str]:
    """The winners, best rank first (a heap of `stock`: a million entrants cost a million
    HMACs and little memory beyond the list)."""
    return heapq.nsmallest(stock, entrants, key=lambda user: rank(seed, user))
