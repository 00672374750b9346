"""The one judge of the promises: each check fails on its planted breach, and passes
on a clean set (audit, reconcile, the verdict and the demo all judge through it)."""

from __future__ import annotations

import pytest

from flashclaim.checks.invariants import (
    BLOCK_STALENESS_MS,
    Grant,
    Issued,
    answered_breaches,
    blocked_breaches,
    budget_breaches,
    counter_breaches,
    daily_breaches,
    exclusion_breaches,
    lost_breaches,
    record_breaches,
    stream_count_breaches,
    summarize,
    tally,
)

CLEAN = [Grant("c1", "u1", 1), Grant("c2", "u2", 2), Grant("c3", "u1", 3)]


def judged(grants: list[Grant], granted: int = 3, complete: bool = True) -> list[str]:
    return record_breaches(summarize(grants), granted=granted, per_user_limit=2,
                           where="stream", complete=complete)


def test_a_clean_campaign_passes() -> None:
    assert counter_breaches(stock=5, remaining=2, granted=3) == []
    assert stream_count_breaches(added=3, granted=3) == []
    assert judged(CLEAN) == []
    assert answered_breaches(["c1", "c3"], {"c1", "c2", "c3"}, "stream") == []


@pytest.mark.parametrize(("grants", "granted", "expected"), [
    (CLEAN[:2], 3, "stream: lost: 1 grants have no record"),
    ([*CLEAN, Grant("c4", "u3", 4)], 3, "stream: extra: 4 records for 3 grants"),
    ([CLEAN[0], CLEAN[1], Grant("c1", "u3", 3)], 3, "duplicated claim_id in 1 records"),
    ([CLEAN[0], CLEAN[1], Grant("c3", "u3", 2)], 3, "duplicated seq in 1 records"),
    ([CLEAN[0], CLEAN[1], Grant("c3", "u3", 9)], 3, "seq outside 1..3: 1..9"),
    ([CLEAN[0], CLEAN[2]], 3, "seq gap: 1 of 1..3 have no record"),
    ([*CLEAN[:2], Grant("c3", "u1", 3), Grant("c4", "u1", 4)], 4,
     "above per_user_limit: a user holds 3 claims, limit 2"),
], ids=["lost", "extra", "dup id", "dup seq", "outside", "gap", "limit"])
def test_each_record_breach_is_named(grants: list[Grant], granted: int, expected: str) -> None:
    assert any(expected in b for b in judged(grants, granted)), judged(grants, granted)


def test_a_partial_set_is_not_lost_but_still_judged() -> None:
    """A trimmed stream or a lagging ledger: missing rows are not a breach, others are."""
    assert judged(CLEAN[:2], complete=False) == []
    assert any("duplicated seq" in b for b in
               judged([CLEAN[0], Grant("c9", "u9", 1)], complete=False))
    assert lost_breaches(rows=4, expected_rows=6 - 2, where="ledger") == []  # 2 still lagging
    assert lost_breaches(rows=3, expected_rows=4, where="ledger") == [
        "ledger: lost: 1 grants have no record"]


def test_counter_and_answer_breaches() -> None:
    assert counter_breaches(stock=3, remaining=0, granted=4) == [
        "oversold: granted 4 > stock 3", "stock 3 != granted 4 + remaining 0"]
    assert counter_breaches(stock=3, remaining=-1, granted=3)[0] == "remaining is negative (-1)"
    assert stream_count_breaches(added=2, granted=3) == ["stream: 2 records for 3 grants"]
    found = answered_breaches(["c1", "c1", "ghost"], {"c1"}, "ledger")
    assert found == ["ledger: lost: 1 claims answered 201 are not recorded, e.g. ghost",
                     "duplicated: 1 claims answered 201 twice"]
    assert tally([*found, "oversold: granted 4 > stock 3", "stream: extra: 4 records"]) == {
        "oversold": 1, "lost": 1, "duplicated": 2}


def test_budget_breaches_are_named() -> None:
    assert budget_breaches(budget=None, committed=0, granted=9, unit_cost=500) == []
    assert budget_breaches(budget=5000, committed=5000, granted=10, unit_cost=500) == []
    overspent = budget_breaches(budget=4999, committed=5000, granted=10, unit_cost=500)
    assert overspent == ["oversold: budget overspent, committed 5000 > budget 4999"]
    assert tally(overspent)["oversold"] == 1
    assert budget_breaches(budget=9000, committed=4500, granted=10, unit_cost=500) == [
        "budget committed 4500 != granted 10 x unit cost 500"]


def test_issuing_rule_breaches_are_named() -> None:
    day = 86_400_000
    ok = [Issued("a", 1000, ("vip",)), Issued("a", 1000 + day, ("vip",))]
    assert daily_breaches(ok, 1, lambda ms: ms // day, "s") == []
    twice = [*ok, Issued("a", 2000, ())]
    assert "above per_user_daily_limit: a got 2" in daily_breaches(
        twice, 1, lambda ms: ms // day, "s")[0]
    assert daily_breaches(twice, None, lambda ms: ms // day, "s") == []
    assert exclusion_breaches(ok, ["risky"], "s") == []
    assert "excluded users hold coupons: 1, e.g. a" in exclusion_breaches(ok, ["vip"], "s")[0]
    # a grant inside the blocklist's staleness bound is not a breach; one after it is
    blocked = {"a": 1000 + day - BLOCK_STALENESS_MS + 1}
    assert blocked_breaches(ok, blocked, "s") == []
    assert "blocked users got coupons: 1" in blocked_breaches(ok, {"a": 0}, "s")[0]
