"""Strict readers for decoded JSON: exact types (a bool is not an int), bounds, no unknown fields.

Each reader raises ApiError(400, invalid_request) naming the offending field.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from flashclaim.errors import invalid_request
from flashclaim.timefmt import parse_rfc3339

CAMPAIGN_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
USER_ID_RE = re.compile(r"[A-Za-z0-9_.:@-]{1,128}")
TAG_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
CHANNEL_RE = re.compile(r"[a-z0-9_-]{1,32}")
CURRENCY_RE = re.compile(r"[A-Z]{3}")
IDEMPOTENCY_KEY_RE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?")

_ASCII_DIGITS = re.compile(r"[0-9]+")

# Timestamps a campaign may use: 2000-01-01 .. 2200-01-01.
MIN_TIME_MS = 946_684_800_000
MAX_TIME_MS = 7_258_118_400_000


def ascii_int(text: str, max_digits: int) -> int | None:
    """The number `text` spells in 1 to `max_digits` ASCII digits, else None. (str.isdigit
    accepts "²" and "①", which int() then refuses.)"""
    if len(text) > max_digits or not _ASCII_DIGITS.fullmatch(text):
        return None
    return int(text)


def campaign_id(value: str) -> str:
    """A campaign id from a path, or 400."""
    if not CAMPAIGN_ID_RE.fullmatch(value):
        raise invalid_request("A campaign id is 1-64 chars of A-Za-z0-9_-.")
    return value


class Obj:
    """A JSON object being read field by field; `done()` rejects fields nobody read."""

    def __init__(self, value: object, where: str) -> None:
        if not isinstance(value, dict):
            raise invalid_request(f"{where} must be a JSON object.")
        self._d: dict[str, Any] = value
        self._where = where
        self._seen: set[str] = set()

    def _path(self, name: str) -> str:
        return name if self._where == "body" else f"{self._where}.{name}"

    def has(self, name: str) -> bool:
        return name in self._d and self._d[name] is not None

    def keys(self) -> set[str]:
        return set(self._d)

    def present(self, name: str) -> bool:
        """Sent at all, even as null."""
        return name in self._d

    def optional_integer(self, name: str, lo: int, hi: int) -> int | None:
        """An integer, or None when absent or null."""
        if self.has(name):
            return self.integer(name, lo, hi)
        self._seen.add(name)
        return None

    def items(self) -> dict[str, Any]:
        return dict(self._d)

    def raw(self, name: str) -> object:
        self._seen.add(name)
        return self._d.get(name)

    def integer(self, name: str, lo: int, hi: int, default: int | None = None) -> int:
        value = self.raw(name)
        if value is None:
            if default is None:
                raise invalid_request(f"{self._path(name)} is required.")
            return default
        if type(value) is not int or not lo <= value <= hi:
            raise invalid_request(f"{self._path(name)} must be an integer from {lo} to {hi}.")
        return value

    def string(
        self, name: str, pattern: re.Pattern[str] | None = None, *, max_len: int = 200,
        default: str | None = None,
    ) -> str:
        value = self.raw(name)
        if value is None:
            if default is None:
                raise invalid_request(f"{self._path(name)} is required.")
            return default
        if not isinstance(value, str) or not 1 <= len(value) <= max_len:
            raise invalid_request(f"{self._path(name)} must be a string of 1 to {max_len} chars.")
        if pattern is not None and not pattern.fullmatch(value):
            raise invalid_request(f"{self._path(name)} must match {pattern.pattern}.")
        if pattern is None and not value.isprintable():
            raise invalid_request(f"{self._path(name)} must not contain control characters.")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        """true or false (never 0 or 1); the default when absent or null."""
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise invalid_request(f"{self._path(name)} must be true or false.")
        return value

    def timestamp(self, name: str, default: int | None = None) -> int | None:
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, str):
            try:
                ms = parse_rfc3339(value)
            except ValueError:
                ms = -1
            if MIN_TIME_MS <= ms <= MAX_TIME_MS:
                return ms
        raise invalid_request(
            f"{self._path(name)} must be an RFC 3339 time with an offset, "
            "e.g. 2026-11-11T00:00:00+08:00, between years 2000 and 2200."
        )

    def strings(self, name: str, pattern: re.Pattern[str], max_items: int) -> list[str]:
        value = self.raw(name)
        if value is None:
            return []
        if not isinstance(value, list) or len(value) > max_items:
            raise invalid_request(f"{self._path(name)} must be a list of at most {max_items}.")
        for item in value:
            if not isinstance(item, str) or not pattern.fullmatch(item):
                raise invalid_request(f"{self._path(name)} items must match {pattern.pattern}.")
        if len(set(value)) != len(value):
            raise invalid_request(f"{self._path(name)} must not repeat an item.")
        return list(value)

    def nested(self, name: str) -> Obj | None:
        value = self.raw(name)
        return None if value is None else Obj(value, self._path(name))

    def array(self, name: str, lo: int, hi: int) -> list[Any]:
        value = self.raw(name)
        if not isinstance(value, list) or not lo <= len(value) <= hi:
            raise invalid_request(f"{self._path(name)} must be a list of {lo} to {hi} items.")
        return value

    def done(self, allowed_extra: Collection[str] = ()) -> None:
        unknown = sorted(set(self._d) - self._seen - set(allowed_extra))
        if unknown:
            raise invalid_request(f"Unknown field {self._path(unknown[0])!r}.")
