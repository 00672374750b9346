"""Coupon templates: a coupon defined once, copied into many campaigns.

A template has numbered versions; each version is written once and never changes.
A campaign that names {"template": id} copies the latest version at creation and
records its number, so a template in use never changes under a campaign.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
from redis.asyncio import Redis

from flashclaim.campaigns import TemplateLookup, TemplateRef
from flashclaim.errors import ApiError
from flashclaim.keys import KeySpace
from flashclaim.schemas.issuance import Template, TemplateList, TemplateVersion
from flashclaim.store.connection import text_map
from flashclaim.store.scripts import Scripts
from flashclaim.timefmt import to_rfc3339

MAX_VERSIONS = 1000
TEMPLATES_LIMIT_RANGE = (1, 500)


def template_not_found(template_id: str) -> ApiError:
    return ApiError(404, "template_not_found", f"No template with id {template_id!r}.")


class TemplateStore:
    def __init__(self, redis: Redis, scripts: Scripts, keyspace: KeySpace) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keyspace = keyspace

    async def add_version(self, template_id: str, version: dict[str, Any], now_ms: int
                          ) -> Template:
        body = {**version, "created_at": now_ms}
        number = await self._scripts.add_template_version(
            self._keyspace.template(template_id), self._keyspace.templates, template_id,
            orjson.dumps(body).decode(), MAX_VERSIONS)
        if number == 0:
            raise ApiError(409, "too_many_versions",
                           f"Template {template_id!r} has {MAX_VERSIONS} versions; use a new id.")
        return await self.get(template_id)

    async def get(self, template_id: str) -> Template:
        stored = text_map(await self._redis.hgetall(self._keyspace.template(template_id)))
        if not stored:
            raise template_not_found(template_id)
        latest = int(stored["latest"])
        versions = [_public(template_id, n, stored[str(n)]) for n in range(latest, 0, -1)
                    if str(n) in stored]
        return Template(**msgspec.structs.asdict(versions[0]), versions=versions)

    async def list(self, after: str, limit: int) -> TemplateList:
        """Templates by id, `limit` a page, after the id `after`."""
        start = f"({after}" if after else "-"
        ids = [i.decode() if isinstance(i, bytes) else str(i) for i in await self._redis.zrange(
            self._keyspace.templates, start, "+", bylex=True, offset=0, num=limit)]
        items = []
        for template_id in ids:
            try:
                items.append((await self.get(template_id)).versions[0])
            except ApiError:
                continue
        return TemplateList(templates=items, next=ids[-1] if len(ids) == limit else None)

    async def lookup(self, refs: set[tuple[str, int | None]]) -> TemplateLookup:
        """The template versions a campaign body names (None where there is none)."""
        found: TemplateLookup = {}
        for template_id, version in refs:
            key = self._keyspace.template(template_id)
            number = version
            if number is None:
                latest = await self._redis.hget(key, "latest")
                number = int(latest) if latest else None
            raw = await self._redis.hget(key, str(number)) if number else None
            found[(template_id, version)] = None if raw is None or number is None else \
                TemplateRef(template_id, number, orjson.loads(raw)["coupon"])
        return found


def _public(template_id: str, number: int, raw: str) -> TemplateVersion:
    v = orjson.loads(raw)
    return TemplateVersion(id=template_id, version=number, name=v["name"], coupon=v["coupon"],
                           created_at=to_rfc3339(v["created_at"]))
