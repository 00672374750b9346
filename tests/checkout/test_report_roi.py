"""GMV, orders, discount per order, refunds and ROI in the reports, to the cent: orders planted
through the orders API, figures read back from the campaign and cross-campaign reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from redis import Redis as SyncRedis

from flashclaim.ledger.report import per_order, roi
from flashclaim.settings import Settings

from helpers import (
    ADMIN,
    app_client,
    claim,
    consume,
    create_campaign,
    ledger_settings,
    order,
    settle,
)

ITEM = {"sku": "x", "category": "food", "merchant": "m1", "unit_price": 10_000, "quantity": 1}
BIG = {"sku": "y", "category": "food", "merchant": "m1", "unit_price": 15_000, "quantity": 1}


def test_the_worked_example() -> None:
    """"Spend 100, save 20" used on an order of 100 at a 30% margin: (30 - 20) / 20."""
    assert roi(0.3, 10_000, 2_000) == 0.5
    assert roi(0.2, 5_000, 2_000) == -0.5  # "spend 50 save 20" at 20%: -50% on the order
    assert roi(0.3, 0, 0) is None
    assert (per_order(4_500, 2), per_order(1, 2), per_order(1, 3)) == (2_250, 1, 0)


async def test_orders_gmv_and_roi_to_the_cent(
        settings: Settings, sync_redis: SyncRedis, dsn: str, tmp_path: Path) -> None:
    s = ledger_settings(settings, dsn, tmp_path)
    spend_100_save_20 = {"type": "threshold", "value": 2_000, "min_spend": 10_000}
    merchant_5 = {"type": "cash", "value": 500, "stacking": {"group": "merchant"}}
    async with app_client(s) as client:
        a_id, (a1, a2, a3) = await granted(client, spend_100_save_20, ["u1", "u2", "u3"])
        b_id, (b2,) = await granted(client, merchant_5, ["u2"])
        consume(sync_redis, s.ledger_dsn, tmp_path)
        assert (await order(client, "o-1", "u1", [a1], [ITEM])).status_code == 201
        assert (await order(client, "o-2", "u2", [a2, b2], [BIG])).status_code == 201
        assert (await order(client, "o-3", "u3", [a3], [ITEM])).status_code == 201
        for o in ("o-1", "o-2", "o-3"):
            assert (await settle(client, o, "confirm")).status_code == 200
        assert (await settle(client, "o-3", "refund")).status_code == 200
        consume(sync_redis, s.ledger_dsn, tmp_path)

        a = await report(client, f"/v1/admin/campaigns/{a_id}/report")
        assert figures(a) == {
            "used": 2, "discount_cost": {"CNY": 4_000}, "orders": 2, "gmv": {"CNY": 25_000},
            "discount_per_order": {"CNY": 2_000}, "refunded_orders": 1,
            "refunded_discount": {"CNY": 2_000}, "roi": {"CNY": 0.875}}  # (7,500 - 4,000) / 4,000
        b = await report(client, f"/v1/admin/campaigns/{b_id}/report")
        assert figures(b) == {
            "used": 1, "discount_cost": {"CNY": 500}, "orders": 1, "gmv": {"CNY": 15_000},
            "discount_per_order": {"CNY": 500}, "refunded_orders": 0, "refunded_discount": {},
            "roi": {"CNY": 8.0}}  # (4,500 - 500) / 500
        now = datetime.now(UTC)
        across = await report(client, "/v1/admin/report", **{
            "from": (now - timedelta(hours=1)).isoformat(),
            "to": (now + timedelta(hours=1)).isoformat()})
        # o-2 counts once though two campaigns' coupons paid towards it
        assert figures(across) == {
            "used": 3, "discount_cost": {"CNY": 4_500}, "orders": 2, "gmv": {"CNY": 25_000},
            "discount_per_order": {"CNY": 2_250}, "refunded_orders": 1,
            "refunded_discount": {"CNY": 2_000}, "roi": {"CNY": 0.6667}}
        bad = await client.get(f"/v1/admin/campaigns/{a_id}/report", headers=ADMIN,
                               params={"margin": "1.5"})
        assert bad.status_code == 400
        no_margin = await client.get(f"/v1/admin/campaigns/{a_id}/report", headers=ADMIN)
        assert "roi" not in no_margin.json()


FIGURES = ("used", "discount_cost", "orders", "gmv", "discount_per_order", "refunded_orders",
           "refunded_discount", "roi")


def figures(body: dict[str, Any]) -> dict[str, Any]:
    return {k: body[k] for k in FIGURES if k in body}


async def report(client: Any, path: str, **params: str) -> dict[str, Any]:
    r = await client.get(path, headers=ADMIN, params={"margin": "0.3", **params})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def granted(client: Any, coupon: dict[str, Any], users: list[str]
                  ) -> tuple[str, list[str]]:
    """A campaign of this coupon, claimed once by each user: its id and the coupons' ids."""
    c = await create_campaign(client, coupons=[coupon])
    ids = []
    for user in users:
        r = await claim(client, c["id"], user)
        assert r.status_code == 201, r.text
        ids.append(r.json()["coupons"][0]["coupon_id"])
    return c["id"], ids
