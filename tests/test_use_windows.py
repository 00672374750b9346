"""Time-of-day windows (flashclaim/use_windows.py), and the quote that respects them: a
coupon for Saturday and Sunday 18:00-22:00 in Shanghai, at exact moments."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flashclaim.checkout.quote import Cart, HeldCoupon, Item, judge
from flashclaim.use_rules import UseRules
from flashclaim.use_windows import Slot, UseWindows

SHANGHAI = ZoneInfo("Asia/Shanghai")
WEEKEND_EVENINGS = UseWindows((Slot(frozenset({5, 6}), 18 * 60, 22 * 60),), "Asia/Shanghai")


def at(day: int, hour: int, minute: int = 0) -> int:
    """Epoch ms of 2026-12-<day> hour:minute in Shanghai (12th: a Saturday)."""
    return int(datetime(2026, 12, day, hour, minute, tzinfo=SHANGHAI).timestamp() * 1000)


def test_open_only_within_its_slots() -> None:
    assert datetime(2026, 12, 12, tzinfo=SHANGHAI).weekday() == 5  # a Saturday
    assert WEEKEND_EVENINGS.open_at(at(12, 18))
    assert WEEKEND_EVENINGS.open_at(at(13, 21, 59))
    assert not WEEKEND_EVENINGS.open_at(at(12, 22))  # `to` is exclusive
    assert not WEEKEND_EVENINGS.open_at(at(12, 17, 59))
    assert not WEEKEND_EVENINGS.open_at(at(9, 19))  # a Wednesday evening


def test_the_next_opening() -> None:
    assert WEEKEND_EVENINGS.next_open(at(9, 19)) == at(12, 18)  # Wednesday -> Saturday 18:00
    assert WEEKEND_EVENINGS.next_open(at(12, 23)) == at(13, 18)  # Saturday night -> Sunday
    assert WEEKEND_EVENINGS.next_open(at(13, 23)) == at(19, 18)  # Sunday night -> next week
    assert WEEKEND_EVENINGS.next_open(at(12, 19)) == at(12, 19)  # open: now
    shown = {"use_windows": [{"days": ["sat", "sun"], "from": "18:00", "to": "22:00"}],
             "timezone": "Asia/Shanghai"}
    assert WEEKEND_EVENINGS.shown() == shown
    assert UseWindows.of(shown) == WEEKEND_EVENINGS  # as the coupon carries it, and back


def test_the_quote_refuses_a_coupon_outside_its_window() -> None:
    coupon = HeldCoupon("c1", "camp", "cash", "CNY", at(1, 0), at(31, 0),
                        UseRules(windows=WEEKEND_EVENINGS), value=500)
    cart = Cart("app", "CNY", (Item("apple", "fruit", "m1", 1_000, 2),))
    wednesday = judge(coupon, cart, at(9, 19))
    assert (wednesday.applicable, wednesday.reason) == (False, "outside_window")
    saturday = judge(coupon, cart, at(12, 19))
    assert (saturday.applicable, saturday.discount) == (True, 500)
