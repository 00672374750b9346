"""RFC 3339 on the HTTP API, epoch milliseconds inside Redis and the stream."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


@lru_cache(maxsize=4096)  # a batch of claims shares one instant; validity ends repeat
def to_rfc3339(epoch_ms: int) -> str:
    """2026-11-11T00:00:00.123Z"""
    seconds, millis = divmod(epoch_ms, 1000)
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"


def parse_rfc3339(text: str) -> int:
    """Epoch ms of an RFC 3339 timestamp with an offset; ValueError otherwise."""
    if not (20 <= len(text) <= 40) or text[10] not in "Tt":
        raise ValueError("not an RFC 3339 timestamp")
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        raise ValueError("an RFC 3339 timestamp needs an offset (Z or +hh:mm)")
    return (dt - _EPOCH) // _MS
