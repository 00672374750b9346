"""The detectors' rules: what each watches, its threshold and window, and whether its
alert blocks the users it names (off by default: an operator turns it on per rule).

Operators change a rule at runtime (PUT /v1/admin/alert-rules/{rule}); the changes live
in one Redis hash (KeySpace.risk_rules), so every watcher sees them; a rule never
changed is its default here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    watches: str  # what it counts, for the dashboard and the docs
    threshold: int  # an alert when the count goes above this in one window
    window_s: int
    block: bool = False  # block the users the alert names

    def shown(self) -> dict[str, Any]:
        return {"rule": self.name, "watches": self.watches, "threshold": self.threshold,
                "window_s": self.window_s, "block": self.block}


DEFAULT_RULES: dict[str, Rule] = {r.name: r for r in (
    Rule("ip_grants", "grants won from one address", 20, 60),
    Rule("network_grants", "grants won from one /24 (IPv4) or /64 (IPv6)", 100, 60),
    Rule("device_grants", "grants won on one device", 5, 60),
    Rule("new_accounts", "first-seen accounts granted from one address", 10, 300),
    Rule("code_failures", "redemption codes that do not exist, service-wide", 200, 60),
    Rule("tap_surge", "a campaign's taps per second, as a multiple of its recent baseline",
         10, 10),
    Rule("fast_use", "coupons of one campaign used within 10 s of their grant", 20, 60),
)}
FAST_USE_S = 10  # "used within seconds of being granted"
SURGE_FLOOR_PER_S = 50  # a surge is at least this many taps a second (a quiet campaign's x10
#                         is not an attack)


def rules_from(stored: dict[str, str]) -> dict[str, Rule]:
    """The rules in force: the defaults, with the operators' changes (a stored change to a
    rule that no longer exists is ignored)."""
    rules = dict(DEFAULT_RULES)
    for name, raw in stored.items():
        if name in rules:
            change = orjson.loads(raw)
            rules[name] = replace(rules[name], **{k: change[k] for k in
                                                  ("threshold", "window_s", "block")
                                                  if k in change})
    return rules


def stored_change(rule: Rule) -> str:
    return orjson.dumps({"threshold": rule.threshold, "window_s": rule.window_s,
                         "block": rule.block}).decode()
