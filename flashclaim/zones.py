"""Local days for daily limits: an IANA zone as UTC-offset rules claim.lua can apply.

Lua in Redis has no time-zone database, so the service hands claim.lua the zone's
UTC offsets and the instants they change over the campaign's life, computed here
once from Python's zoneinfo. claim.lua then counts days on the Redis clock.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flashclaim.errors import invalid_request

DEFAULT_TIMEZONE = "Asia/Shanghai"
TIMEZONE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+){0,2}")
HORIZON_MS = 10 * 365 * 86_400_000  # rules for campaigns without an end: ten years
_DAY_MS = 86_400_000  # no zone changes its offset twice in a day


def zone(name: str) -> ZoneInfo:
    """The IANA zone, or 400 (names are matched in full; no path tricks reach the disk)."""
    if len(name) > 64 or not TIMEZONE_RE.fullmatch(name):
        raise invalid_request("timezone must be an IANA zone name such as Asia/Shanghai.")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise invalid_request(f"timezone {name!r} is not a known IANA zone.") from None


def offset_ms(tz: ZoneInfo, epoch_ms: int) -> int:
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).astimezone(tz)
    delta = moment.utcoffset() or timedelta(0)
    return int(delta.total_seconds() * 1000)


def offset_rules(tz: ZoneInfo, start_ms: int, end_ms: int | None) -> str:
    """claim.lua's tz_rules: "<offset>" then ";<from ms>:<offset>" for every change.

    Offsets are sampled daily and each change is found to the millisecond by bisection.
    """
    end = (start_ms + HORIZON_MS) if end_ms is None else end_ms
    current = offset_ms(tz, start_ms)
    rules = [str(current)]
    t = start_ms
    while t < end:
        step = min(t + _DAY_MS, end)
        off = offset_ms(tz, step)
        if off != current:
            lo, hi = t, step  # offset(lo) == current, offset(hi) == off
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if offset_ms(tz, mid) == current:
                    lo = mid
                else:
                    hi = mid
            rules.append(f"{hi}:{off}")
            current = off
        t = step
    return ";".join(rules)


def local_day(timezone: str, epoch_ms: int) -> int:
    """The day number claim.lua counts daily limits in: days since 1970-01-01, local."""
    return (epoch_ms + offset_ms(zone(timezone), epoch_ms)) // 86_400_000
