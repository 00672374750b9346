"""Events in (POST /v1/events) and the rules that grant on them.

An event is received once per event_id: its outcome is kept (FACTS_MS) and a repeat is
answered with it. Receiving one updates what the rules need to know of its user (each fact
a key of its own, kept FACTS_MS): when it signed up, whether this is its first event of
the type, who referred it. Then every rule on its type is checked, and each that holds
submits an operator grant of its campaigns to its users: the grant id is made of the rule
and the event, so the grant is idempotent per rule and event, and its users are decided by
claim.lua and recorded in the stream like any operator grant's.

A fact read (the signup time, the referrer) is not a counter: the decisions that must
not repeat are atomic on their own (the first event of a type: SET NX; a grant: its id).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from flashclaim.errors import ApiError
from flashclaim.holdout import Purchase
from flashclaim.keys import KeySpace
from flashclaim.schemas.triggers import Conditions, EventBody, RuleBody, RuleGrant
from flashclaim.store.connection import text
from flashclaim.store.grant_store import GrantRequest, GrantStore, GrantUser

FACTS_MS = 400 * 86_400_000  # a year and a bit: rules look back at most DAYS_RANGE
DAY_MS = 86_400_000
IN_HAND_MS = 30_000



@dataclass(frozen=True, slots=True)
class Facts:
    """What the rules know of an event's user, the event included."""

    signup_at: int | None
    first_of_type: bool
    referrer: str | None
    first_paid_order: bool


def grant_id_of(rule_id: str, event_id: str) -> str:
    """One grant per rule and event (an Id: at most 64 of A-Za-z0-9_-)."""
    return f"r-{rule_id}-{hashlib.sha256(event_id.encode()).hexdigest()[:20]}"


def holds(rule: RuleBody, event: EventBody, at: int, facts: Facts) -> bool:
    """Whether the rule's conditions hold for this event (its type already matched)."""
    when = rule.when
    if when.within_days_of_signup is not None and (
            facts.signup_at is None or at - facts.signup_at > when.within_days_of_signup * DAY_MS):
        return False
    if when.min_amount is not None and int(event.attributes.get("amount", -1)) < when.min_amount:
        return False
    if when.tags_any is not None and not set(when.tags_any) & set(
            event.attributes.get("tags", [])):
        return False
    if when.first_only and not facts.first_of_type:
        return False
    return not when.referee_first_paid_order or (facts.first_paid_order
                                                 and facts.referrer is not None)


def users_of(rule: RuleBody, event: EventBody, facts: Facts) -> list[str]:
    if rule.to == "user":
        return [event.user_id]
    assert facts.referrer is not None  # (holds() required it)
    return [facts.referrer] if rule.to == "referrer" else [event.user_id, facts.referrer]


class Triggers:
    def __init__(self, redis: Redis, keyspace: KeySpace, grants: GrantStore) -> None:
        self._redis = redis
        self._keyspace = keyspace
        self._grants = grants

    # ---- rules ------------------------------------------------------------------------

    async def add_rule(self, rule: RuleBody, now_ms: int) -> dict[str, Any]:
        for campaign_id in rule.grant.campaign_ids:
            if not await self._redis.exists(self._keyspace.campaign(campaign_id).meta):
                raise ApiError(404, "campaign_not_found", f"No campaign {campaign_id!r}.")
        stored = {"rule_id": rule.rule_id, "on": rule.on, "when": _when_dict(rule),
                  "grant": {"campaign_ids": rule.grant.campaign_ids}, "to": rule.to,
                  "created_at": now_ms}
        if not await self._redis.hsetnx(self._keyspace.trigger_rules, rule.rule_id,
                                        orjson.dumps(stored)):
            raise ApiError(409, "rule_exists", f"A rule with id {rule.rule_id!r} exists.")
        return stored

    async def rules(self) -> list[dict[str, Any]]:
        raw = await self._redis.hgetall(self._keyspace.trigger_rules)
        counts = {text(k): int(v) for k, v in
                  (await self._redis.hgetall(self._keyspace.trigger_rule_counts)).items()}
        rules = [orjson.loads(v) for v in raw.values()]
        for r in rules:
            r["grants_made"] = counts.get(r["rule_id"], 0)
        return sorted(rules, key=lambda r: (r["created_at"], r["rule_id"]))

    async def delete_rule(self, rule_id: str) -> None:
        if not await self._redis.hdel(self._keyspace.trigger_rules, rule_id):
            raise ApiError(404, "rule_not_found", f"No rule {rule_id!r}.")

    # ---- events -----------------------------------------------------------------------

    async def receive(self, event: EventBody, at: int) -> tuple[dict[str, Any], bool]:
        """The event's outcome, and whether it was received before (then nothing is
        done again: the first outcome is answered)."""
        ks = self._keyspace
        seen = ks.event_seen(event.event_id)
        # "" marks it in hand for IN_HAND_MS (a crash mid-way frees it for a retry)
        if not await self._redis.set(seen, "", nx=True, px=IN_HAND_MS):
            stored = await self._redis.get(seen)
            if not stored:
                raise ApiError(409, "event_in_progress", "This event is being handled; "
                               "send it again shortly for its outcome.")
            return orjson.loads(stored), True
        facts = await self._learn(event, at)
        if event.type == "order_paid" and "amount" in event.attributes:
            # the uplift report's purchases (the ledger keeps one row per event id, so a
            # retry after a crash here adds nothing)
            order_id = event.attributes.get("order_id")
            purchase = Purchase(event.event_id, event.user_id, int(event.attributes["amount"]),
                                order_id if isinstance(order_id, str) else "", at)
            await self._redis.xadd(ks.purchases, purchase.fields())  # type: ignore[arg-type]
        matched: list[str] = []
        grants: list[dict[str, str]] = []
        for raw in (await self._redis.hgetall(ks.trigger_rules)).values():
            rule = RuleBody(**_rule_fields(orjson.loads(raw)))
            if rule.on != event.type or not holds(rule, event, at, facts):
                continue
            matched.append(rule.rule_id)
            users = [GrantUser(u, tuple(event.attributes.get("tags", [])) if u == event.user_id
                               else ()) for u in users_of(rule, event, facts)]
            grant_id = grant_id_of(rule.rule_id, event.event_id)
            for campaign_id in rule.grant.campaign_ids:
                await self._grants.submit(campaign_id, GrantRequest(grant_id, users, None))
                grants.append({"campaign_id": campaign_id, "grant_id": grant_id})
            await self._redis.hincrby(ks.trigger_rule_counts, rule.rule_id,
                                      len(rule.grant.campaign_ids))
        outcome = {"event_id": event.event_id, "matched": sorted(matched), "grants": grants}
        await self._redis.set(seen, orjson.dumps(outcome), px=FACTS_MS)
        return outcome, False

    async def _learn(self, event: EventBody, at: int) -> Facts:
        ks = self._keyspace
        user = event.user_id
        if event.type == "signup":
            await self._redis.set(ks.signup_of(user), at, nx=True, px=FACTS_MS)
        if event.type == "referral":
            await self._redis.set(ks.referrer_of(user), event.attributes["referrer"], nx=True,
                                  px=FACTS_MS)
        await self._redis.zadd(ks.users_by_event(event.type), {user: at}, gt=True)
        first = bool(await self._redis.set(ks.first_event(event.type, user), event.event_id,
                                           nx=True, px=FACTS_MS))
        if not first:  # the same event delivered again is still the first of its type
            first = text(await self._redis.get(ks.first_event(event.type, user))) == event.event_id
        signup = await self._redis.get(ks.signup_of(user))  # (two slots on a cluster)
        referrer = await self._redis.get(ks.referrer_of(user))
        return Facts(None if signup is None else int(text(signup)), first,
                     None if referrer is None else text(referrer),
                     event.type == "order_paid" and first)


def _when_dict(rule: RuleBody) -> dict[str, Any]:
    w = rule.when
    out: dict[str, Any] = {}
    for name in ("within_days_of_signup", "min_amount", "tags_any"):
        if getattr(w, name) is not None:
            out[name] = getattr(w, name)
    for name in ("first_only", "referee_first_paid_order"):
        if getattr(w, name):
            out[name] = True
    return out


def _rule_fields(stored: dict[str, Any]) -> dict[str, Any]:
    return {"rule_id": stored["rule_id"], "on": stored["on"],
            "when": Conditions(**stored["when"]),
            "grant": RuleGrant(campaign_ids=stored["grant"]["campaign_ids"]),
            "to": stored["to"]}
