"""The demo's third act: after the grab.

- A wallet probe runs during the crowd: one user at a time claims on a side campaign
  and polls GET /v1/me/coupons until the coupon shows, so the demo reports how long a
  granted coupon takes to reach the wallet under load.
- The checkout system redeems a share of the crowd's coupons (and cancels a few of
  those orders: release); the campaign report must then show exactly that use rate
  and discount cost, and the wallet the redemption.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

REDEEM_EVERY = 3  # the first coupon of every third granted claim is used at checkout
RELEASE = 10  # of those orders, the last ten (never the first) are cancelled
DISCOUNT = 2000  # what each redemption took off its order (minor units)


class WalletProbe:
    """Claims on `campaign_id` as a new user each round, then times the wallet."""

    def __init__(self, base: str, campaign_id: str) -> None:
        self._base = base
        self._campaign_id = campaign_id
        self._stop = threading.Event()
        self.seconds: list[float] = []
        self.missing = 0  # coupons that did not show within the deadline
        self._thread = threading.Thread(target=self._run, name="wallet-probe", daemon=True)

    def __enter__(self) -> WalletProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            self._probe()
        except httpx.HTTPError:  # the service went away: the demo is being stopped
            return

    def _probe(self) -> None:
        with httpx.Client(base_url=self._base, timeout=10) as http:
            n = 0
            while not self._stop.is_set():
                n += 1
                user = {"X-User-Id": f"probe{n}"}
                claimed = http.post(f"/v1/campaigns/{self._campaign_id}/claims", headers=user,
                                    json={"channel": "app"})
                if claimed.status_code != 201:
                    continue
                coupon = claimed.json()["coupons"][0]["coupon_id"]
                start = time.monotonic()
                while time.monotonic() - start < 10:
                    listed = http.get("/v1/me/coupons", headers=user).json().get("coupons", [])
                    if any(c["coupon_id"] == coupon for c in listed):
                        self.seconds.append(time.monotonic() - start)
                        break
                    time.sleep(0.01)
                else:
                    self.missing += 1


@dataclass
class AfterReport:
    redeemed: int = 0
    released: int = 0
    wallet_user: str | None = None
    problems: list[str] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def used(self) -> int:
        return self.redeemed - self.released


def redeem_share(base: str, checkout_token: str, granted_claim_ids: list[str]) -> AfterReport:
    """Checkout redeems the first coupon of every REDEEM_EVERY-th claim, then cancels
    RELEASE of those orders; every answer must be the one the contract promises."""
    after = AfterReport()
    auth = {"Authorization": f"Bearer {checkout_token}"}
    chosen = [f"{claim_id}-1" for claim_id in granted_claim_ids[::REDEEM_EVERY]]
    with httpx.Client(base_url=base, headers=auth, timeout=30) as http:
        for i, coupon in enumerate(chosen):
            r = http.post(f"/v1/admin/coupons/{coupon}/redeem",
                          json={"order_id": f"order-{i}", "discount": DISCOUNT})
            if r.status_code != 200:
                after.problems.append(f"redeem {coupon}: {r.status_code} {r.text}")
                continue
            after.redeemed += 1
            if after.wallet_user is None:  # the first: its order is not cancelled below
                after.wallet_user = r.json()["user_id"]
        if chosen:  # one coupon paying for a second order: refused
            second = http.post(f"/v1/admin/coupons/{chosen[0]}/redeem",
                               json={"order_id": "order-other", "discount": DISCOUNT})
            if second.status_code != 409:
                after.problems.append(f"a used coupon redeemed again: {second.status_code}")
        offset = max(1, len(chosen) - RELEASE)  # the first order is never cancelled
        cancelled = chosen[offset:]
        for i, coupon in enumerate(cancelled):
            r = http.post(f"/v1/admin/coupons/{coupon}/release",
                          json={"order_id": f"order-{offset + i}"})
            after.released += r.status_code == 200 and r.json()["status"] == "unused"
    return after


def check_report(base: str, admin: dict[str, str], campaign_id: str, after: AfterReport,
                 coupons_per_claim: int) -> None:
    """The campaign report (from the ledger) against what the checkout did."""
    with httpx.Client(base_url=base, headers=admin, timeout=30) as http:
        after.report = http.get(f"/v1/admin/campaigns/{campaign_id}/report",
                                params={"bucket": "hour"}).json()
        if after.wallet_user is not None:
            used = http.get("/v1/me/coupons", params={"status": "used"},
                            headers={"X-User-Id": after.wallet_user}).json()["coupons"]
            if not used:
                after.problems.append(f"{after.wallet_user}'s wallet shows no used coupon")
    body = after.report
    expected = {"used": after.used, "coupons": body.get("claims", 0) * coupons_per_claim,
                "discount_cost": {"CNY": after.used * DISCOUNT} if after.used else {}}
    found = {k: body.get(k) for k in expected}
    if found != expected:
        after.problems.append(f"report {found}, expected {expected}")
