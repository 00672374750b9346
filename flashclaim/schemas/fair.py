"""A fair sale's answers: a challenge to solve, an entry into a drawn campaign, the
entries as the draw saw them."""

from __future__ import annotations

from typing import Annotated

import msgspec

from flashclaim.schemas.base import UNSET, Answer, TimeText
from flashclaim.schemas.claims import Claim


class ChallengeAnswer(Answer, kw_only=True):
    """GET /v1/campaigns/{id}/challenge: find a decimal nonce such that SHA-256 of
    token + ":" + nonce (UTF-8) starts with `difficulty` zero bits."""

    token: str
    difficulty: int
    expires_at: TimeText
    server_time: TimeText = UNSET


class EntryAnswer(Answer, kw_only=True):
    """POST /v1/campaigns/{id}/entries (201 a new entry, 200 an entry made before) and
    GET /v1/campaigns/{id}/entries/me."""

    campaign_id: str
    user_id: str
    entered: bool
    entered_at: TimeText | None
    result: Annotated[str, msgspec.Meta(
        extra_json_schema={"enum": ["pending", "won", "lost"]},
        description="pending until the draw is done; won: `claim` holds the grant")]
    claim: Claim | None = None
    server_time: TimeText = UNSET


class Entry(Answer, kw_only=True):
    user_id: str
    entered_at: TimeText


class EntriesPage(Answer, kw_only=True):
    """GET /v1/admin/campaigns/{id}/entries: every entrant, a page at a time (`next` is the
    cursor of the next page, null after the last). With the seed, anyone recomputes the
    winners from it (docs/fairness.md)."""

    entries: list[Entry]
    next: str | None
