"""The typed shapes (flashclaim/schemas): strict decoding with the API's 400, rendering that
leaves unset parts out, and an API document generated from them alone."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from flashclaim.campaigns import meta_fields
from flashclaim.errors import ApiError
from flashclaim.schemas.base import UNSET, decode, encode
from flashclaim.schemas.campaigns import (
    Campaign,
    CampaignCreate,
    ShownRateLimit,
    campaign_patch,
    campaign_spec,
)
from flashclaim.schemas.issuance import code_batch, grant_body
from flashclaim.web.openapi import openapi_document

NOW = 1_800_000_000_000
GOOD: dict[str, Any] = {"name": "n", "stock": 10, "coupons": [{"type": "cash", "value": 500}]}


def refused(body: object) -> str:
    with pytest.raises(ApiError) as caught:
        campaign_spec(body, NOW)
    assert caught.value.status == 400 and caught.value.code == "invalid_request"
    return caught.value.message


@pytest.mark.parametrize(("change", "named"), [
    ({"stock": True}, "stock"),                      # a bool is no integer
    ({"stock": "10"}, "stock"),                      # a string is no number
    ({"per_user_limit": 1.0}, "per_user_limit"),     # nor is a float
    ({"id": "abc\n"}, "id"),                         # whole-string patterns: no trailing newline
    ({"channels": ["app\n"]}, "channels[0]"),
    ({"stok": 1}, "stok"),                           # unknown fields are named
    ({"coupons": [{"type": "cash", "value": 500, "valeu": 1}]}, "coupons[0].valeu"),
    ({"coupons": [{"type": "cash"}]}, "coupons[0].value"),
    ({"coupons": [{"type": "voucher"}]}, "coupons[0].type"),
    ({"rate_limit": {"max": 0, "per_seconds": 1}}, "rate_limit.max"),
    ({"per_user_limit": None}, "per_user_limit"),    # null only where the document allows it
])
def test_decoding_is_strict_and_names_the_field(change: dict[str, Any], named: str) -> None:
    assert named in refused({**GOOD, **change})


@pytest.mark.parametrize(("change", "rule"), [
    ({"per_user_limit": 1, "per_user_daily_limit": 2}, "per_user_daily_limit"),
    ({"starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"}, "ends_at"),
    ({"coupons": [{"type": "threshold", "value": 500, "min_spend": 100}]}, "min_spend"),
    ({"coupons": [{"type": "cash", "value": 5, "validity": {"days": 3,
                                                          "until": "2030-01-01T00:00:00Z"}}]},
     "validity"),
    ({"segments": ["vip"], "exclude_segments": ["vip"]}, "segment"),
    ({"channels": ["app", "app"]}, "channels"),
    ({"name": "tab\there"}, "name"),
])
def test_rules_across_fields_follow_decoding(change: dict[str, Any], rule: str) -> None:
    assert rule in refused({**GOOD, **change})


def test_an_accepted_create_keeps_the_model_the_store_writes() -> None:
    spec = campaign_spec({**GOOD, "coupons": [{"type": "discount", "percent_off": 20,
                                               "max_discount": 900}]}, NOW)
    assert [c.shown() for c in spec.coupons] == [{
        "type": "discount", "percent_off": 20, "max_discount": 900, "min_spend": 0,
        "currency": "CNY", "validity": {"days": 30}, "scope": {}}]
    # the fragment claim.lua splices into every claim: the same bytes as before the type
    assert meta_fields(spec, NOW)[meta_fields(spec, NOW).index("coupons") + 1] == (
        '[{"f":"\\"type\\":\\"discount\\",\\"percent_off\\":20,\\"max_discount\\":900,'
        '\\"min_spend\\":0,\\"currency\\":\\"CNY\\",\\"scope\\":{}","cap":900,"days":30}]')
    assert spec.starts_at == NOW and spec.rate_limit == {"max": 10, "per_seconds": 1}
    # PATCH: what a create refuses is refused, and fields a patch may not name are named
    with pytest.raises(ApiError) as caught:
        campaign_patch({"stock": 5}, spec.body, NOW)
    assert "stock" in caught.value.message
    assert campaign_patch({"per_user_limit": 3}, spec.body, NOW).per_user_limit == 3


def test_other_bodies_check_their_own_rules() -> None:
    with pytest.raises(ApiError, match="uses_per_user"):
        code_batch({"count": 10, "uses_per_code": 2, "uses_per_user": 3})
    with pytest.raises(ApiError, match=r"users\[0\].tags"):
        grant_body({"grant_id": "g", "users": [{"user_id": "u", "tags": ["a", "a"]}]})


def test_unset_parts_are_left_out_and_null_is_sent() -> None:
    campaign = Campaign(id="c", name="n", status="live", starts_at="t", ends_at=None, stock=None,
                        remaining=None, per_user_limit=1, coupons=[], channels=[], segments=[],
                        rate_limit=ShownRateLimit(max=1, per_seconds=1))
    shown = json.loads(encode(campaign))
    assert shown["ends_at"] is None and shown["stock"] is None  # nullable: sent as null
    assert "claimed" not in shown and "server_time" not in shown  # unset: not sent
    campaign.claimed, campaign.refusal = 0, None
    shown = json.loads(encode(campaign))
    assert shown["claimed"] == 0 and shown["refusal"] is None
    assert campaign.can_claim is UNSET


def test_the_document_comes_from_the_types() -> None:
    doc = openapi_document()
    schemas = doc["components"]["schemas"]
    text = json.dumps(doc)
    # every reference resolves, and every body a route names is a component
    for name in re.findall(r'"#/components/schemas/([A-Za-z]+)"', text):
        assert name in schemas, name
    assert schemas["CampaignCreate"]["required"] == ["name", "coupons", "stock"]
    assert schemas["CampaignCreate"]["additionalProperties"] is False
    # patterns as JSON Schema states them (ECMA): anchored with ^ and $, never \A or \Z
    patterns = re.findall(r'"pattern": "((?:[^"\\]|\\.)*)"', text)
    assert patterns and all(p.startswith("^") and p.endswith("$") for p in patterns)
    assert "\\\\A" not in text and "\\\\Z" not in text
    # the same bound the decoder enforces is the one the document states
    stock = schemas["CampaignCreate"]["properties"]["stock"]["anyOf"][0]
    assert stock["maximum"] == 1_000_000_000
    with pytest.raises(ApiError):
        decode({**GOOD, "stock": stock["maximum"] + 1}, CampaignCreate)
