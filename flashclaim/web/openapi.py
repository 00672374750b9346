"""The OpenAPI 3.1 description of every route (tests keep it true to the app)."""

from __future__ import annotations

import re
from typing import Any

from flashclaim import __version__
from flashclaim.campaigns import (
    COUPON_TYPES,
    COUPONS_RANGE,
    DAILY_LIMIT_RANGE,
    MAX_BUCKETS,
    MAX_CHANNELS,
    MAX_MONEY,
    MAX_SEGMENTS,
    MAX_STOCK,
    NAME_MAX_LEN,
    PER_USER_LIMIT_RANGE,
    PERCENT_OFF_RANGE,
    RATE_MAX_RANGE,
    RATE_SECONDS_RANGE,
    STATUSES,
    STOCK_RANGE,
    VALIDITY_DAYS_RANGE,
)
from flashclaim.coupons import ORDER_ID_RE
from flashclaim.store.blocklist import BLOCKLIST_LIMIT_RANGE, REASON_MAX_LEN
from flashclaim.store.campaign_store import CAMPAIGNS_LIMIT_RANGE, RECORDS_LIMIT_RANGE
from flashclaim.store.code_store import COUNT_RANGE, USES_RANGE
from flashclaim.store.grant_store import GRANT_USERS_LIMIT_RANGE, MAX_TAGS, MAX_USERS_PER_CALL
from flashclaim.store.templates import TEMPLATES_LIMIT_RANGE
from flashclaim.stream import RECORDS_CURSOR_RE
from flashclaim.validation import (
    CAMPAIGN_ID_RE,
    CHANNEL_RE,
    CURRENCY_RE,
    IDEMPOTENCY_KEY_RE,
    TAG_RE,
    USER_ID_RE,
)


def _pattern(rx: re.Pattern[str]) -> str:
    """A validator's regex as a JSON Schema pattern. JSON Schema patterns are ECMA-262,
    where `$` is the end of input; the service itself matches with re.fullmatch."""
    return f"^(?:{rx.pattern})$"


def _int(bounds: tuple[int, int]) -> dict[str, Any]:
    return {"type": "integer", "minimum": bounds[0], "maximum": bounds[1]}


def _text(rx: re.Pattern[str]) -> dict[str, Any]:
    return {"type": "string", "pattern": _pattern(rx)}


_ID = _text(CAMPAIGN_ID_RE)
_TIME = {"type": "string", "format": "date-time"}
_MONEY = _int((0, MAX_MONEY))


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): _json(_ref("Error"), "Error") for s in statuses}


_VALIDITY = {
    "oneOf": [
        {"type": "object", "required": ["days"], "additionalProperties": False,
         "properties": {"days": _int(VALIDITY_DAYS_RANGE)}},
        {"type": "object", "required": ["from", "until"], "additionalProperties": False,
         "properties": {"from": _TIME, "until": _TIME}},
    ]
}
_COUPON_TEMPLATE: dict[str, Any] = {
    "type": "object",
    "required": ["type"],
    "additionalProperties": False,
    "properties": {
        "type": {"enum": list(COUPON_TYPES)},
        "value": _MONEY,
        "min_spend": _MONEY,
        "percent_off": _int(PERCENT_OFF_RANGE),
        "max_discount": _MONEY,
        "currency": _text(CURRENCY_RE),
        "validity": _VALIDITY,
        "scope": {"type": "object"},
    },
}
_RATE_LIMIT = {
    "type": "object",
    "required": ["max", "per_seconds"],
    "additionalProperties": False,
    "properties": {
        "max": _int(RATE_MAX_RANGE),
        "per_seconds": _int(RATE_SECONDS_RANGE),
    },
}
_TAG_LIST = {"type": "array", "items": {"type": "string"}}

_NULLABLE_INT = {"type": ["integer", "null"]}
# A campaign's coupon as shown: the input form, plus the template version it copies.
_CAMPAIGN_COUPON = {**_COUPON_TEMPLATE, "properties": {
    **_COUPON_TEMPLATE["properties"],
    "template": {"type": "object", "required": ["id", "version"],
                 "properties": {"id": _ID, "version": {"type": "integer", "minimum": 1}}}}}
_TEMPLATE_USE = {
    "type": "object",
    "required": ["template"],
    "additionalProperties": False,
    "properties": {"template": _ID, "version": _int((1, 1_000_000))},
}
_CAMPAIGN_FIELDS: dict[str, Any] = {
    "name": {"type": "string", "minLength": 1, "maxLength": NAME_MAX_LEN},
    "ends_at": {"oneOf": [_TIME, {"type": "null"}]},
    "per_user_limit": _int(PER_USER_LIMIT_RANGE),
    "per_user_daily_limit": {"oneOf": [_int(DAILY_LIMIT_RANGE), {"type": "null"}]},
    "coupons": {"type": "array", "minItems": COUPONS_RANGE[0], "maxItems": COUPONS_RANGE[1],
                "items": {"oneOf": [_ref("CouponTemplate"), _TEMPLATE_USE]}},
    "channels": {"type": "array", "maxItems": MAX_CHANNELS, "items": _text(CHANNEL_RE)},
    "segments": {"type": "array", "maxItems": MAX_SEGMENTS, "items": _text(TAG_RE)},
    "exclude_segments": {"type": "array", "maxItems": MAX_SEGMENTS, "items": _text(TAG_RE)},
    "rate_limit": _RATE_LIMIT,
    "listed": {"type": "boolean", "description": "shown by GET /v1/campaigns (default true; "
                                                 "false: internal, claimable by id)"},
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                       "server_time": _TIME},
    },
    "CouponTemplate": _COUPON_TEMPLATE,
    "CampaignCreate": {
        "type": "object",
        "required": ["name", "stock", "coupons"],
        "additionalProperties": False,
        "properties": {
            "id": _ID,
            "stock": {"oneOf": [_int(STOCK_RANGE), {"type": "null"}],
                      "description": "null: unlimited stock (per-user limits still apply)"},
            "starts_at": _TIME,
            "timezone": {"type": "string", "maxLength": 64,
                         "description": "IANA zone the daily limit counts days in"},
            "buckets": {**_int((1, MAX_BUCKETS)),
                        "description": "hash tags the stock is spread over (hot campaigns "
                                       "on Redis Cluster); fixed at creation"},
            **_CAMPAIGN_FIELDS,
        },
    },
    "CampaignPatch": {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": _CAMPAIGN_FIELDS,
        "description": "coupons only before the first grant; an ended campaign cannot change",
    },
    "Campaign": {
        "type": "object",
        "required": ["id", "name", "status", "starts_at", "ends_at", "stock", "remaining",
                     "per_user_limit", "coupons", "channels", "segments", "rate_limit"],
        "properties": {
            "id": _ID,
            "name": {"type": "string"},
            "status": {"enum": list(STATUSES)},
            "starts_at": _TIME,
            "ends_at": {"oneOf": [_TIME, {"type": "null"}]},
            "stock": {"type": ["integer", "null"], "minimum": 0},
            "remaining": {"type": ["integer", "null"], "minimum": 0},
            "per_user_limit": {"type": "integer"},
            "per_user_daily_limit": _NULLABLE_INT,
            "timezone": {"type": "string"},
            "coupons": {"type": "array", "items": _CAMPAIGN_COUPON},
            "channels": _TAG_LIST,
            "segments": _TAG_LIST,
            "exclude_segments": _TAG_LIST,
            "rate_limit": _RATE_LIMIT,
            "buckets": {"type": "integer", "minimum": 1},
            "listed": {"type": "boolean",
                       "description": "shown by GET /v1/campaigns (false: internal)"},
            "granted": {"type": "integer", "minimum": 0,
                        "description": "(the admin listing) claims granted so far"},
            "server_time": _TIME,
            "claimed": {"type": "integer", "minimum": 0,
                        "description": "with an identity: the caller's grants"},
            "claimed_today": {"type": ["integer", "null"], "minimum": 0,
                              "description": "with an identity: the caller's grants today "
                                             "(null: the campaign has no daily limit)"},
            "can_claim": {"type": "boolean",
                          "description": "with an identity: a grab now could be granted"},
            "refusal": {"type": ["string", "null"],
                        "description": "with an identity: the error a grab now would get "
                                       "(not_started, ended, paused, not_eligible, blocked, "
                                       "already_claimed, daily_limit, sold_out); null when it "
                                       "could be granted"},
        },
    },
    "AdminCampaignList": {
        "type": "object",
        "required": ["campaigns", "next"],
        "properties": {"campaigns": {"type": "array", "items": _ref("Campaign")},
                       "next": {"type": ["string", "null"]}},
    },
    "TemplateCreate": {
        "type": "object",
        "required": ["name", "coupon"],
        "additionalProperties": False,
        "properties": {"id": _ID, "name": {"type": "string", "maxLength": NAME_MAX_LEN},
                       "coupon": _ref("CouponTemplate")},
    },
    "TemplateVersion": {
        "type": "object",
        "required": ["id", "version", "name", "coupon", "created_at"],
        "properties": {"id": _ID, "version": {"type": "integer", "minimum": 1},
                       "name": {"type": "string"}, "coupon": _ref("CouponTemplate"),
                       "created_at": _TIME},
    },
    "Template": {
        "allOf": [_ref("TemplateVersion"), {
            "type": "object", "required": ["versions"],
            "properties": {"versions": {"type": "array", "items": _ref("TemplateVersion")}}}],
    },
    "TemplateList": {
        "type": "object",
        "required": ["templates", "next"],
        "properties": {"templates": {"type": "array", "items": _ref("TemplateVersion")},
                       "next": {"type": ["string", "null"]}},
    },
    "GrantCreate": {
        "type": "object",
        "required": ["grant_id", "users"],
        "additionalProperties": False,
        "properties": {
            "grant_id": _ID,
            "users": {"type": "array", "minItems": 1, "maxItems": MAX_USERS_PER_CALL,
                      "items": {"oneOf": [_text(USER_ID_RE), {
                          "type": "object", "required": ["user_id"],
                          "additionalProperties": False,
                          "properties": {"user_id": _text(USER_ID_RE),
                                         "tags": {"type": "array", "maxItems": MAX_TAGS,
                                                  "items": _text(TAG_RE)}}}]}},
            "at": _TIME,
        },
    },
    "Grant": {
        "type": "object",
        "required": ["grant_id", "campaign_id", "state", "at", "created_at", "total",
                     "processed", "outcomes"],
        "properties": {
            "grant_id": _ID, "campaign_id": _ID,
            "state": {"enum": ["scheduled", "running", "done"]},
            "at": _TIME, "created_at": _TIME,
            "total": {"type": "integer", "minimum": 0},
            "processed": {"type": "integer", "minimum": 0},
            "outcomes": {"type": "object", "additionalProperties": {"type": "integer"}},
            "added": {"type": "integer", "minimum": 0,
                      "description": "(a submission's answer) users this call added"},
            "already_in_grant": {"type": "integer", "minimum": 0,
                                 "description": "(a submission's answer) users of this call "
                                                "the grant held already: they keep the tags "
                                                "of their first submission"},
            "users": {"type": "array", "items": {
                "type": "object", "required": ["user_id", "outcome"],
                "properties": {"user_id": {"type": "string"}, "outcome": {"type": "string"},
                               "claim_id": {"type": "string"}}}},
            "next": {"type": ["string", "null"]},
        },
    },
    "CodeBatchCreate": {
        "type": "object",
        "required": ["count"],
        "additionalProperties": False,
        "properties": {"count": _int(COUNT_RANGE), "uses_per_code": _int(USES_RANGE),
                       "uses_per_user": {**_int(USES_RANGE), "description":
                                         "how often one user may redeem one code (default 1; "
                                         "at most uses_per_code)"}},
    },
    "CodeBatch": {
        "type": "object",
        "required": ["batch_id", "campaign_id", "state", "count", "generated",
                     "uses_per_code", "created_at"],
        "properties": {
            "batch_id": {"type": "string"}, "campaign_id": _ID,
            "state": {"enum": ["generating", "ready", "exported"]},
            "count": {"type": "integer"}, "generated": {"type": "integer"},
            "uses_per_code": {"type": "integer"}, "uses_per_user": {"type": "integer"},
            "created_at": _TIME,
        },
    },
    "CodeBatches": {
        "type": "object", "required": ["batches"],
        "properties": {"batches": {"type": "array", "items": _ref("CodeBatch")}},
    },
    "Redemption": {
        "type": "object",
        "required": ["code"],
        "additionalProperties": False,
        "properties": {"code": {"type": "string", "minLength": 1, "maxLength": 64},
                       "channel": _text(CHANNEL_RE)},
    },
    "CouponRedeem": {
        "type": "object", "required": ["order_id", "discount"], "additionalProperties": False,
        "properties": {"order_id": _text(ORDER_ID_RE), "discount": _MONEY},
    },
    "CouponRelease": {
        "type": "object", "required": ["order_id"], "additionalProperties": False,
        "properties": {"order_id": _text(ORDER_ID_RE)},
    },
    "CouponState": {
        "type": "object",
        "required": ["coupon_id", "campaign_id", "user_id", "valid_until", "status"],
        "properties": {
            "coupon_id": {"type": "string"}, "campaign_id": _ID, "user_id": {"type": "string"},
            "valid_until": _TIME, "status": {"enum": ["used", "unused"]},
            "order_id": {"type": "string"}, "discount": _MONEY, "used_at": _TIME,
        },
    },
    "WalletCoupon": {
        "type": "object",
        "required": ["coupon_id", "campaign_id", "campaign_name", "claim_id", "source", "type",
                     "currency", "status", "valid_from", "valid_until", "claimed_at"],
        "properties": {
            "coupon_id": {"type": "string"}, "campaign_id": _ID,
            "campaign_name": {"type": ["string", "null"]}, "claim_id": {"type": "string"},
            "source": {"enum": ["grab", "grant", "code"]},
            "type": {"enum": list(COUPON_TYPES)}, "currency": {"type": "string"},
            "status": {"enum": ["unused", "used", "expired"]},
            "value": _MONEY, "min_spend": _MONEY, "percent_off": {"type": "integer"},
            "max_discount": _MONEY, "valid_from": _TIME, "valid_until": _TIME,
            "claimed_at": _TIME, "order_id": {"type": "string"}, "discount": _MONEY,
            "used_at": _TIME, "scope": {"type": "object"},
        },
    },
    "Figures": {
        "type": "object",
        "required": ["claims", "coupons", "used", "use_rate", "expired", "discount_cost"],
        "properties": {
            "claims": {"type": "integer"}, "coupons": {"type": "integer"},
            "used": {"type": "integer"}, "use_rate": {"type": ["number", "null"]},
            "expired": {"type": "integer"},
            "discount_cost": {"type": "object", "additionalProperties": {"type": "integer"},
                              "description": "per currency, minor units"},
        },
    },
    "ReportSplits": {
        "type": "object", "required": ["by_channel", "by_segment", "by_source", "timeline"],
        "properties": {
            "by_channel": {"type": "array", "items": _ref("Figures")},
            "by_segment": {"type": "array", "items": _ref("Figures")},
            "by_source": {"type": "array", "items": _ref("Figures")},
            "timeline": {"type": "array", "items": {
                "type": "object", "required": ["at", "claims", "uses"],
                "properties": {"at": _TIME, "claims": {"type": "integer"},
                               "uses": {"type": "integer"}}}},
        },
    },
    "CampaignReport": {"allOf": [_ref("Figures"), _ref("ReportSplits"), {
        "type": "object",
        "required": ["campaign_id", "name", "issued", "claim_rate", "bucket", "ledger_lag",
                     "server_time"],
        "properties": {"campaign_id": _ID, "name": {"type": ["string", "null"]},
                       "issued": {"type": ["integer", "null"]},
                       "claim_rate": {"type": ["number", "null"]},
                       "bucket": {"enum": ["minute", "hour", "day"]},
                       "ledger_lag": {"type": ["integer", "null"]}, "server_time": _TIME},
    }]},
    "Report": {"allOf": [_ref("Figures"), _ref("ReportSplits"), {
        "type": "object", "required": ["from", "to", "bucket", "campaigns", "server_time"],
        "properties": {"from": _TIME, "to": _TIME, "bucket": {"enum": ["minute", "hour", "day"]},
                       "campaigns": {"type": "array", "items": _ref("Figures")},
                       "server_time": _TIME},
    }]},
    "Wallet": {
        "type": "object", "required": ["coupons", "next", "server_time"],
        "properties": {"coupons": {"type": "array", "items": _ref("WalletCoupon")},
                       "next": {"type": ["string", "null"]}, "server_time": _TIME},
    },
    "BlockBody": {
        "type": "object",
        "required": ["reason"],
        "additionalProperties": False,
        "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": REASON_MAX_LEN}},
    },
    "Blocked": {
        "type": "object",
        "required": ["user_id", "reason", "blocked_at"],
        "properties": {"user_id": {"type": "string"}, "reason": {"type": "string"},
                       "blocked_at": _TIME},
    },
    "Blocklist": {
        "type": "object",
        "required": ["blocked", "next"],
        "properties": {"blocked": {"type": "array", "items": _ref("Blocked")},
                       "next": {"type": ["string", "null"]}},
    },
    "AdminCampaign": {
        "allOf": [
            _ref("Campaign"),
            {
                "type": "object",
                "required": ["stats"],
                "properties": {
                    "stats": {
                        "type": "object",
                        "required": ["granted", "remaining", "recorded", "rejected"],
                        "properties": {
                            "granted": {"type": "integer", "minimum": 0},
                            "remaining": {"type": ["integer", "null"], "minimum": 0},
                            "recorded": {"type": "integer", "minimum": 0},
                            "rejected": {"type": "object",
                                         "additionalProperties": {"type": "integer"}},
                        },
                    }
                },
            },
        ]
    },
    "CampaignList": {
        "type": "object",
        "required": ["campaigns"],
        "properties": {"campaigns": {"type": "array", "items": _ref("Campaign")},
                       "server_time": _TIME},
    },
    "ClaimBody": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"channel": _text(CHANNEL_RE)},
    },
    "GrantedCoupon": {
        "type": "object",
        "required": ["coupon_id", "type", "currency", "valid_from", "valid_until", "scope"],
        "properties": {
            "coupon_id": {"type": "string"},
            "type": {"enum": ["cash", "threshold", "discount"]},
            "value": _MONEY,
            "min_spend": _MONEY,
            "percent_off": {"type": "integer"},
            "max_discount": _MONEY,
            "currency": {"type": "string"},
            "valid_from": _TIME,
            "valid_until": _TIME,
            "scope": {"type": "object"},
        },
    },
    "Claim": {
        "type": "object",
        "required": ["claim_id", "campaign_id", "user_id", "seq", "claimed_at", "channel",
                     "coupons"],
        "properties": {
            "claim_id": {"type": "string"},
            "campaign_id": _ID,
            "user_id": {"type": "string"},
            "seq": {"type": "integer", "minimum": 1},
            "claimed_at": _TIME,
            "channel": {"type": ["string", "null"]},
            "source": {"enum": ["grab", "grant", "code"]},
            "server_time": _TIME,
            "coupons": {"type": "array", "minItems": 1, "items": _ref("GrantedCoupon")},
        },
    },
    "StockDelta": {
        "type": "object",
        "required": ["delta"],
        "additionalProperties": False,
        "properties": {"delta": {**_int((-MAX_STOCK, MAX_STOCK)), "not": {"const": 0}}},
    },
    "Records": {
        "type": "object",
        "required": ["claims", "next"],
        "properties": {
            "claims": {"type": "array", "items": {
                "type": "object", "required": ["entry_id", "seq", "claim_id", "user_id"],
                "properties": {"entry_id": {"type": "string"}, "seq": {"type": "integer"},
                               "claim_id": {"type": "string"}, "user_id": {"type": "string"},
                               "source": {"enum": ["grab", "grant", "code"]},
                               "source_ref": {"type": "string"}},
            }},
            "next": {"type": ["string", "null"]},
        },
    },
    "Health": {"type": "object", "required": ["status"],
               "properties": {"status": {"type": "string"}}},
    "Ready": {
        "type": "object",
        "required": ["status", "warnings"],
        "properties": {"status": {"const": "ready"}, "warnings": _TAG_LIST},
    },
}

_CAMPAIGN_ID_PARAM = {"name": "campaign_id", "in": "path", "required": True, "schema": _ID}
_USER = [
    {"name": "X-User-Id", "in": "header", "required": False,
     "description": "The user, in header identity mode (set by the authenticating gateway).",
     "schema": _text(USER_ID_RE)},
    {"name": "X-User-Tags", "in": "header", "required": False,
     "description": "Comma-separated tags, in header identity mode.",
     "schema": {"type": "string"}},
]
_ADMIN: list[dict[str, list[str]]] = [{"adminToken": []}]


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}


_CURSOR = _query("cursor", {"type": "string"})
_TEMPLATE_ID_PARAM = {"name": "template_id", "in": "path", "required": True, "schema": _ID}
_USER_ID_PARAM = {"name": "user_id", "in": "path", "required": True,
                  "schema": _text(USER_ID_RE)}


def _admin_action(summary: str, body: str | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "security": _ADMIN,
        "parameters": [_CAMPAIGN_ID_PARAM],
        "responses": {"200": _json(_ref("Campaign"), "The campaign after the change"),
                      **_errors(400, 401, 404, 413, 415, 503)},
    }
    if body is not None:
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": _ref(body)}}}
        op["responses"].update(_errors(408, 409))
    return op


PATHS: dict[str, Any] = {
    "/v1/campaigns": {
        "get": {"summary": "Campaigns that are scheduled or live (and listed); with an "
                           "identity, also the caller's claimed, can_claim and refusal each",
                "security": [{}, {"userToken": []}],
                "parameters": [*_USER, _query("channel", _text(CHANNEL_RE))],
                "responses": {"200": _json(_ref("CampaignList"), "Open campaigns"),
                              **_errors(400, 401, 503)}}
    },
    "/v1/campaigns/{campaign_id}": {
        "get": {"summary": "One campaign with its status and remaining stock; with an "
                           "identity, also the caller's claimed, can_claim and refusal",
                "security": [{}, {"userToken": []}],
                "parameters": [_CAMPAIGN_ID_PARAM, *_USER, _query("channel", _text(CHANNEL_RE))],
                "responses": {"200": _json(_ref("Campaign"), "The campaign"),
                              **_errors(400, 401, 404, 503)}}
    },
    "/v1/campaigns/{campaign_id}/claims": {
        "post": {
            "summary": "Grab: claim one unit of the campaign's stock",
            "security": [{}, {"userToken": []}],
            "parameters": [
                _CAMPAIGN_ID_PARAM, *_USER,
                {"name": "Idempotency-Key", "in": "header", "required": False,
                 "schema": _text(IDEMPOTENCY_KEY_RE)},
            ],
            "requestBody": {"required": False,
                            "content": {"application/json": {"schema": _ref("ClaimBody")}}},
            "responses": {
                "201": _json(_ref("Claim"), "Granted"),
                "200": _json(_ref("Claim"), "Replay of the claim granted for this key"),
                **_errors(400, 401, 403, 404, 408, 409, 410, 413, 415, 429, 503),
            },
        }
    },
    "/v1/admin/campaigns": {
        "post": {
            "summary": "Create a campaign",
            "security": _ADMIN,
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": _ref("CampaignCreate")}}},
            "responses": {"201": _json(_ref("Campaign"), "Created"),
                          **_errors(400, 401, 404, 408, 409, 413, 415, 503)},
        },
        "get": {
            "summary": "Every campaign, oldest first, paged; ?status= keeps one status",
            "security": _ADMIN,
            "parameters": [_query("status", {"enum": list(STATUSES)}), _CURSOR,
                           _query("limit", _int(CAMPAIGNS_LIMIT_RANGE))],
            "responses": {"200": _json(_ref("AdminCampaignList"), "A page of campaigns"),
                          **_errors(400, 401, 503)},
        },
    },
    "/v1/admin/campaigns/{campaign_id}/end": {"post": {
        **_admin_action("End the campaign now (409 when it has ended already)"),
        "responses": {"200": _json(_ref("Campaign"), "The campaign, ended"),
                      **_errors(400, 401, 404, 409, 503)}}},
    "/v1/admin/campaigns/{campaign_id}/grants": {
        "post": {"summary": "Grant the campaign's coupons to up to 10,000 users (idempotent "
                            "per grant_id and user; also for server-to-server triggers)",
                 "security": _ADMIN, "parameters": [_CAMPAIGN_ID_PARAM],
                 "requestBody": _body("GrantCreate"),
                 "responses": {"202": _json(_ref("Grant"), "Queued; its state so far"),
                               **_errors(400, 401, 404, 408, 409, 413, 415, 503)}},
    },
    "/v1/admin/campaigns/{campaign_id}/grants/{grant_id}": {
        "get": {"summary": "A grant's state, totals, outcomes by reason and users, paged",
                "security": _ADMIN,
                "parameters": [_CAMPAIGN_ID_PARAM,
                               {"name": "grant_id", "in": "path", "required": True,
                                "schema": _ID},
                               _query("cursor", {"type": "string", "pattern": "^[0-9]{1,9}$"}),
                               _query("limit", _int(GRANT_USERS_LIMIT_RANGE))],
                "responses": {"200": _json(_ref("Grant"), "The grant"),
                              **_errors(400, 401, 404, 503)}},
    },
    "/v1/admin/campaigns/{campaign_id}/codes": {
        "post": {"summary": "Generate redemption codes in the background (progress below)",
                 "security": _ADMIN, "parameters": [_CAMPAIGN_ID_PARAM],
                 "requestBody": _body("CodeBatchCreate"),
                 "responses": {"202": _json(_ref("CodeBatch"), "The batch, generating"),
                               **_errors(400, 401, 404, 408, 409, 413, 415, 503)}},
        "get": {"summary": "The campaign's code batches and their progress", "security": _ADMIN,
                "parameters": [_CAMPAIGN_ID_PARAM],
                "responses": {"200": _json(_ref("CodeBatches"), "Batches"),
                              **_errors(400, 401, 404, 503)}},
    },
    "/v1/admin/campaigns/{campaign_id}/codes.csv": {
        "get": {"summary": "Download the generated codes: once (410 after)", "security": _ADMIN,
                "parameters": [_CAMPAIGN_ID_PARAM],
                "responses": {"200": {"description": "CSV: code,uses_per_code,batch_id",
                                      "content": {"text/csv": {"schema": {"type": "string"}}}},
                              **_errors(400, 401, 404, 410, 503)}},
    },
    "/v1/redemptions": {
        "post": {
            "summary": "Redeem a code: the campaign's coupons, by the same rules as a grab",
            "security": [{}, {"userToken": []}],
            "parameters": [*_USER, {"name": "Idempotency-Key", "in": "header",
                                    "required": False, "schema": _text(IDEMPOTENCY_KEY_RE)}],
            "requestBody": _body("Redemption"),
            "responses": {
                "201": _json(_ref("Claim"), "Granted"),
                "200": _json(_ref("Claim"), "Replay of the redemption made with this key"),
                **_errors(400, 401, 403, 404, 408, 409, 410, 413, 415, 429, 503),
            },
        }
    },
    "/v1/admin/coupons/{coupon_id}/redeem": {
        "post": {"summary": "Checkout: this order used the coupon (the same order again is a "
                            "replay; another order 409; expired 410; a discount above the "
                            "coupon's value or max_discount 400)",
                 "security": [{"checkoutToken": []}],
                 "parameters": [{"name": "coupon_id", "in": "path", "required": True,
                                 "schema": {"type": "string"}}],
                 "requestBody": _body("CouponRedeem"),
                 "responses": {"200": _json(_ref("CouponState"), "Used"),
                               **_errors(400, 401, 404, 408, 409, 410, 413, 415, 503)}},
    },
    "/v1/admin/coupons/{coupon_id}/release": {
        "post": {"summary": "Checkout: the order was cancelled; the coupon is unused again",
                 "security": [{"checkoutToken": []}],
                 "parameters": [{"name": "coupon_id", "in": "path", "required": True,
                                 "schema": {"type": "string"}}],
                 "requestBody": _body("CouponRelease"),
                 "responses": {"200": _json(_ref("CouponState"), "Unused again"),
                               **_errors(400, 401, 404, 408, 409, 413, 415, 503)}},
    },
    "/v1/me/coupons": {
        "get": {"summary": "The caller's coupons across campaigns, newest first (from the ledger)",
                "security": [{}, {"userToken": []}],
                "parameters": [*_USER, _query("status", {"enum": ["unused", "used", "expired"]}),
                               _CURSOR, _query("limit", _int((1, 100)))],
                "responses": {"200": _json(_ref("Wallet"), "A page of the wallet"),
                              **_errors(400, 401, 503)}},
    },
    "/v1/admin/templates": {
        "post": {"summary": "Create a template, or add a version to one (versions never change)",
                 "security": _ADMIN, "requestBody": _body("TemplateCreate"),
                 "responses": {"201": _json(_ref("Template"), "The template, newest first"),
                               **_errors(400, 401, 408, 409, 413, 415, 503)}},
        "get": {"summary": "Templates by id, paged", "security": _ADMIN,
                "parameters": [_CURSOR, _query("limit", _int(TEMPLATES_LIMIT_RANGE))],
                "responses": {"200": _json(_ref("TemplateList"), "A page of templates"),
                              **_errors(400, 401, 503)}},
    },
    "/v1/admin/templates/{template_id}": {
        "get": {"summary": "A template and all its versions", "security": _ADMIN,
                "parameters": [_TEMPLATE_ID_PARAM],
                "responses": {"200": _json(_ref("Template"), "The template"),
                              **_errors(400, 401, 404, 503)}},
    },
    "/v1/admin/blocklist": {
        "get": {"summary": "Blocked users by id, paged", "security": _ADMIN,
                "parameters": [_CURSOR, _query("limit", _int(BLOCKLIST_LIMIT_RANGE))],
                "responses": {"200": _json(_ref("Blocklist"), "A page of the blocklist"),
                              **_errors(400, 401, 503)}},
    },
    "/v1/admin/blocklist/{user_id}": {
        "put": {"summary": "Block a user from every issuing path", "security": _ADMIN,
                "parameters": [_USER_ID_PARAM], "requestBody": _body("BlockBody"),
                "responses": {"200": _json(_ref("Blocked"), "Blocked"),
                              **_errors(400, 401, 408, 413, 415, 503)}},
        "delete": {"summary": "Unblock a user", "security": _ADMIN,
                   "parameters": [_USER_ID_PARAM],
                   "responses": {"204": {"description": "Unblocked"},
                                 **_errors(400, 401, 404, 503)}},
    },
    "/v1/admin/campaigns/{campaign_id}/report": {
        "get": {
            "summary": "Claims, claim rate, use rate and discount cost, split by channel, "
                       "segment and source, with a timeline (from the ledger)",
            "security": _ADMIN,
            "parameters": [_CAMPAIGN_ID_PARAM,
                           _query("bucket", {"enum": ["minute", "hour", "day"]})],
            "responses": {"200": _json(_ref("CampaignReport"), "The campaign's report"),
                          **_errors(400, 401, 404, 503)},
        },
    },
    "/v1/admin/report": {
        "get": {
            "summary": "The same figures for every campaign's claims made in [from, to)",
            "security": _ADMIN,
            "parameters": [{**_query("from", _TIME), "required": True},
                           {**_query("to", _TIME), "required": True},
                           _query("bucket", {"enum": ["minute", "hour", "day"]})],
            "responses": {"200": _json(_ref("Report"), "The report"),
                          **_errors(400, 401, 503)},
        },
    },
    "/v1/admin/campaigns/{campaign_id}": {
        "get": {
            "summary": "A campaign with live stats",
            "security": _ADMIN,
            "parameters": [_CAMPAIGN_ID_PARAM],
            "responses": {"200": _json(_ref("AdminCampaign"), "The campaign and its stats"),
                          **_errors(400, 401, 404, 503)},
        },
        "patch": {
            "summary": "Change name, end, limits, channels, segments (coupons before the "
                       "first grant)",
            "security": _ADMIN,
            "parameters": [_CAMPAIGN_ID_PARAM],
            "requestBody": _body("CampaignPatch"),
            "responses": {"200": _json(_ref("Campaign"), "The campaign after the change"),
                          **_errors(400, 401, 404, 408, 409, 413, 415, 503)},
        },
    },
    "/v1/admin/campaigns/{campaign_id}/claims": {
        "get": {
            "summary": "The claim stream's records, a page at a time (after = last entry_id)",
            "security": _ADMIN,
            "parameters": [
                _CAMPAIGN_ID_PARAM,
                {"name": "after", "in": "query", "required": False,
                 "schema": _text(RECORDS_CURSOR_RE)},
                {"name": "limit", "in": "query", "required": False,
                 "schema": _int(RECORDS_LIMIT_RANGE)},
            ],
            "responses": {"200": _json(_ref("Records"), "Records in stream order"),
                          **_errors(400, 401, 404, 503)},
        }
    },
    "/v1/admin/campaigns/{campaign_id}/pause": {"post": _admin_action("Stop granting at once")},
    "/v1/admin/campaigns/{campaign_id}/resume": {"post": _admin_action("Restart granting")},
    "/v1/admin/campaigns/{campaign_id}/stock": {
        "post": _admin_action("Add (delta > 0) or withdraw (delta < 0) stock", "StockDelta")
    },
    "/healthz": {"get": {"summary": "Alive (touches nothing)",
                         "responses": {"200": _json(_ref("Health"), "Alive")}}},
    "/readyz": {"get": {"summary": "Store reachable and scripts loaded",
                        "responses": {"200": _json(_ref("Ready"), "Ready"), **_errors(503)}}},
    "/metrics": {"get": {"summary": "Prometheus metrics: claims by outcome, claim latency",
                         "responses": {"200": {"description": "Prometheus text format"}}}},
    "/openapi.json": {"get": {"summary": "This document",
                              "responses": {"200": {"description": "OpenAPI 3.1"}}}},
    "/": {"get": {"summary": "The coupon centre page (public listener; docs/pages.md)",
                  "responses": {"200": {"description": "HTML"},
                                **_errors(404)}}},  # 404 on the admin-only listener
    "/admin": {"get": {"summary": "The operator dashboard page (admin listener; docs/pages.md)",
                       "responses": {"200": {"description": "HTML, not cached"},
                                     **_errors(404)}}},  # 404 on the public-only listener
    "/static/{name}": {"get": {
        "summary": "The pages' script and style files",
        "parameters": [{"name": "name", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {"200": {"description": "JavaScript or CSS"}, **_errors(404)}}},
}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "flashclaim", "version": __version__},
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "adminToken": {"type": "http", "scheme": "bearer"},
                "checkoutToken": {"type": "http", "scheme": "bearer",
                                  "description": "FLASHCLAIM_CHECKOUT_TOKEN"},
                "userToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                              "description": "jwt identity mode: sub is the user id"},
            },
        },
    }
