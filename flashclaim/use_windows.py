"""When in the week a coupon may be used: slots of days and hours ("Saturday and Sunday
18:00-22:00") in a time zone, within the coupon's validity. Part of its rules of use
(use_rules.UseRules), carried with every coupon granted: the quote, the wallet and the use
path read them (docs/coupons.md, "Time-of-day windows")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_SLOTS = 7
_DAY_MIN = 24 * 60


@dataclass(frozen=True, slots=True)
class Slot:
    days: frozenset[int]  # 0 = Monday
    start: int  # minutes after local midnight
    end: int  # exclusive; up to 24:00

    def shown(self) -> dict[str, object]:
        return {"days": [DAYS[d] for d in sorted(self.days)], "from": _hhmm(self.start),
                "to": _hhmm(self.end)}


@dataclass(frozen=True, slots=True)
class UseWindows:
    slots: tuple[Slot, ...]
    timezone: str

    def open_at(self, ms: int) -> bool:
        local = _local(ms, self.timezone)
        minute = local.hour * 60 + local.minute
        return any(local.weekday() in s.days and s.start <= minute < s.end for s in self.slots)

    def next_open(self, ms: int) -> int | None:
        """The first moment at or after `ms` a slot is open (epoch ms); None: none (no slot
        names a day)."""
        if self.open_at(ms):
            return ms
        local = _local(ms, self.timezone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        found: list[int] = []
        for ahead in range(8):
            day = midnight + timedelta(days=ahead)
            for s in self.slots:
                if day.weekday() in s.days:
                    start = _at(day, s.start, self.timezone)
                    if start > ms:
                        found.append(start)
            if found:
                return min(found)
        return None

    def usable_from(self, ms: int, valid_until: int) -> int | None:
        """When a coupon valid until `valid_until` may next be used (`ms` itself when it
        may now); None: not again within its validity."""
        opens = self.next_open(ms)
        return opens if opens is not None and opens < valid_until else None

    def shown(self) -> dict[str, object]:
        return {"use_windows": [s.shown() for s in self.slots], "timezone": self.timezone}

    @classmethod
    def of(cls, coupon: dict[str, Any]) -> UseWindows | None:
        """From a coupon as granted (absent: usable at any hour)."""
        raw = coupon.get("use_windows")
        if not raw:
            return None
        return cls(tuple(Slot(frozenset(DAYS.index(d) for d in w.get("days") or DAYS),
                              _minutes(w["from"]), _minutes(w["to"])) for w in raw),
                   str(coupon.get("timezone") or "UTC"))


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _local(ms: int, timezone: str) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(_zone(timezone))


def _at(day: datetime, minutes: int, timezone: str) -> int:
    """Epoch ms of `minutes` after the local midnight `day` (a wall-clock time)."""
    wall = day.replace(tzinfo=None) + timedelta(minutes=minutes)
    return int(wall.replace(tzinfo=_zone(timezone)).timestamp() * 1000)
