"""Money as a person reads it: major units with the currency ("6,480.00 CNY").

Inside the service and on the JSON API money is an integer in minor units (fen, cents);
everything printed for a person (reports, the demo) goes through `format_money`, so one
amount is never shown in two units.
"""

from __future__ import annotations

# ISO 4217 currencies whose minor unit is not a hundredth (the rest have two decimals).
_MINOR_DIGITS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}


def minor_digits(currency: str) -> int:
    """Decimal places of the currency's minor unit (2 unless ISO 4217 says otherwise)."""
    return _MINOR_DIGITS.get(currency, 2)


def format_money(minor: int, currency: str) -> str:
    """2000, "CNY" -> "20.00 CNY"; 648000 -> "6,480.00 CNY"; 500, "JPY" -> "500 JPY"."""
    digits = minor_digits(currency)
    sign = "-" if minor < 0 else ""
    whole, part = divmod(abs(minor), 10**digits)
    fraction = f".{part:0{digits}d}" if digits else ""
    return f"{sign}{whole:,}{fraction} {currency}"


def format_amounts(amounts: dict[str, int]) -> str:
    """Amounts in several currencies, e.g. "20.00 CNY, 3.50 USD"; "0" when there are none."""
    return ", ".join(format_money(n, c) for c, n in sorted(amounts.items())) or "0"
