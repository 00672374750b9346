"""The alerts and their rules as the API reads and changes them (the watcher writes the
alerts: flashclaim/risk/watch.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
from redis.asyncio import Redis

from flashclaim.errors import ApiError
from flashclaim.keys import KeySpace
from flashclaim.risk.rules import Rule, rules_from, stored_change
from flashclaim.store.connection import text

ALERTS_LIMIT_RANGE = (1, 500)



class AlertStore:
    def __init__(self, redis: Redis, keyspace: KeySpace) -> None:
        self._redis = redis
        self._keyspace = keyspace

    async def newest(self, limit: int) -> list[dict[str, Any]]:
        """The newest alerts first, with their evidence."""
        ks = self._keyspace
        ids = await self._redis.zrevrange(ks.risk_alert_index, 0, limit - 1)
        if not ids:
            return []
        raw = await self._redis.hmget(ks.risk_alerts, [text(i) for i in ids])
        return [orjson.loads(a) for a in raw if a is not None]

    async def counts(self) -> dict[str, int]:
        """Alerts ever raised, per rule."""
        raw = await self._redis.hgetall(self._keyspace.risk_alert_counts)
        return {text(k): int(v) for k, v in raw.items()}

    async def rules(self) -> dict[str, Rule]:
        raw = await self._redis.hgetall(self._keyspace.risk_rules)
        return rules_from({text(k): text(v) for k, v in raw.items()})

    async def change(self, name: str, threshold: int | None, window_s: int | None,
                     block: bool | None) -> Rule:
        rules = await self.rules()
        if name not in rules:
            raise ApiError(404, "rule_not_found", f"No alert rule {name!r}.")
        rule = rules[name]
        rule = replace(rule, threshold=rule.threshold if threshold is None else threshold,
                       window_s=rule.window_s if window_s is None else window_s,
                       block=rule.block if block is None else block)
        await self._redis.hset(self._keyspace.risk_rules, name, stored_change(rule))
        return rule
