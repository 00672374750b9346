"""The risk watcher: detectors over the claims and uses the ledger consumer carries, and
over the failures and tap counts the service keeps. It runs inside `flashclaim ledger`
(each batch, after its commit) and counts in Redis, so several consumers count together.

Each detector counts a subject (an address hash, a network hash, a device hash, a
campaign) in fixed windows; the count crossing the rule's threshold raises one alert per
subject and window. An alert is durable (a Redis hash, written once: HSETNX), listed by
GET /v1/admin/alerts with its evidence, counted per rule for /metrics, and, when the
operator enabled it for the rule, blocks the users it names.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis
from redis.commands.core import Script

from flashclaim.keys import KeySpace
from flashclaim.outbox import OutEvent
from flashclaim.risk.rules import FAST_USE_S, SURGE_FLOOR_PER_S, Rule, rules_from
from flashclaim.store.blocklist import LOG_KEPT
from flashclaim.store.connection import text
from flashclaim.store.scripts import load_sources
from flashclaim.stream import ClaimRecord

log = logging.getLogger("flashclaim.risk")
NAMED_USERS = 50  # users an alert names (and may block) at most
SEEN_MS = 30 * 86_400_000  # an account granted within this is not "first-seen"
ALERTS_KEPT = 10_000  # the oldest alerts beyond this are dropped
TICK_S = 5.0  # how often tap rates and code failures are sampled
_USER_SOURCES = ("grab", "code")  # claims a user's own request made (with an address)
USE_EVENTS = ("redeemed", "locked")  # the moment a coupon is put to use (direct, or for an order)


@dataclass(frozen=True, slots=True)
class Use:
    """A coupon used (or locked for an order), and when it was granted."""

    campaign_id: str
    user_id: str
    coupon_id: str
    used_at: int
    granted_at: int


@dataclass
class _Rate:
    taps: int
    at: float
    baseline: float = 0.0
    samples: int = 0


@dataclass
class RiskWatch:
    r: redis.Redis
    keyspace: KeySpace
    _rules: dict[str, Rule] = field(default_factory=dict)
    _rules_read: float = 0.0
    _rates: dict[str, _Rate] = field(default_factory=dict)
    _next_tick: float = 0.0
    _change: Script | None = None  # the blocklist script, once an alert blocks

    def rules(self) -> dict[str, Rule]:
        """The rules in force, re-read every few seconds (operators change them)."""
        if time.monotonic() - self._rules_read > TICK_S or not self._rules:
            stored = self.r.hgetall(self.keyspace.risk_rules)
            self._rules = rules_from({text(k): text(v) for k, v in stored.items()})
            self._rules_read = time.monotonic()
        return self._rules

    # ---- counting ---------------------------------------------------------------------

    def claims(self, records: Iterable[ClaimRecord]) -> int:
        """Count a committed batch of grants; the alerts raised."""
        rules = self.rules()
        mine = [r for r in records if r.source in _USER_SOURCES]
        if not mine:
            return 0
        seen = self.r.pipeline(transaction=False)
        for rec in mine:
            seen.set(self.keyspace.risk_seen(rec.user_id), 1, nx=True, px=SEEN_MS)
        first_seen = seen.execute()
        hits: list[tuple[Rule, str, str, int, dict[str, Any]]] = []
        for rec, new in zip(mine, first_seen, strict=True):
            for rule, subject in (("ip_grants", rec.ip_hash), ("network_grants", rec.net_hash),
                                  ("device_grants", rec.device_hash)):
                if subject:
                    hits.append((rules[rule], subject, rec.user_id, rec.claimed_at,
                                 {"campaign_id": rec.campaign_id}))
            if new and rec.ip_hash:
                hits.append((rules["new_accounts"], rec.ip_hash, rec.user_id, rec.claimed_at,
                             {"campaign_id": rec.campaign_id}))
        return self._count(hits)

    def uses(self, uses: Iterable[Use]) -> int:
        """Count coupons used within FAST_USE_S of their grant, per campaign."""
        rule = self.rules()["fast_use"]
        hits = [(rule, u.campaign_id, u.user_id, u.used_at, {"campaign_id": u.campaign_id})
                for u in uses if 0 <= u.used_at - u.granted_at <= FAST_USE_S * 1000]
        return self._count(hits)

    def _count(self, hits: list[tuple[Rule, str, str, int, dict[str, Any]]]) -> int:
        """One pipeline for the batch: each hit counted in its window with its user; a
        count that just crossed its threshold raises the alert (exactly one INCR does)."""
        if not hits:
            return 0
        pipe = self.r.pipeline(transaction=False)
        for rule, subject, user, at, _ in hits:
            window = at // (rule.window_s * 1000)
            key = self.keyspace.risk_window(rule.name, subject, window)
            pipe.incr(key)
            pipe.pexpire(key, rule.window_s * 2000)
            pipe.sadd(key + ":users", user)
            pipe.pexpire(key + ":users", rule.window_s * 2000)
        replies = pipe.execute()
        counted: dict[tuple[str, str, int], int] = {}  # each window's count after the batch
        crossed: list[tuple[Rule, str, int, dict[str, Any]]] = []
        for i, (rule, subject, _, at, evidence) in enumerate(hits):
            window = at // (rule.window_s * 1000)
            counted[(rule.name, subject, window)] = int(replies[4 * i])
            if int(replies[4 * i]) == rule.threshold + 1:
                crossed.append((rule, subject, window, evidence))
        return sum(self.raise_alert(rule, subject, window, counted[(rule.name, subject, window)],
                                    evidence) for rule, subject, window, evidence in crossed)

    def tick(self, force: bool = False) -> int:
        """Every TICK_S: the tap-rate surge and the code-failure burst; the alerts raised."""
        now = time.monotonic()
        if not force and now < self._next_tick:
            return 0
        self._next_tick = now + TICK_S
        return self._code_failures() + self.sample_taps(now)

    def _code_failures(self) -> int:
        """The failed codes of the rule's window: its last whole minutes (the tally is kept
        per minute, so a window rounds down to whole minutes, at least one)."""
        rule = self.rules()["code_failures"]
        last = int(time.time() // 60) - 1  # the last whole minute
        minutes = range(last - max(1, rule.window_s // 60) + 1, last + 1)
        pipe = self.r.pipeline(transaction=False)  # (a minute each: not one slot on a cluster)
        for m in minutes:
            pipe.get(self.keyspace.code_failure_tally(m))
        tallies = pipe.execute()
        failed = sum(int(t or 0) for t in tallies)
        if failed <= rule.threshold:
            return 0
        return self.raise_alert(rule, "all", last, failed,
                                {"from_ms": minutes[0] * 60_000, "until_ms": (last + 1) * 60_000})

    def sample_taps(self, now: float) -> int:
        """Each open campaign's taps per second over the last sample, against the average
        of its earlier samples (an exponential mean): a rate above threshold x baseline and
        SURGE_FLOOR_PER_S raises tap_surge. The first samples only build the baseline."""
        rule = self.rules()["tap_surge"]
        ids = [text(c) for c in self.r.zrange(self.keyspace.open_campaigns, 0, 499)]
        pipe = self.r.pipeline(transaction=False)
        for cid in ids:
            keys = self.keyspace.campaign(cid)
            pipe.hget(keys.meta, "granted")
            pipe.hvals(keys.rejected)
        replies = pipe.execute()
        raised = 0
        for i, cid in enumerate(ids):
            taps = int(replies[2 * i] or 0) + sum(int(v) for v in replies[2 * i + 1])
            last = self._rates.get(cid)
            self._rates[cid] = state = _Rate(taps, now)
            if last is None:
                continue
            rate = (taps - last.taps) / max(now - last.at, 1e-3)
            state.baseline, state.samples = last.baseline, last.samples
            if (state.samples >= 3 and rate >= SURGE_FLOOR_PER_S
                    and rate > rule.threshold * max(state.baseline, 1.0)):
                window = int(time.time() // rule.window_s)
                raised += self.raise_alert(rule, cid, window, int(rate), {
                    "campaign_id": cid, "taps_per_s": round(rate, 1),
                    "baseline_per_s": round(state.baseline, 1)})
            state.baseline = rate if state.samples == 0 else 0.8 * state.baseline + 0.2 * rate
            state.samples += 1
        self._rates = {cid: self._rates[cid] for cid in ids if cid in self._rates}
        return raised

    # ---- alerts -----------------------------------------------------------------------

    def raise_alert(self, rule: Rule, subject: str, window: int, count: int,
                    evidence: dict[str, Any]) -> int:
        """Write the alert once (1), or nothing when this window's alert exists (0)."""
        ks = self.keyspace
        alert_id = f"{rule.name}:{subject}:{window}"
        users_key = ks.risk_window(rule.name, subject, window) + ":users"
        users = sorted(text(u) for u in self.r.srandmember(users_key, NAMED_USERS) or [])
        now_ms = int(time.time() * 1000)
        alert = {"id": alert_id, "rule": rule.name, "watches": rule.watches,
                 "subject": subject, "count": count, "threshold": rule.threshold,
                 "window_s": rule.window_s, "raised_at": now_ms, "users": users,
                 "evidence": evidence, "blocked": rule.block and bool(users)}
        if not self.r.hsetnx(ks.risk_alerts, alert_id, orjson.dumps(alert)):
            return 0
        self.r.zadd(ks.risk_alert_index, {alert_id: now_ms})
        self.r.hincrby(ks.risk_alert_counts, rule.name, 1)
        if self.r.exists(ks.webhooks):  # told to the webhooks that listen
            campaign = str(evidence.get("campaign_id", ""))
            self.r.xadd(ks.outbox, OutEvent(f"alert.raised:{alert_id}", "alert.raised", campaign,
                                            now_ms, alert).fields())  # type: ignore[arg-type]
        log.warning("alert %s: %s %d > %d in %d s, users %s", alert_id, rule.watches, count,
                    rule.threshold, rule.window_s, ", ".join(users[:5]))
        if alert["blocked"]:
            self._block(users, alert_id)
        self._keep_newest()
        return 1

    def _blocklist_change(self) -> Script:
        """blocklist_change.lua, read and registered once for this watcher."""
        if self._change is None:
            self._change = self.r.register_script(load_sources()["blocklist_change"])
        return self._change

    def _block(self, users: list[str], alert_id: str) -> None:
        ks = self.keyspace
        change = self._blocklist_change()
        entry = orjson.dumps({"reason": f"alert {alert_id}",
                              "blocked_at": int(time.time() * 1000)}).decode()
        for user in users:
            change(keys=[ks.blocklist, ks.blocklist_rev, ks.blocklist_changes,
                         ks.blocklist_index], args=["block", user, entry, LOG_KEPT])

    def _keep_newest(self) -> None:
        ks = self.keyspace
        excess = int(self.r.zcard(ks.risk_alert_index)) - ALERTS_KEPT
        if excess > 0:
            old = self.r.zrange(ks.risk_alert_index, 0, excess - 1)
            self.r.hdel(ks.risk_alerts, *old)
            self.r.zrem(ks.risk_alert_index, *old)

