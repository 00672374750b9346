"""Bad input gets the contract's 4xx JSON error and changes no state."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from flashclaim.keys import KeySpace

from helpers import ADMIN, NAMESPACE, campaign_body, create_campaign, only_the_audit_written

JSON = {"content-type": "application/json"}
USER = {"X-User-Id": "u1"}

CLAIM_CASES: list[tuple[str, dict[str, str], bytes | None, int, str]] = [
    ("malformed JSON", {**USER, **JSON}, b'{"channel": ', 400, "invalid_request"),
    ("not UTF-8", {**USER, **JSON}, b'{"channel": "\xff"}', 400, "invalid_request"),
    ("top-level array", {**USER, **JSON}, b'["app"]', 400, "invalid_request"),
    ("top-level null", {**USER, **JSON}, b"null", 400, "invalid_request"),
    ("NaN", {**USER, **JSON}, b'{"channel": NaN}', 400, "invalid_request"),
    ("channel wrong type", {**USER, **JSON}, b'{"channel": 5}', 400, "invalid_request"),
    ("channel empty", {**USER, **JSON}, b'{"channel": ""}', 400, "invalid_request"),
    ("channel with brace", {**USER, **JSON}, b'{"channel": "a{b}"}', 400, "invalid_request"),
    # `$` matches before a final newline: "app\n" once passed, was granted and broke the record
    ("channel with a trailing newline", {**USER, **JSON}, b'{"channel": "app\\n"}', 400,
     "invalid_request"),
    ("unknown field", {**USER, **JSON}, b'{"channel": "app", "user_id": "u2"}', 400,
     "invalid_request"),
    ("duplicate key", {**USER, **JSON}, b'{"channel": "app", "channel": "web"}', 400,
     "invalid_request"),
    ("oversize body", {**USER, **JSON}, b'{"channel": "' + b"a" * 5000 + b'"}', 413,
     "payload_too_large"),
    ("form content type", {**USER, "content-type": "application/x-www-form-urlencoded"},
     b"channel=app", 415, "unsupported_media_type"),
    ("no content type", USER, b'{"channel": "app"}', 415, "unsupported_media_type"),
    ("user id too long", {"X-User-Id": "u" * 129}, None, 400, "invalid_request"),
    ("user id with brace", {"X-User-Id": "{u1}"}, None, 400, "invalid_request"),
    ("user id empty", {"X-User-Id": ""}, None, 400, "invalid_request"),
    ("bad tag", {**USER, "X-User-Tags": "vip,{x}"}, None, 400, "invalid_request"),
    ("idempotency key too long", {**USER, "Idempotency-Key": "k" * 256}, None, 400,
     "invalid_request"),
    ("idempotency key with tab", {**USER, "Idempotency-Key": "a\tb"}, None, 400,
     "invalid_request"),
    ("no user", {}, None, 401, "unauthenticated"),
]


async def assert_untouched(redis_client: Redis, campaign_id: str) -> None:
    meta = await redis_client.hgetall(KeySpace(NAMESPACE).campaign(campaign_id).meta)
    assert (meta["granted"], meta["remaining"]) == ("0", "10")
    assert await redis_client.xlen(KeySpace(NAMESPACE).campaign(campaign_id).stream) == 0
    assert await redis_client.keys(KeySpace(NAMESPACE).idempotency_pattern) == []


@pytest.mark.parametrize(("name", "headers", "body", "status", "code"), CLAIM_CASES,
                         ids=[c[0] for c in CLAIM_CASES])
async def test_bad_claims(
    client: httpx.AsyncClient, redis_client: Redis, name: str, headers: dict[str, str],
    body: bytes | None, status: int, code: str,
) -> None:
    c = await create_campaign(client)
    response = await client.post(f"/v1/campaigns/{c['id']}/claims", headers=headers,
                                 content=body)
    assert response.status_code == status, response.text
    assert response.json()["error"] == code
    await assert_untouched(redis_client, c["id"])


@pytest.mark.parametrize("campaign_id", ["a%7Bb%7D", "a.b", "x" * 65, "a%20b", "idnl%0A"])
async def test_bad_campaign_ids(client: httpx.AsyncClient, campaign_id: str) -> None:
    for response in [
        await client.post(f"/v1/campaigns/{campaign_id}/claims", headers=USER),
        await client.get(f"/v1/campaigns/{campaign_id}"),
        await client.get(f"/v1/admin/campaigns/{campaign_id}", headers=ADMIN),
    ]:
        assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


ADMIN_CASES: list[tuple[str, dict[str, str], bytes, int]] = [
    ("malformed JSON", JSON, b"{", 400),
    ("empty body", JSON, b"", 400),
    ("array", JSON, b"[]", 400),
    ("Infinity", JSON, b'{"name": "x", "stock": Infinity}', 400),
    ("huge integer", JSON, b'{"name": "x", "stock": 1' + b"0" * 40 + b"}", 400),
    ("deep nesting", JSON, b'{"name": "x", "stock": 1, "coupons": [{"type": "cash", '
     b'"value": 1, "scope": ' + b'{"a": ' * 2000 + b"1" + b"}" * 2000 + b"}]}", 400),
    ("lone surrogate", JSON, b'{"name": "\\ud800", "stock": 1}', 400),
    ("duplicate key", JSON, b'{"name": "x", "stock": 1, "stock": 5, "coupons": '
     b'[{"type": "cash", "value": 1}]}', 400),
    ("nested duplicate key", JSON, b'{"name": "x", "stock": 1, "coupons": '
     b'[{"type": "cash", "value": 1, "value": 2}]}', 400),
    ("wrong content type", {"content-type": "text/plain"}, b"{}", 415),
    ("oversize", JSON, b'{"name": "' + b"x" * 70_000 + b'"}', 413),
]


@pytest.mark.parametrize(("name", "headers", "body", "status"), ADMIN_CASES,
                         ids=[c[0] for c in ADMIN_CASES])
async def test_bad_admin_bodies(
    client: httpx.AsyncClient, redis_client: Redis, name: str, headers: dict[str, str],
    body: bytes, status: int,
) -> None:
    response = await client.post("/v1/admin/campaigns", headers={**ADMIN, **headers},
                                 content=body)
    assert response.status_code == status, response.text
    assert response.json()["message"]
    assert await only_the_audit_written(redis_client)


@pytest.mark.parametrize("after", ["99999999999999999999-9", "1-99999999999999999999",
                                   "18446744073709551616-0", "1-0\n", "-1", "1-"])
async def test_bad_stream_positions_are_400(client: httpx.AsyncClient, after: str) -> None:
    """Not a 503 from Redis refusing the id (schemathesis found it)."""
    c = await create_campaign(client)
    response = await client.get(f"/v1/admin/campaigns/{c['id']}/claims", headers=ADMIN,
                                params={"after": after})
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


async def test_the_largest_stream_position_is_accepted(client: httpx.AsyncClient) -> None:
    c = await create_campaign(client)
    response = await client.get(f"/v1/admin/campaigns/{c['id']}/claims", headers=ADMIN,
                                params={"after": "18446744073709551615-18446744073709551615"})
    assert response.status_code == 200 and response.json()["claims"] == []


async def test_content_length_is_checked_before_reading(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/admin/campaigns", headers={**ADMIN, **JSON, "content-length": "99999999"},
        content=b"{}",
    )
    assert response.status_code in (400, 413)


@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("GET", "/v1/nothing", 404, "not_found"),
    ("DELETE", "/v1/campaigns/x", 405, "method_not_allowed"),
    ("GET", "/v1/campaigns/x/claims", 405, "method_not_allowed"),
])
async def test_unknown_routes_and_methods(
    client: httpx.AsyncClient, method: str, path: str, status: int, code: str
) -> None:
    response = await client.request(method, path)
    assert (response.status_code, response.json()["error"]) == (status, code)


async def test_valid_body_still_works(client: httpx.AsyncClient) -> None:
    """The cases above fail for their one defect, not because the request shape is wrong."""
    c = await create_campaign(client)
    response = await client.post(f"/v1/campaigns/{c['id']}/claims",
                                 headers={**USER, **JSON}, content=b'{"channel": "app"}')
    assert response.status_code == 201
    body: dict[str, Any] = campaign_body()
    created = await client.post("/v1/admin/campaigns", headers=ADMIN, json=body)
    assert created.status_code == 201


# Characters str.isdigit() accepts that int() refuses: each once answered 500 and dropped the
# keep-alive connection.
UNICODE_DIGITS = ["²", "①", "٣", "1²"]


@pytest.mark.parametrize("digits", UNICODE_DIGITS)
async def test_unicode_digits_in_numbers_are_400(client: httpx.AsyncClient, digits: str) -> None:
    c = await create_campaign(client)
    grant = await client.post(f"/v1/admin/campaigns/{c['id']}/grants", headers=ADMIN,
                              json={"grant_id": "g1", "users": ["u1"]})
    assert grant.status_code == 202
    probes = [
        ("/v1/admin/campaigns", {"limit": digits}, ADMIN),
        ("/v1/admin/campaigns", {"cursor": f"{digits}.x"}, ADMIN),
        (f"/v1/admin/campaigns/{c['id']}/claims", {"limit": digits}, ADMIN),
        (f"/v1/admin/campaigns/{c['id']}/grants/g1", {"cursor": digits}, ADMIN),
        (f"/v1/admin/campaigns/{c['id']}/grants/g1", {"limit": digits}, ADMIN),
        ("/v1/admin/templates", {"limit": digits}, ADMIN),
        ("/v1/admin/blocklist", {"limit": digits}, ADMIN),
        ("/v1/me/coupons", {"limit": digits}, USER),
        ("/v1/me/coupons", {"cursor": f"{digits}.abc"}, USER),
        ("/v1/me/coupons", {"cursor": f"1.{digits}"}, USER),
    ]
    for path, params, headers in probes:
        response = await client.get(path, params=params, headers=headers)
        assert response.status_code == 400, (path, params, response.text)
        assert response.json()["error"] == "invalid_request"
    # a Content-Length that is not ASCII digits (latin-1 "²" is one byte on the wire)
    raw_headers = [(b"authorization", ADMIN["Authorization"].encode()),
                   (b"content-type", b"application/json"),
                   (b"content-length", "²".encode("latin-1"))]
    response = await client.post("/v1/admin/campaigns", content=b"{}", headers=raw_headers)
    assert response.status_code == 400, response.text
