"""The demo's third act: after the grab.

- A wallet probe runs during the crowd: one user at a time claims on a side campaign
  and polls GET /v1/me/coupons until the coupon shows, so the demo reports how long a
  granted coupon takes to reach the wallet under load.
- The checkout system takes a share of the crowd to the till: it quotes each user's cart
  (which coupons apply, the best combination), locks the best for an order, and confirms
  it (paid); a few orders are cancelled before payment and a few refunded after. The
  campaign report must then show exactly that use rate, discount cost, orders, GMV and
  ROI, and the wallet the use.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

CHECKOUT_EVERY = 3  # every third granted claim's user checks out a cart
CANCEL = 10  # of those orders, the last ten (never the first) are cancelled before payment
REFUND = 5  # and the five before them refunded after it
# The cart: ¥120.00 of groceries. The crowd's coupons are "¥20 off ¥100" and "¥5 off",
# both platform coupons: the best is the ¥20 one alone.
CART = [{"sku": "rice-5kg", "category": "grain", "merchant": "demo-mart", "unit_price": 6000,
         "quantity": 2}]
GMV = 12_000
DISCOUNT = 2_000
MARGIN = 0.3  # the report's ROI is asked at a 30% margin: (0.3 x 120 - 20) / 20 = 0.8


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
    confirmed: int = 0
    cancelled: int = 0
    refunded: int = 0
    wallet_user: str | None = None
    problems: list[str] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def used(self) -> int:
        return self.confirmed - self.refunded


def checkout_share(base: str, checkout_token: str, campaign_id: str,
                   granted: list[tuple[str, str]]) -> AfterReport:
    """Every CHECKOUT_EVERY-th granted (claim id, user): quote the cart (the claim's ¥20
    coupon must apply, and be worth what the best combination is), lock it for an order,
    then confirm it, or cancel it (the last CANCEL), and refund REFUND of the confirmed ones;
    every answer must be the one the contract promises."""
    after = AfterReport()
    auth = {"Authorization": f"Bearer {checkout_token}"}
    chosen = granted[::CHECKOUT_EVERY]
    cancel_from = max(1, len(chosen) - CANCEL)  # the first order is always paid
    refund_from = max(1, cancel_from - REFUND)
    first_coupon = None
    with httpx.Client(base_url=base, headers=auth, timeout=30) as http:
        for i, (claim_id, user) in enumerate(chosen):
            coupon = f"{claim_id}-1"  # (a user may hold coupons of an earlier demo run too)
            quoted = http.post("/v1/checkout/quote", json={
                "user_id": user, "channel": "app", "items": CART}).json()
            mine = [c for c in quoted.get("coupons", []) if c["coupon_id"] == coupon]
            best = quoted.get("best", {})
            if not mine or mine[0].get("discount") != DISCOUNT or best.get("discount") != DISCOUNT:
                after.problems.append(f"quote for {user}: {mine}, best {best}")
                continue
            order_id = f"{campaign_id}-order-{i}"
            locked = http.post("/v1/checkout/orders", json={
                "order_id": order_id, "user_id": user, "channel": "app", "items": CART,
                "coupon_ids": [coupon]})
            if locked.status_code != 201:
                after.problems.append(f"lock {order_id}: {locked.status_code} {locked.text}")
                continue
            if i >= cancel_from:
                r = http.post(f"/v1/checkout/orders/{order_id}/cancel")
                after.cancelled += r.status_code == 200
                continue
            r = http.post(f"/v1/checkout/orders/{order_id}/confirm")
            if r.status_code != 200:
                after.problems.append(f"confirm {order_id}: {r.status_code} {r.text}")
                continue
            after.confirmed += 1
            if first_coupon is None:
                first_coupon, after.wallet_user = coupon, user
            if i >= refund_from:
                refunded = http.post(f"/v1/checkout/orders/{order_id}/refund")
                after.refunded += refunded.status_code == 200
        if first_coupon is not None:  # one coupon paying for a second order: refused
            again = http.post("/v1/checkout/orders", json={
                "order_id": f"{campaign_id}-again", "user_id": after.wallet_user, "channel": "app",
                "items": CART, "coupon_ids": [first_coupon]})
            if again.status_code != 409:
                after.problems.append(f"a used coupon locked again: {again.status_code}")
    return after


def check_report(base: str, admin: dict[str, str], campaign_id: str, after: AfterReport,
                 coupons_per_claim: int) -> None:
    """The campaign report (from the ledger) against what the checkout did."""
    with httpx.Client(base_url=base, headers=admin, timeout=30) as http:
        after.report = http.get(f"/v1/admin/campaigns/{campaign_id}/report",
                                params={"bucket": "hour", "margin": str(MARGIN)}).json()
        if after.wallet_user is not None:
            used = http.get("/v1/me/coupons", params={"status": "used"},
                            headers={"X-User-Id": after.wallet_user}).json()["coupons"]
            if not used:
                after.problems.append(f"{after.wallet_user}'s wallet shows no used coupon")
    body = after.report
    n = after.used
    expected = {"used": n, "coupons": body.get("claims", 0) * coupons_per_claim,
                "discount_cost": {"CNY": n * DISCOUNT} if n else {}, "orders": n,
                "gmv": {"CNY": n * GMV} if n else {},
                "roi": {"CNY": round((MARGIN * GMV - DISCOUNT) / DISCOUNT, 4)} if n else {},
                "refunded_orders": after.refunded}
    found = {k: body.get(k) for k in expected}
    if found != expected:
        after.problems.append(f"report {found}, expected {expected}")
