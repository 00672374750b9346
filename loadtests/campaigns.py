"""Setting up the load-test campaigns and reading back what the service recorded.

Plain HTTP through the admin API (requests), so it runs against any deployment.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from flashclaim.checks.verdict import ServerFacts

CASH = {"type": "cash", "value": 500}


@dataclass(frozen=True)
class Plan:
    """The campaigns of one run, by scenario."""

    flash: str
    hammer: str
    bots: str
    many: list[str]
    vip: str
    start_at: float  # epoch seconds: the flash crowd's common start instant

    def all(self) -> list[str]:
        return [self.flash, self.hammer, self.bots, *self.many, self.vip]

    def to_wire(self) -> dict[str, Any]:
        return {"flash": self.flash, "hammer": self.hammer, "bots": self.bots,
                "many": self.many, "vip": self.vip, "start_at": self.start_at}

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Plan:
        return cls(d["flash"], d["hammer"], d["bots"], list(d["many"]), d["vip"],
                   float(d["start_at"]))


def create_all(host: str, token: str, run_id: str, stock: int, campaigns: int,
               per_user_limit: int, start_delay: float) -> Plan:
    start = datetime.now(UTC) + timedelta(seconds=start_delay)
    ids = {name: f"lt-{run_id}-{name}" for name in ("flash", "hammer", "bots", "vip")}
    specs: dict[str, dict[str, Any]] = {
        ids["flash"]: {"starts_at": start.isoformat()},
        ids["hammer"]: {},
        # A high per-user limit: the rate limit, not the limit, is what stops a bot.
        ids["bots"]: {"rate_limit": {"max": 5, "per_seconds": 1}, "per_user_limit": 100},
        ids["vip"]: {"channels": ["app"], "segments": ["vip"]},
    }
    many = [f"lt-{run_id}-many{i}" for i in range(campaigns)]
    for i, campaign_id in enumerate(many):
        pack = [CASH, {"type": "threshold", "value": 2000, "min_spend": 10000},
                {"type": "discount", "percent_off": 10, "max_discount": 3000}]
        coupons = pack if i == 0 else [CASH]  # the first is a new-user pack
        specs[campaign_id] = {"per_user_limit": per_user_limit, "coupons": coupons}
    with requests.Session() as http:
        for campaign_id, extra in specs.items():
            body = {"id": campaign_id, "name": f"load test {campaign_id}", "stock": stock,
                    "coupons": [CASH], **extra}
            response = http.post(f"{host}/v1/admin/campaigns", json=body, timeout=10,
                                 headers={"Authorization": f"Bearer {token}"})
            if response.status_code != 201:
                raise RuntimeError(f"creating {campaign_id}: {response.status_code} "
                                   f"{response.text}")
    return Plan(ids["flash"], ids["hammer"], ids["bots"], many, ids["vip"], start.timestamp())


def admin_token_problem(host: str, token: str) -> str | None:
    """Why the run cannot set up its campaigns, in one line; None when the token works."""
    if not token:
        return "no admin token: pass --admin-token or set FLASHCLAIM_ADMIN_TOKEN"
    try:
        response = requests.get(f"{host}/v1/admin/campaigns/flashclaim-token-check",
                                headers={"Authorization": f"Bearer {token}"}, timeout=10)
    except requests.RequestException as exc:
        return f"cannot reach {host}: {exc.__class__.__name__}"
    if response.status_code == 401:
        return f"{host} refused the admin token (401): check --admin-token"
    if response.status_code != 404:  # 404: the token works, that campaign does not exist
        return f"{host} answered {response.status_code} to an admin request; is it flashclaim?"
    return None


def server_facts(host: str, token: str, campaign_id: str, nobody_eligible: bool,
                 settle: float = 30) -> ServerFacts:
    """Admin stats once the counters stop moving, and every record of the stream."""
    headers = {"Authorization": f"Bearer {token}"}
    with requests.Session() as http:
        deadline = time.monotonic() + settle
        previous = None
        while True:
            body = http.get(f"{host}/v1/admin/campaigns/{campaign_id}", headers=headers,
                            timeout=10).json()
            if body["stats"] == previous or time.monotonic() > deadline:
                break
            previous = body["stats"]
            time.sleep(0.5)
        records: list[tuple[str, str, int]] = []
        after = ""
        while True:
            params = {"limit": "10000", **({"after": after} if after else {})}
            page = http.get(f"{host}/v1/admin/campaigns/{campaign_id}/claims", params=params,
                            headers=headers, timeout=30).json()
            records += [(r["claim_id"], r["user_id"], r["seq"]) for r in page["claims"]]
            if page["next"] is None:
                break
            after = page["next"]
    stats = body["stats"]
    return ServerFacts(stock=body["stock"], granted=stats["granted"], recorded=stats["recorded"],
                       per_user_limit=body["per_user_limit"], records=records,
                       eligible_users_exist=not nobody_eligible, remaining=stats["remaining"])
