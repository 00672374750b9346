"""Budgets through the API (on Valkey and on the cluster): a crowd reaches the budget
exactly and never passes it, operator grants count, a top-up raises it, the admin view and
/metrics show committed and remaining, and bad budgets are refused."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from helpers import ADMIN, create_campaign, stats


async def grab(client: httpx.AsyncClient, cid: str, user: str) -> httpx.Response:
    return await client.post(f"/v1/campaigns/{cid}/claims", headers={"X-User-Id": user})


async def test_a_crowd_spends_the_budget_exactly(client: httpx.AsyncClient) -> None:
    campaign = await create_campaign(client, stock=None, coupons=[
        {"type": "threshold", "value": 2000, "min_spend": 10_000}],
        budget={"amount": 50_000, "currency": "CNY"})  # 25 coupons of ¥20
    cid = campaign["id"]
    replies = await asyncio.gather(*[grab(client, cid, f"u{i}") for i in range(80)])
    codes = Counter(r.status_code if r.status_code == 201 else r.json()["error"]
                    for r in replies)
    assert codes == {201: 25, "budget_exhausted": 55}
    assert (await stats(client, cid))["budget"] == {
        "amount": 50_000, "currency": "CNY", "committed": 50_000, "remaining": 0}
    topped = await client.post(f"/v1/admin/campaigns/{cid}/budget", headers=ADMIN,
                               json={"delta": 5_000})
    assert topped.status_code == 200 and topped.json()["stats"]["budget"]["remaining"] == 5_000
    # an operator grant counts too: two more fit, the third does not
    granted = await client.post(f"/v1/admin/campaigns/{cid}/grants", headers=ADMIN, json={
        "grant_id": "g1", "users": ["g1", "g2", "g3"]})
    assert granted.status_code in (201, 202), granted.text
    deadline = asyncio.get_running_loop().time() + 20
    while (await stats(client, cid))["budget"]["remaining"] != 1_000:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    assert (await stats(client, cid))["granted"] == 27
    metrics = (await client.get("/metrics")).text
    assert f'flashclaim_live_campaign_budget_committed{{campaign="{cid}"}} 54000.0' in metrics
    assert f'flashclaim_live_campaign_budget_remaining{{campaign="{cid}"}} 1000.0' in metrics


async def test_bad_budgets_are_refused(client: httpx.AsyncClient) -> None:
    plain = await create_campaign(client)
    no_budget = await client.post(f"/v1/admin/campaigns/{plain['id']}/budget", headers=ADMIN,
                                  json={"delta": 100})
    assert no_budget.status_code == 409 and no_budget.json()["error"] == "no_budget"
    coupons = [{"type": "cash", "value": 500}]
    for budget in ({"amount": 1000, "currency": "USD"}, {"amount": 400, "currency": "CNY"},
                   {"amount": 0, "currency": "CNY"}):
        response = await client.post("/v1/admin/campaigns", headers=ADMIN, json={
            "name": "b", "stock": 10, "coupons": coupons, "budget": budget})
        assert response.status_code == 400, budget
    made = await create_campaign(client, coupons=coupons,
                                 budget={"amount": 1000, "currency": "CNY"})
    for delta in (0, -5, 1.5):
        response = await client.post(f"/v1/admin/campaigns/{made['id']}/budget",
                                     headers=ADMIN, json={"delta": delta})
        assert response.status_code == 400, delta
    patched = await client.patch(f"/v1/admin/campaigns/{made['id']}", headers=ADMIN,
                                 json={"budget": {"amount": 1, "currency": "CNY"}})
    assert patched.status_code == 400  # a budget moves by top-ups only
