"""The issuing rules over grant records: daily limits, excluded segments, the blocklist.

Judged against the campaign's current definition (a PATCH that tightens a rule
later makes earlier grants look like breaches: reconcile says so, and an operator
who changed the rule knows why).
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from flashclaim.campaigns import CampaignView
from flashclaim.checks.invariants import (
    Issued,
    blocked_breaches,
    daily_breaches,
    exclusion_breaches,
)
from flashclaim.stream import ClaimRecord
from flashclaim.zones import DEFAULT_TIMEZONE, local_day


def blocked_times(raw: dict[str, str]) -> dict[str, int]:
    """The blocklist hash as user -> blocked_at (epoch ms)."""
    return {user: int(orjson.loads(entry)["blocked_at"]) for user, entry in raw.items()}


def issuance_breaches(view: CampaignView, records: Iterable[ClaimRecord],
                      blocked_at: dict[str, int], where: str) -> list[str]:
    issued = [Issued(r.user_id, r.claimed_at, r.tags) for r in records]
    timezone = str(view.definition.get("timezone", DEFAULT_TIMEZONE))
    return (daily_breaches(issued, view.per_user_daily_limit,
                           lambda ms: local_day(timezone, ms), where)
            + exclusion_breaches(issued, view.definition.get("exclude_segments", []), where)
            + blocked_breaches(issued, blocked_at, where))
