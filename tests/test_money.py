"""One way to print money for a person: major units with the currency."""

from __future__ import annotations

import pytest

from flashclaim.money import format_amounts, format_money


@pytest.mark.parametrize(("minor", "currency", "shown"), [
    (2000, "CNY", "20.00 CNY"),
    (648_000, "CNY", "6,480.00 CNY"),
    (5, "USD", "0.05 USD"),
    (-1250, "EUR", "-12.50 EUR"),
    (500, "JPY", "500 JPY"),
    (1234, "KWD", "1.234 KWD"),
    (0, "CNY", "0.00 CNY"),
])
def test_minor_units_are_shown_in_major_units(minor: int, currency: str, shown: str) -> None:
    assert format_money(minor, currency) == shown


def test_several_currencies_and_none() -> None:
    assert format_amounts({"USD": 350, "CNY": 2000}) == "20.00 CNY, 3.50 USD"
    assert format_amounts({}) == "0"
