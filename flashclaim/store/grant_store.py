"""Operator grants in Redis: submit users, read progress, hand batches to the runner.

A grant's keys sit under its campaign's hash tag (keys.GrantKeys); the list of
grants waiting to run is one sorted set every service polls (keys.pending_grants).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis

from flashclaim.errors import ApiError, campaign_not_found
from flashclaim.keys import KeySpace
from flashclaim.outbox import OutEvent
from flashclaim.packed import grant_user, grant_user_of
from flashclaim.schemas.base import UNSET, epoch_ms
from flashclaim.schemas.issuance import Grant, GrantCreate, GrantUserOutcome
from flashclaim.store.connection import server_time_ms, text, text_map
from flashclaim.store.scripts import Scripts
from flashclaim.timefmt import to_rfc3339

MAX_GRANT_BODY = 2 * 1024 * 1024  # 10,000 users with tags fit
GRANT_USERS_LIMIT_RANGE = (1, 10_000)


@dataclass(frozen=True, slots=True)
class GrantUser:
    user_id: str
    tags: tuple[str, ...] = ()
    value: int | None = None  # a personal value for the campaign's personal coupon

    def packed(self) -> str:
        return grant_user(self.user_id, self.tags, self.value)

    @classmethod
    def unpack(cls, packed: str) -> GrantUser:
        return cls(*grant_user_of(packed))


@dataclass(frozen=True, slots=True)
class GrantRequest:
    grant_id: str
    users: list[GrantUser]
    at: int | None  # epoch ms; None: now


def grant_request(body: GrantCreate) -> GrantRequest:
    users = [GrantUser(u) if isinstance(u, str) else GrantUser(u.user_id, tuple(u.tags), u.value)
             for u in body.users]
    return GrantRequest(body.grant_id, users, None if body.at is None else epoch_ms(body.at, "at"))


def grant_not_found(grant_id: str) -> ApiError:
    return ApiError(404, "grant_not_found", f"No grant with id {grant_id!r} on this campaign.")


class GrantStore:
    def __init__(self, redis: Redis, scripts: Scripts, keyspace: KeySpace) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keyspace = keyspace

    async def submit(self, campaign_id: str, request: GrantRequest) -> Grant:
        """Queue the users not yet in the grant; the runner takes it from there."""
        keys = self._keyspace.campaign(campaign_id)
        if not await self._redis.exists(keys.meta):  # (the script checks again)
            raise campaign_not_found(campaign_id)
        # Known to the sweep before any of its grants can be: a crash after the script
        # below leaves users the sweep finds and queues.
        await self._redis.sadd(self._keyspace.grant_campaigns, campaign_id)
        code, added, at = await self._scripts.submit_grant(
            keys, request.grant_id, request.at, [u.packed() for u in request.users])
        if code == "campaign_not_found":
            raise campaign_not_found(campaign_id)
        if code == "at_fixed":
            raise ApiError(409, "grant_at_fixed",
                           f"Grant {request.grant_id!r} starts at {to_rfc3339(at)}; a grant's "
                           "start is fixed by its first submission.")
        # The pending entry after the users (finish_grant.lua is the other half): a runner
        # finishing the grant meanwhile either saw these users, or this puts it back.
        await self._redis.zadd(self._keyspace.pending_grants,
                               {_member(campaign_id, request.grant_id): at})
        status = await self.status(campaign_id, request.grant_id)
        status.added, status.already_in_grant = added, len(request.users) - added
        return status

    async def status(self, campaign_id: str, grant_id: str) -> Grant:
        meta = text_map(await self._redis.hgetall(
            self._keyspace.campaign(campaign_id).grant(grant_id).meta))
        if not meta:
            raise grant_not_found(grant_id)
        outcomes = {k[2:]: int(v) for k, v in meta.items() if k.startswith("n:")}
        state = meta["state"]
        if state == "pending":
            now = await server_time_ms(self._redis)
            state = "scheduled" if int(meta["at"]) > now else "running"
        return Grant(
            grant_id=grant_id, campaign_id=campaign_id, state=state,
            at=to_rfc3339(int(meta["at"])), created_at=to_rfc3339(int(meta["created_at"])),
            total=int(meta["total"]), processed=int(meta["done"]),
            outcomes=dict(sorted(outcomes.items())),
        )

    async def users_page(self, campaign_id: str, grant_id: str, start: int, limit: int
                         ) -> tuple[list[GrantUserOutcome], int | None]:
        """Users in submission order from index `start`, with their outcomes."""
        keys = self._keyspace.campaign(campaign_id).grant(grant_id)
        packed = [text(p) for p in await self._redis.lrange(keys.users, start, start + limit - 1)]
        users = [GrantUser.unpack(p).user_id for p in packed]
        outcomes = await self._redis.hmget(keys.outcomes, users) if users else []
        page = []
        for user, raw in zip(users, outcomes, strict=True):
            outcome = text(raw or "")
            code, _, claim_id = outcome.partition(":")
            page.append(GrantUserOutcome(user_id=user, outcome=code or "pending",
                                         claim_id=claim_id or UNSET))
        return page, (start + limit if len(page) == limit else None)

    async def due(self, limit: int = 64) -> list[tuple[str, str]]:
        """(campaign, grant) pairs whose start time has come, on the Redis clock."""
        now = await server_time_ms(self._redis)
        members = await self._redis.zrange(self._keyspace.pending_grants, "-inf", now,
                                           byscore=True, offset=0, num=limit)
        pairs = []
        for m in cast(list[bytes | str], members):
            campaign_id, _, grant_id = text(m).partition("/")
            pairs.append((campaign_id, grant_id))
        return pairs

    async def progress(self, campaign_id: str, grant_id: str) -> tuple[int, int] | None:
        """(done, total), or None when the grant does not exist."""
        done, total = await self._redis.hmget(
            self._keyspace.campaign(campaign_id).grant(grant_id).meta, ["done", "total"])
        return None if total is None or done is None else (int(done), int(total))

    async def batch(self, campaign_id: str, grant_id: str, start: int, size: int
                    ) -> list[GrantUser]:
        keys = self._keyspace.campaign(campaign_id).grant(grant_id)
        return [GrantUser.unpack(text(p))
                for p in await self._redis.lrange(keys.users, start, start + size - 1)]

    async def record(self, campaign_id: str, grant_id: str, start: int, end: int,
                     outcomes: Sequence[tuple[str, str]]) -> tuple[str, int, int]:
        keys = self._keyspace.campaign(campaign_id).grant(grant_id)
        return await self._scripts.record_grant_outcomes(keys, start, end, outcomes)

    async def tell_done(self, campaign_id: str, grant_id: str, total: int) -> None:
        """grant.done to the webhooks that listen, before the grant leaves the pending list
        (a crash between the two tells again, with the same id; users added later make a
        later grant.done of the new total)."""
        ks = self._keyspace
        if not await self._redis.exists(ks.webhooks):
            return
        outcomes = {k.removeprefix("n:"): int(v) for k, v in text_map(
            await self._redis.hgetall(ks.campaign(campaign_id).grant(grant_id).meta)).items()
            if k.startswith("n:")}
        event = OutEvent(f"grant.done:{campaign_id}:{grant_id}:{total}", "grant.done",
                         campaign_id, int(time.time() * 1000),
                         {"grant_id": grant_id, "users": total, "outcomes": outcomes})
        await self._redis.xadd(ks.outbox, event.fields())  # type: ignore[arg-type]

    async def finish(self, campaign_id: str, grant_id: str) -> bool:
        """Off the pending list if every user is decided; True then. False: users arrived
        meanwhile, and the grant is pending again (its runner may go on)."""
        member = _member(campaign_id, grant_id)
        # Off the list first, then the atomic check: a submit in between either added its
        # users before the check (answer "more") or re-adds the entry itself afterwards.
        await self._redis.zrem(self._keyspace.pending_grants, member)
        code = await self._scripts.finish_grant(self._keyspace.campaign(campaign_id), grant_id)
        if code == "more":
            await self._redis.zadd(self._keyspace.pending_grants, {member: 0})
            return False
        return True

    async def sweep_lost(self, lease_owner: str, period_ms: int) -> int:
        """Put back on the pending list every undone grant that is not on it (a process
        died between a submit's two steps, or between a finish's). One runner sweeps per
        period (a lease); returns the grants looked at, 0 when another holds the period.
        Cost: one read per campaign that has grants, plus one write per undone grant."""
        campaigns = sorted(str(c) for c in await self._redis.smembers(
            self._keyspace.grant_campaigns))
        if not campaigns or not await self._redis.set(
                self._keyspace.grant_sweep_lease, lease_owner, nx=True, px=period_ms):
            return 0
        pipe = self._redis.pipeline(transaction=False)
        for campaign_id in campaigns:
            pipe.zrange(self._keyspace.campaign(campaign_id).grants_undone, 0, -1,
                        withscores=True)
        undone = await pipe.execute()
        lost = {_member(campaign_id, text(grant_id)): int(at)
                for campaign_id, grants in zip(campaigns, undone, strict=True)
                for grant_id, at in grants}
        if lost:  # NX: an entry already there keeps its place
            await self._redis.zadd(self._keyspace.pending_grants, lost, nx=True)
        return len(lost)

    async def drop(self, campaign_id: str, grant_id: str) -> None:
        """A pending entry whose grant does not exist (its campaign is gone)."""
        await self._redis.zrem(self._keyspace.pending_grants, _member(campaign_id, grant_id))

    async def take_lease(self, campaign_id: str, grant_id: str, owner: str, ms: int) -> bool:
        return bool(await self._redis.set(self._keyspace.grant_lease(campaign_id, grant_id),
                                          owner, nx=True, px=ms))

    async def renew_lease(self, campaign_id: str, grant_id: str, owner: str, ms: int) -> bool:
        return await self._scripts.renew_lease(
            self._keyspace.grant_lease(campaign_id, grant_id), owner, ms)

    async def release_lease(self, campaign_id: str, grant_id: str, owner: str) -> None:
        await self._scripts.renew_lease(
            self._keyspace.grant_lease(campaign_id, grant_id), owner, 0)


def _member(campaign_id: str, grant_id: str) -> str:
    """A grant's entry in the pending list."""
    return f"{campaign_id}/{grant_id}"

