"""What an id, a tag, a channel or a number in a URL must look like: one pattern each,
matched whole (request bodies are decoded by the types in flashclaim/schemas, which use
these patterns)."""

from __future__ import annotations

import re

from flashclaim.errors import invalid_request

CAMPAIGN_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
USER_ID_RE = re.compile(r"[A-Za-z0-9_.:@-]{1,128}")
TAG_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
CHANNEL_RE = re.compile(r"[a-z0-9_-]{1,32}")
CURRENCY_RE = re.compile(r"[A-Z]{3}")
MAX_NONCE_DIGITS = 20  # a proof of work's nonce: decimal digits (flashclaim/fair/challenge.py)
MAX_TAGS = 32  # tags one user carries (a header, a JWT claim, an operator grant)
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
