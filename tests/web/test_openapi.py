"""/openapi.json describes every route the app serves, and nothing else.

(Every response the other tests receive is validated against it: see openapi_check.py.)
"""

from __future__ import annotations

import httpx
import jsonschema
from starlette.routing import BaseRoute, Mount, Route

from flashclaim.settings import Settings
from flashclaim.web.app import create_app
from flashclaim.web.openapi import openapi_document

from openapi_check import validate


def served_routes(routes: list[BaseRoute], prefix: str = "") -> set[tuple[str, str]]:
    """(path, method) of every route, the guarded groups' Mounts opened."""
    served: set[tuple[str, str]] = set()
    for route in routes:
        if isinstance(route, Mount):
            served |= served_routes(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            served |= {(prefix + route.path, m.lower()) for m in route.methods or ()
                       if m != "HEAD"}
    return served


def test_spec_lists_exactly_the_routes() -> None:
    app = create_app(Settings(redis_url="redis://unused")).starlette
    served = served_routes(app.routes)
    documented = {
        (path, method) for path, ops in openapi_document()["paths"].items() for method in ops
    }
    assert served == documented


def test_the_document_is_valid_json_schema() -> None:
    for schema in openapi_document()["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_validation_rejects_a_wrong_body() -> None:
    """The response check can fail: a claim without seq does not pass."""
    bad_claim: dict[str, object] = {
        "claim_id": "x", "campaign_id": "c", "user_id": "u", "claimed_at": "t",
        "channel": None, "coupons": [],
    }
    try:
        validate(bad_claim, {"$ref": "#/components/schemas/Claim"})
    except jsonschema.ValidationError:
        return
    raise AssertionError("an invalid claim passed validation")


async def test_served_document(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.json() == openapi_document()


async def test_metrics_count_claims_by_outcome(client: httpx.AsyncClient) -> None:
    def count(text: str, outcome: str) -> float:
        prefix = f'flashclaim_claims_total{{outcome="{outcome}"}} '
        lines = [line for line in text.splitlines() if line.startswith(prefix)]
        return float(lines[0].removeprefix(prefix)) if lines else 0.0

    before = (await client.get("/metrics")).text
    created = await client.post("/v1/admin/campaigns", json={
        "name": "m", "stock": 1, "coupons": [{"type": "cash", "value": 1}]},
        headers={"Authorization": "Bearer test-admin-token"})
    cid = created.json()["id"]
    for user in ["a", "b"]:
        await client.post(f"/v1/campaigns/{cid}/claims", headers={"X-User-Id": user})
    after = await client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    assert count(after.text, "granted") == count(before, "granted") + 1
    assert count(after.text, "sold_out") == count(before, "sold_out") + 1
    assert "flashclaim_claim_seconds_bucket" in after.text
