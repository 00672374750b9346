"""The demo's second act: the other ways a coupon is issued, on a "new-user pack" campaign.

An operator grant to 1,000 users (one of them blocked, one in an excluded segment),
then 100 redemption codes generated, exported once and redeemed, and one code tried
twice. Everything goes through claim.lua and the stream, so reconcile judges it with
the crowd's campaign.
"""

from __future__ import annotations

import csv
import io
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

GRANT_USERS = 1000
CODES = 100


@dataclass
class IssuanceReport:
    campaign_id: str
    grant_outcomes: dict[str, int] = field(default_factory=dict)
    redeemed: int = 0
    reuse_refused: bool = False
    problems: list[str] = field(default_factory=list)


def _wait(check: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"demo: {what} did not finish within {seconds:.0f}s")
        time.sleep(0.05)


def issue_other_ways(base: str, admin: dict[str, str]) -> IssuanceReport:
    campaign_id = "pack-" + secrets.token_hex(3)
    report = IssuanceReport(campaign_id)
    with httpx.Client(base_url=base, headers=admin, timeout=30) as http:
        http.post("/v1/admin/campaigns", json={
            "id": campaign_id, "name": "New-user pack", "stock": None, "listed": False,
            "per_user_limit": 1,
            "per_user_daily_limit": 1, "exclude_segments": ["risky"], "channels": ["grant", "app"],
            "coupons": [{"type": "cash", "value": 1000, "validity": {"days": 14}},
                        {"type": "discount", "percent_off": 10, "max_discount": 3000}],
        }).raise_for_status()
        http.put("/v1/admin/blocklist/demo-blocked", json={"reason": "demo: a known fraud ring"})
        users: list[object] = [f"new{i}" for i in range(GRANT_USERS - 2)]
        users += ["demo-blocked", {"user_id": "demo-risky", "tags": ["risky"]}]
        grants = f"/v1/admin/campaigns/{campaign_id}/grants"
        http.post(grants, json={"grant_id": "signup-pack", "users": users}).raise_for_status()
        _wait(lambda: http.get(grants + "/signup-pack", params={"limit": 1}).json()["state"]
              == "done", "the operator grant")
        report.grant_outcomes = http.get(grants + "/signup-pack",
                                         params={"limit": 1}).json()["outcomes"]
        codes_url = f"/v1/admin/campaigns/{campaign_id}/codes"
        http.post(codes_url, json={"count": CODES}).raise_for_status()
        _wait(lambda: all(b["state"] == "ready" for b in http.get(codes_url).json()["batches"]),
              "code generation")
        exported = http.get(codes_url + ".csv")
        exported.raise_for_status()
        codes = [row["code"] for row in csv.DictReader(io.StringIO(exported.text))]
    with httpx.Client(base_url=base, timeout=30) as public:
        for i, code in enumerate(codes):
            r = public.post("/v1/redemptions", json={"code": code, "channel": "app"},
                            headers={"X-User-Id": f"coder{i}"})
            report.redeemed += r.status_code == 201
        again = public.post("/v1/redemptions", json={"code": codes[0], "channel": "app"},
                            headers={"X-User-Id": "coder-late"})
        report.reuse_refused = again.status_code == 410
    expected = {"granted": GRANT_USERS - 2, "blocked": 1, "not_eligible": 1}
    if report.grant_outcomes != expected:
        report.problems.append(f"grant outcomes {report.grant_outcomes}, expected {expected}")
    if report.redeemed != len(codes) or len(codes) != CODES:
        report.problems.append(f"{report.redeemed} of {len(codes)} codes redeemed")
    if not report.reuse_refused:
        report.problems.append("a used code was not refused")
    return report
