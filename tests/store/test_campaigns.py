"""The campaign model: status at the exact edges of its window (the same rule claim.lua uses:
not started while now < starts_at, ended from now >= ends_at)."""

from __future__ import annotations

import pytest

from flashclaim.campaigns import CampaignView

START, END = 1_800_000_000_000, 1_800_000_060_000


def view(**kw: object) -> CampaignView:
    fields: dict[str, object] = dict(id="c", stock=10, remaining=5, granted=5, paused=False,
                                     starts_at=START, ends_at=END, per_user_limit=1,
                                     definition={})
    fields.update(kw)
    return CampaignView(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("now", "status"), [
    (START - 1, "scheduled"),  # one millisecond before the start
    (START, "live"),  # the first millisecond of the window
    (END - 1, "live"),  # the last one
    (END, "ended"),  # exactly at the end: over
])
def test_status_at_the_edges(now: int, status: str) -> None:
    assert view().status(now) == status


@pytest.mark.parametrize(("kw", "status"), [
    ({"paused": True}, "paused"),
    ({"remaining": 0}, "sold_out"),
    ({"paused": True, "remaining": 0}, "paused"),
    ({"ends_at": None}, "live"),
])
def test_status_precedence(kw: dict[str, object], status: str) -> None:
    assert view(**kw).status(START + 1) == status
    assert view(**kw).status(START - 1) == "scheduled"
