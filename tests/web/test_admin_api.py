"""The admin API: create with full validation, stats, pause/resume, stock; public reads."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from flashclaim.keys import KeySpace

from helpers import ADMIN, campaign_body, claim, create_campaign, iso, only_the_audit_written, stats

COUPON = {"type": "cash", "value": 500}


def with_coupon(**fields: Any) -> dict[str, Any]:
    return {"coupons": [{**COUPON, **fields}]}


INVALID = [
    ("name missing", {"name": None}, "name"),
    ("name empty", {"name": ""}, "name"),
    ("name too long", {"name": "x" * 201}, "name"),
    ("name with control chars", {"name": "a\nb"}, "name"),
    ("name not a string", {"name": 5}, "name"),
    ("id with brace", {"id": "a{b}"}, "id"),
    ("id too long", {"id": "a" * 65}, "id"),
    ("stock zero", {"stock": 0}, "stock"),
    ("stock too big", {"stock": 1_000_000_001}, "stock"),
    ("stock as bool", {"stock": True}, "stock"),
    ("stock as float", {"stock": 10.0}, "stock"),
    ("stock as string", {"stock": "10"}, "stock"),
    ("per_user_limit 0", {"per_user_limit": 0}, "per_user_limit"),
    ("per_user_limit 101", {"per_user_limit": 101}, "per_user_limit"),
    ("starts_at without offset", {"starts_at": "2026-11-11T00:00:00"}, "starts_at"),
    ("starts_at not a time", {"starts_at": "tomorrow"}, "starts_at"),
    ("starts_at a number", {"starts_at": 1790000000000}, "starts_at"),
    ("ends before start", {"starts_at": "2026-11-11T00:00:00Z",
                           "ends_at": "2026-11-10T00:00:00Z"}, "ends_at"),
    ("no coupons", {"coupons": []}, "coupons"),
    ("eleven coupons", {"coupons": [COUPON] * 11}, "coupons"),
    ("coupon not an object", {"coupons": ["cash"]}, "coupons[0]"),
    ("unknown coupon type", with_coupon(type="voucher"), "coupons[0].type"),
    ("cash without value", {"coupons": [{"type": "cash"}]}, "coupons[0].value"),
    ("cash with threshold", with_coupon(min_spend=100), "coupons[0]"),
    ("money as float", with_coupon(value=5.5), "coupons[0].value"),
    ("money negative", with_coupon(value=-1), "coupons[0].value"),
    ("threshold below value", {"coupons": [{"type": "threshold", "value": 2000,
                                            "min_spend": 1000}]}, "coupons[0].min_spend"),
    ("threshold without min_spend", {"coupons": [{"type": "threshold", "value": 2000}]},
     "coupons[0].min_spend"),
    ("discount 100%", {"coupons": [{"type": "discount", "percent_off": 100,
                                    "max_discount": 10}]}, "coupons[0].percent_off"),
    ("discount without cap", {"coupons": [{"type": "discount", "percent_off": 10}]},
     "coupons[0].max_discount"),
    ("bad currency", with_coupon(currency="yuan"), "coupons[0].currency"),
    ("validity empty", with_coupon(validity={}), "coupons[0].validity"),
    ("validity days 0", with_coupon(validity={"days": 0}), "coupons[0].validity.days"),
    ("validity until before from", with_coupon(validity={
        "from": "2026-11-12T00:00:00Z", "until": "2026-11-11T00:00:00Z"}), "coupons[0].validity"),
    ("validity ends before campaign", with_coupon(validity={
        "from": "2001-01-01T00:00:00Z", "until": "2001-01-02T00:00:00Z"}),
     "coupons[0].validity.until"),
    ("validity with unknown field", with_coupon(validity={"days": 3, "weeks": 1}),
     "coupons[0].validity.weeks"),
    ("scope not an object", with_coupon(scope=["shoes"]), "coupons[0].scope"),
    ("scope over 1 KB", with_coupon(scope={"x": "y" * 1100}), "coupons[0].scope"),
    ("unknown coupon field", with_coupon(colour="red"), "coupons[0].colour"),
    ("channel uppercase", {"channels": ["APP"]}, "channels"),
    ("channels repeated", {"channels": ["app", "app"]}, "channels"),
    ("channels not a list", {"channels": "app"}, "channels"),
    ("segment with comma", {"segments": ["a,b"]}, "segments"),
    ("rate limit zero", {"rate_limit": {"max": 0, "per_seconds": 1}}, "rate_limit.max"),
    ("rate limit missing window", {"rate_limit": {"max": 5}}, "rate_limit.per_seconds"),
    ("unknown field", {"granted": 5}, "granted"),
]


@pytest.mark.parametrize(("name", "overrides", "field"), INVALID, ids=[c[0] for c in INVALID])
async def test_create_validation(
    client: httpx.AsyncClient, redis_client: Redis, name: str, overrides: dict[str, Any],
    field: str,
) -> None:
    body = {k: v for k, v in campaign_body(**overrides).items() if v is not None}
    response = await client.post("/v1/admin/campaigns", json=body, headers=ADMIN)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert field in response.json()["message"]
    assert await only_the_audit_written(redis_client)  # nothing written but the audit


async def test_create_returns_the_campaign(client: httpx.AsyncClient) -> None:
    c = await create_campaign(
        client, id="d11", stock=1000, per_user_limit=2, ends_at=iso(timedelta(days=1)),
        channels=["app", "mini_program"], segments=["new"],
        rate_limit={"max": 5, "per_seconds": 2},
        coupons=[{"type": "cash", "value": 500, "scope": {"skus": ["b", "a"]}},
                 {"type": "threshold", "value": 2000, "min_spend": 10000, "currency": "USD",
                  "validity": {"days": 7}}],
    )
    assert c["id"] == "d11" and c["status"] == "live"
    assert (c["stock"], c["remaining"], c["per_user_limit"]) == (1000, 1000, 2)
    assert c["coupons"][0] == {"type": "cash", "value": 500, "currency": "CNY",
                               "validity": {"days": 30}, "scope": {"skus": ["a", "b"]}}
    assert c["channels"] == ["app", "mini_program"] and c["segments"] == ["new"]
    assert c["rate_limit"] == {"max": 5, "per_seconds": 2}
    public = (await client.get("/v1/campaigns/d11")).json()
    assert public.pop("server_time") >= c["starts_at"]
    assert public == c


async def test_create_generates_an_id_and_refuses_a_duplicate(client: httpx.AsyncClient) -> None:
    a = await create_campaign(client)
    b = await create_campaign(client)
    assert a["id"] != b["id"]
    again = await client.post("/v1/admin/campaigns", json=campaign_body(id=a["id"], stock=99),
                              headers=ADMIN)
    assert (again.status_code, again.json()["error"]) == (409, "campaign_exists")
    assert (await client.get(f"/v1/campaigns/{a['id']}")).json()["stock"] == 10


@pytest.mark.parametrize("auth", [None, "Bearer wrong", "test-admin-token", "Basic x"])
async def test_admin_needs_the_token(client: httpx.AsyncClient, auth: str | None) -> None:
    headers = {} if auth is None else {"Authorization": auth}
    c = await create_campaign(client)
    for method, path in [("POST", "/v1/admin/campaigns"), ("GET", f"/v1/admin/campaigns/{c['id']}"),
                         ("POST", f"/v1/admin/campaigns/{c['id']}/pause"),
                         ("POST", f"/v1/admin/campaigns/{c['id']}/stock")]:
        response = await client.request(method, path, headers=headers, json={"delta": 5})
        assert (response.status_code, response.json()["error"]) == (401, "unauthenticated")
    assert (await client.get(f"/v1/campaigns/{c['id']}")).json()["status"] == "live"


async def test_stats_count_grants_and_rejections(client: httpx.AsyncClient) -> None:
    c = await create_campaign(client, stock=2, channels=["app"])
    for user, channel in [("a", "app"), ("a", "app"), ("b", "web"), ("b", "app"), ("c", "app"),
                          ("d", "app")]:
        await claim(client, c["id"], user, channel=channel)
    assert await stats(client, c["id"]) == {
        "granted": 2, "remaining": 0, "recorded": 2,
        "rejected": {"already_claimed": 1, "not_eligible": 1, "sold_out": 2},
    }


async def test_stock_top_up_and_withdrawal(client: httpx.AsyncClient) -> None:
    c = await create_campaign(client, stock=1)
    url = f"/v1/admin/campaigns/{c['id']}/stock"
    assert (await claim(client, c["id"], "a")).status_code == 201
    assert (await claim(client, c["id"], "b")).status_code == 410
    topped = await client.post(url, json={"delta": 2}, headers=ADMIN)
    assert topped.json()["status"] == "live" and topped.json()["stock"] == 3
    assert (await claim(client, c["id"], "b")).status_code == 201
    refused = await client.post(url, json={"delta": -2}, headers=ADMIN)
    assert (refused.status_code, refused.json()["error"]) == (409, "insufficient_stock")
    withdrawn = await client.post(url, json={"delta": -1}, headers=ADMIN)
    assert (withdrawn.json()["stock"], withdrawn.json()["remaining"]) == (2, 0)
    assert withdrawn.json()["status"] == "sold_out"
    assert (await claim(client, c["id"], "c")).status_code == 410
    assert (await stats(client, c["id"]))["granted"] == 2


@pytest.mark.parametrize(
    ("body", "status"),
    [({"delta": 0}, 400), ({"delta": "5"}, 400), ({}, 400), ({"delta": 5, "x": 1}, 400),
     ({"delta": 1_000_000_000}, 409)],
)
async def test_stock_bad_requests_change_nothing(
    client: httpx.AsyncClient, body: dict[str, Any], status: int
) -> None:
    c = await create_campaign(client)
    response = await client.post(f"/v1/admin/campaigns/{c['id']}/stock", json=body,
                                 headers=ADMIN)
    assert response.status_code == status
    after = (await client.get(f"/v1/campaigns/{c['id']}")).json()
    assert (after["stock"], after["remaining"]) == (10, 10)


@pytest.mark.parametrize("action", ["pause", "resume", "stock"])
async def test_admin_actions_on_unknown_campaign(client: httpx.AsyncClient, action: str) -> None:
    response = await client.post(f"/v1/admin/campaigns/ghost/{action}", json={"delta": 1},
                                 headers=ADMIN)
    assert (response.status_code, response.json()["error"]) == (404, "campaign_not_found")
    response = await client.get("/v1/admin/campaigns/ghost", headers=ADMIN)
    assert response.status_code == 404


async def test_statuses_and_the_public_list(client: httpx.AsyncClient) -> None:
    live = await create_campaign(client, id="live")
    await create_campaign(client, id="scheduled", starts_at=iso(timedelta(hours=1)))
    await create_campaign(client, id="ended", starts_at=iso(timedelta(hours=-2)),
                          ends_at=iso(timedelta(hours=-1)))
    await create_campaign(client, id="sold", stock=1)
    await create_campaign(client, id="paused")
    await claim(client, "sold", "u1")
    await client.post("/v1/admin/campaigns/paused/pause", headers=ADMIN)
    statuses = {cid: (await client.get(f"/v1/campaigns/{cid}")).json()["status"]
                for cid in ["live", "scheduled", "ended", "sold", "paused"]}
    assert statuses == {"live": "live", "scheduled": "scheduled", "ended": "ended",
                        "sold": "sold_out", "paused": "paused"}
    listed = (await client.get("/v1/campaigns")).json()["campaigns"]
    assert [c["id"] for c in listed] == ["live", "scheduled"]
    assert listed[0] == live


async def test_records_page_through_the_stream(client: httpx.AsyncClient) -> None:
    c = await create_campaign(client, stock=5)
    granted = [(await claim(client, c["id"], f"u{i}")).json() for i in range(5)]
    url = f"/v1/admin/campaigns/{c['id']}/claims"
    first = (await client.get(url, params={"limit": 3}, headers=ADMIN)).json()
    rest = (await client.get(url, params={"after": first["next"], "limit": 3},
                             headers=ADMIN)).json()
    records = first["claims"] + rest["claims"]
    assert rest["next"] is None
    assert [(r["seq"], r["claim_id"], r["user_id"]) for r in records] == [
        (g["seq"], g["claim_id"], g["user_id"]) for g in granted]
    assert (await stats(client, c["id"]))["recorded"] == 5


@pytest.mark.parametrize("query", [{"after": "x"}, {"limit": "0"}, {"limit": "many"},
                                   {"limit": "10001"}])
async def test_records_bad_query(client: httpx.AsyncClient, query: dict[str, str]) -> None:
    c = await create_campaign(client)
    response = await client.get(f"/v1/admin/campaigns/{c['id']}/claims", params=query,
                                headers=ADMIN)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


async def test_every_admin_change_is_audited(client: httpx.AsyncClient,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="flashclaim.audit")
    c = await create_campaign(client, id="audited")
    for action in ["pause", "resume"]:
        await client.post(f"/v1/admin/campaigns/audited/{action}", headers=ADMIN)
    await client.post("/v1/admin/campaigns/audited/stock", json={"delta": 5}, headers=ADMIN)
    await client.get("/v1/admin/campaigns/audited", headers=ADMIN)  # a read: not audited
    lines = [r.getMessage() for r in caplog.records if r.name == "flashclaim.audit"]
    assert lines == ["campaign created id=audited stock=10", "campaign paused id=audited",
                     "campaign resumed id=audited",
                     "campaign stock id=audited delta=5 stock=15"], lines
    assert c["id"] == "audited"


async def test_a_retired_id_is_refused_and_indexes_nothing(
    client: httpx.AsyncClient, redis_client: Redis, keyspace: KeySpace,
) -> None:
    await redis_client.set(keyspace.campaign("double11").retired, 1)  # as retention leaves it
    r = await client.post("/v1/admin/campaigns", headers=ADMIN,
                          json=campaign_body(id="double11"))
    assert (r.status_code, r.json()["error"]) == (409, "campaign_retired")
    for index in (keyspace.registry, keyspace.open_campaigns, keyspace.campaign_ends):
        assert await redis_client.zscore(index, "double11") is None
    assert not await redis_client.exists(keyspace.campaign("double11").meta)
