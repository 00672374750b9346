"""Recurring grants: a campaign granted to a segment on a schedule in the campaign's time
zone (every month on the 1st at 00:00, every Monday at 20:00, every day at 09:00).

Each schedule keeps its last run (epoch ms). Every service polls and runs what is due:
every occurrence after the last run up to now, in order (a service that was down catches
up, so none is skipped), each as an operator grant whose id names the schedule and the
occurrence's local time. Two services running one occurrence, or one running it again
after a crash before it recorded the run, submit the same grant: never run twice. The
run is recorded by a compare-and-set (lua/advance_schedule.lua), counted once.

Segments: a list of users, the users who sent an event type (within N days), or the users
N days without an `active` event (each recalled once, until active again).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from redis.asyncio import Redis

from flashclaim.errors import ApiError, campaign_not_found
from flashclaim.keys import KeySpace
from flashclaim.runtime.poll_loop import poll_forever
from flashclaim.schemas.triggers import WEEKDAYS, ScheduleBody
from flashclaim.store.connection import text
from flashclaim.store.grant_store import GrantRequest, GrantStore, GrantUser
from flashclaim.store.scripts import Scripts
from flashclaim.triggers.engine import FACTS_MS
from flashclaim.zones import DEFAULT_TIMEZONE, zone

DAY_MS = 86_400_000
GRANT_CHUNK = 5_000  # users per submission
MAX_CATCH_UP = 100  # occurrences one round runs for one schedule



def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def occurrences(every: dict[str, Any], tz: ZoneInfo, after_ms: int, until_ms: int,
                limit: int = MAX_CATCH_UP) -> list[datetime]:
    """The schedule's local times in (after, until], oldest first."""
    hour, minute = (int(x) for x in str(every.get("at", "00:00")).split(":"))
    day = datetime.fromtimestamp(after_ms / 1000, UTC).astimezone(tz).date()
    last = datetime.fromtimestamp(until_ms / 1000, UTC).astimezone(tz).date()
    found: list[datetime] = []
    while day <= last and len(found) < limit:
        if _matches(every, day):
            moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
            if after_ms < _ms(moment) <= until_ms:
                found.append(moment)
        day += timedelta(days=1)
    return found


def _matches(every: dict[str, Any], day: date) -> bool:
    if every.get("month_day") is not None:
        return day.day == int(every["month_day"])
    if every.get("weekday") is not None:
        return WEEKDAYS[day.weekday()] == str(every["weekday"])
    return True


def grant_id_of(schedule_id: str, moment: datetime) -> str:
    return f"s-{schedule_id}-{moment.strftime('%Y%m%d%H%M')}"


class Schedules:
    def __init__(self, redis: Redis, scripts: Scripts, keyspace: KeySpace,
                 grants: GrantStore) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keyspace = keyspace
        self._grants = grants

    async def add(self, body: ScheduleBody, now_ms: int) -> dict[str, Any]:
        definition = await self._redis.hget(self._keyspace.campaign(body.campaign_id).meta,
                                            "definition")
        if definition is None:
            raise campaign_not_found(body.campaign_id)
        timezone = str(orjson.loads(definition).get("timezone", DEFAULT_TIMEZONE))
        stored = {"schedule_id": body.schedule_id, "campaign_id": body.campaign_id,
                  "every": {k: v for k, v in (("month_day", body.every.month_day),
                                              ("weekday", body.every.weekday),
                                              ("at", body.every.at)) if v is not None},
                  "segment": {k: v for k, v in (
                      ("users", body.segment.users), ("event_type", body.segment.event_type),
                      ("within_days", body.segment.within_days),
                      ("inactive_days", body.segment.inactive_days)) if v is not None},
                  "timezone": timezone}
        ks = self._keyspace
        if not await self._redis.hsetnx(ks.schedules, body.schedule_id, orjson.dumps(stored)):
            raise ApiError(409, "schedule_exists", f"A schedule {body.schedule_id!r} exists.")
        await self._redis.hset(ks.schedule_runs, body.schedule_id, f"{now_ms}:0")
        return {**stored, "last_run": now_ms, "runs": 0}

    async def all(self) -> list[dict[str, Any]]:
        """Each schedule with its last run and how many runs it made."""
        ks = self._keyspace
        raw = await self._redis.hgetall(ks.schedules)
        runs = {text(k): text(v) for k, v in (await self._redis.hgetall(ks.schedule_runs)).items()}
        found = []
        for key, value in raw.items():
            last, _, count = runs.get(text(key), "0:0").partition(":")
            found.append({**orjson.loads(value), "last_run": int(last), "runs": int(count)})
        return sorted(found, key=lambda s: s["schedule_id"])

    async def delete(self, schedule_id: str) -> None:
        ks = self._keyspace
        if not await self._redis.hdel(ks.schedules, schedule_id):
            raise ApiError(404, "schedule_not_found", f"No schedule {schedule_id!r}.")
        await self._redis.hdel(ks.schedule_runs, schedule_id)
        await self._redis.delete(ks.schedule_recalled(schedule_id))

    def next_run(self, schedule: dict[str, Any], now_ms: int) -> int | None:
        ahead = occurrences(schedule["every"], zone(schedule["timezone"]), now_ms,
                            now_ms + 32 * DAY_MS, limit=1)
        return _ms(ahead[0]) if ahead else None

    async def run_due(self, now_ms: int) -> int:
        """Run every schedule's due occurrences; how many runs this call recorded."""
        ran = 0
        for schedule in await self.all():
            last = int(schedule["last_run"])
            for moment in occurrences(schedule["every"], zone(schedule["timezone"]), last,
                                      now_ms):
                await self._run(schedule, moment)
                # recorded after the run: a crash before it runs the same grant id again
                if not await self._scripts.advance_schedule(
                        self._keyspace.schedule_runs, schedule["schedule_id"], last,
                        _ms(moment)):
                    break  # another service is on this schedule: it goes on from here
                last = _ms(moment)
                ran += 1
        return ran

    async def _run(self, schedule: dict[str, Any], moment: datetime) -> None:
        users, recalled = await self._segment(schedule["segment"], schedule["schedule_id"],
                                              _ms(moment))
        grant_id = grant_id_of(schedule["schedule_id"], moment)
        for i in range(0, len(users), GRANT_CHUNK):
            chunk = [GrantUser(u) for u in users[i:i + GRANT_CHUNK]]
            await self._grants.submit(schedule["campaign_id"], GrantRequest(grant_id, chunk,
                                                                            None))
        if recalled:
            await self._redis.zadd(self._keyspace.schedule_recalled(schedule["schedule_id"]),
                                   recalled)

    async def _segment(self, segment: dict[str, Any], schedule_id: str, at_ms: int
                       ) -> tuple[list[str], dict[str, float]]:
        """The users of a run, and (inactive segments) those recalled now with their last
        activity."""
        ks = self._keyspace
        if "users" in segment:
            return list(segment["users"]), {}
        kind = "active" if "inactive_days" in segment else segment["event_type"]
        index = ks.users_by_event(kind)
        await self._redis.zremrangebyscore(index, "-inf", at_ms - FACTS_MS)
        if "event_type" in segment:
            since: int | str = "-inf"
            if "within_days" in segment:
                since = at_ms - int(segment["within_days"]) * DAY_MS
            return [text(u) for u in await self._redis.zrangebyscore(index, since, at_ms)], {}
        reply: Any = await self._redis.zrangebyscore(
            index, "-inf", at_ms - int(segment["inactive_days"]) * DAY_MS, withscores=True)
        dormant = [(text(u), float(last)) for u, last in reply or []]
        if not dormant:
            return [], {}
        before = await self._redis.zmscore(ks.schedule_recalled(schedule_id),
                                           [u for u, _ in dormant])
        fresh = {u: last for (u, last), seen in zip(dormant, before, strict=True)
                 if seen is None or float(seen) != last}
        return sorted(fresh), fresh

    async def _poll(self) -> None:
        await self.run_due(int(datetime.now(UTC).timestamp() * 1000))

    async def run_forever(self, every: float = 5.0) -> None:
        await poll_forever(self._poll, asyncio.Event(), every, "schedules")
