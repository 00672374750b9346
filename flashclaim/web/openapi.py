"""The OpenAPI 3.1 description of every route (tests keep it true to the app).

The routes are listed here; every body they take or answer is a type in flashclaim/schemas,
whose component is generated from it (no shape is written twice)."""

from __future__ import annotations

import re
from typing import Any, cast

import msgspec

from flashclaim import __version__
from flashclaim.campaigns import STATUSES
from flashclaim.coupons import ORDER_ID_RE
from flashclaim.ledger.wallet import WALLET_STATUSES
from flashclaim.risk.alert_store import ALERTS_LIMIT_RANGE
from flashclaim.schemas.after import (
    CampaignReport,
    CouponRedeem,
    CouponRelease,
    CouponState,
    Report,
    Uplift,
    Wallet,
)
from flashclaim.schemas.audit import AuditPage
from flashclaim.schemas.base import whole
from flashclaim.schemas.campaigns import (
    AdminCampaign,
    AdminCampaignList,
    AnyCoupon,
    BudgetTopUp,
    Campaign,
    CampaignCreate,
    CampaignList,
    CampaignPatch,
    StockDelta,
    TemplateUse,
)
from flashclaim.schemas.cap_groups import CAP_GROUP_RE, CapGroup, CapGroupList, CapGroupPut
from flashclaim.schemas.checkout import (
    MyQuoteBody,
    OrderAnswer,
    OrderBody,
    QuoteAnswer,
    QuoteBody,
)
from flashclaim.schemas.claims import Claim, ClaimBody, Error, Health, Ready, Records
from flashclaim.schemas.fair import ChallengeAnswer, EntriesPage, EntryAnswer
from flashclaim.schemas.issuance import (
    BlockBody,
    Blocked,
    BlocklistPage,
    CodeBatch,
    CodeBatchCreate,
    CodeBatches,
    Grant,
    GrantCreate,
    Redemption,
    Template,
    TemplateCreate,
    TemplateList,
)
from flashclaim.schemas.risk import AlertList, AlertRule, AlertRules, RuleChange
from flashclaim.schemas.tokens import Token, TokenCreate, TokenList, WhoAmI
from flashclaim.schemas.triggers import (
    EventBody,
    EventOutcome,
    Rule,
    RuleBody,
    RuleList,
    Schedule,
    ScheduleBody,
    ScheduleList,
)
from flashclaim.schemas.webhooks import (
    Deliveries,
    ReplayBody,
    Replayed,
    Webhook,
    WebhookCreate,
    WebhookList,
)
from flashclaim.store.blocklist import BLOCKLIST_LIMIT_RANGE
from flashclaim.store.campaign_store import CAMPAIGNS_LIMIT_RANGE, RECORDS_LIMIT_RANGE
from flashclaim.store.entry_store import ENTRIES_LIMIT_RANGE
from flashclaim.store.grant_store import GRANT_USERS_LIMIT_RANGE
from flashclaim.store.templates import TEMPLATES_LIMIT_RANGE
from flashclaim.stream import RECORDS_CURSOR_RE
from flashclaim.validation import CAMPAIGN_ID_RE, CHANNEL_RE, IDEMPOTENCY_KEY_RE, USER_ID_RE


def _ecma(pattern: str) -> str:
    """A whole-string pattern (`\\A(?:…)\\Z`, what msgspec and the service match) as JSON
    Schema states it: ECMA-262, where `^…$` is the whole input."""
    if pattern.startswith("\\A") and pattern.endswith("\\Z"):
        return f"^{pattern[2:-2]}$"
    return pattern


def _pattern(rx: re.Pattern[str]) -> str:
    """A validator's regex as a JSON Schema pattern, stated as every schema's is (`_ecma`);
    the service itself matches it whole."""
    return _ecma(whole(rx))


def _int(bounds: tuple[int, int]) -> dict[str, Any]:
    return {"type": "integer", "minimum": bounds[0], "maximum": bounds[1]}


def _text(rx: re.Pattern[str]) -> dict[str, Any]:
    return {"type": "string", "pattern": _pattern(rx)}


_ID = _text(CAMPAIGN_ID_RE)
_TIME = {"type": "string", "format": "date-time"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): _json(_ref("Error"), "Error") for s in statuses}


_CAMPAIGN_ID_PARAM = {"name": "campaign_id", "in": "path", "required": True, "schema": _ID}
_USER = [
    {"name": "X-User-Id", "in": "header", "required": False,
     "description": "The user, in header identity mode (set by the authenticating gateway).",
     "schema": _text(USER_ID_RE)},
    {"name": "X-User-Tags", "in": "header", "required": False,
     "description": "Comma-separated tags, in header identity mode.",
     "schema": {"type": "string"}},
    {"name": "X-Device-Id", "in": "header", "required": False,
     "description": "The device, in header identity mode (a campaign's per_device_limit "
                    "counts the accounts of one device).",
     "schema": _text(USER_ID_RE)},
]
_ADMIN: list[dict[str, list[str]]] = [{"adminToken": []}]


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}


_CURSOR = _query("cursor", {"type": "string"})
_TEMPLATE_ID_PARAM = {"name": "template_id", "in": "path", "required": True, "schema": _ID}
_WEBHOOK_ID_PARAM = {"name": "webhook_id", "in": "path", "required": True,
                     "schema": {"type": "string"}}
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


_MARGIN = _query("margin", {"type": "string", "pattern": "^(?:0|1)(?:\\.[0-9]{1,6})?$",
                            "description": "margin rate, 0 to 1: shows roi"})

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
    "/v1/campaigns/{campaign_id}/challenge": {
        "get": {
            "summary": "A proof-of-work challenge for this user and campaign (409 when the "
                       "campaign asks for none)",
            "security": [{}, {"userToken": []}],
            "parameters": [_CAMPAIGN_ID_PARAM, *_USER],
            "responses": {"200": _json(_ref("ChallengeAnswer"), "The challenge"),
                          **_errors(400, 401, 404, 409, 503)},
        }
    },
    "/v1/campaigns/{campaign_id}/entries": {
        "post": {
            "summary": "Enter a drawn campaign (by a claim's rules; idempotent)",
            "security": [{}, {"userToken": []}],
            "parameters": [_CAMPAIGN_ID_PARAM, *_USER],
            "requestBody": {"required": False,
                            "content": {"application/json": {"schema": _ref("ClaimBody")}}},
            "responses": {
                "201": _json(_ref("EntryAnswer"), "Entered"),
                "200": _json(_ref("EntryAnswer"), "Entered before"),
                **_errors(400, 401, 403, 404, 408, 409, 410, 413, 415, 429, 503),
            },
        }
    },
    "/v1/campaigns/{campaign_id}/entries/me": {
        "get": {
            "summary": "The caller's entry into a drawn campaign, and whether it won",
            "security": [{}, {"userToken": []}],
            "parameters": [_CAMPAIGN_ID_PARAM, *_USER],
            "responses": {"200": _json(_ref("EntryAnswer"), "The entry"),
                          **_errors(400, 401, 404, 409, 503)},
        }
    },
    "/v1/admin/campaigns/{campaign_id}/entries": {
        "get": {
            "summary": "A drawn campaign's entries, a page at a time (recompute the draw "
                       "from them and the published seed)",
            "security": _ADMIN,
            "parameters": [_CAMPAIGN_ID_PARAM, _CURSOR,
                           _query("limit", _int(ENTRIES_LIMIT_RANGE))],
            "responses": {"200": _json(_ref("EntriesPage"), "Entries"),
                          **_errors(400, 401, 404, 503)},
        }
    },
    "/v1/events": {
        "post": {"summary": "An event from another system (signup, order_paid, review, share, "
                            "referral, active, or a custom type): the rules it matched grant "
                            "(202); an event_id received before answers its first outcome (200)",
                 "security": [{"eventsToken": []}], "requestBody": _body("EventBody"),
                 "responses": {"202": _json(_ref("EventOutcome"), "Received"),
                               "200": _json(_ref("EventOutcome"), "Received before"),
                               **_errors(400, 401, 404, 408, 409, 413, 415, 503)}},
    },
    "/v1/admin/rules": {
        "post": {"summary": "A rule that grants campaigns on an event", "security": _ADMIN,
                 "requestBody": _body("RuleBody"),
                 "responses": {"201": _json(_ref("Rule"), "Created"),
                               **_errors(400, 401, 404, 408, 409, 413, 415, 503)}},
        "get": {"summary": "The rules, with the grants each made", "security": _ADMIN,
                "responses": {"200": _json(_ref("RuleList"), "Rules"), **_errors(401, 503)}},
    },
    "/v1/admin/rules/{rule_id}": {
        "delete": {"summary": "Delete a rule (its grants stay)", "security": _ADMIN,
                   "parameters": [{"name": "rule_id", "in": "path", "required": True,
                                   "schema": {"type": "string"}}],
                   "responses": {"204": {"description": "Deleted"}, **_errors(401, 404, 503)}},
    },
    "/v1/admin/schedules": {
        "post": {"summary": "A recurring grant of a campaign to a segment, in the campaign's "
                            "time zone", "security": _ADMIN,
                 "requestBody": _body("ScheduleBody"),
                 "responses": {"201": _json(_ref("Schedule"), "Created"),
                               **_errors(400, 401, 404, 408, 409, 413, 415, 503)}},
        "get": {"summary": "The schedules, their last and next runs", "security": _ADMIN,
                "responses": {"200": _json(_ref("ScheduleList"), "Schedules"),
                              **_errors(401, 503)}},
    },
    "/v1/admin/schedules/{schedule_id}": {
        "delete": {"summary": "Delete a schedule (its past grants stay)", "security": _ADMIN,
                   "parameters": [{"name": "schedule_id", "in": "path", "required": True,
                                   "schema": {"type": "string"}}],
                   "responses": {"204": {"description": "Deleted"}, **_errors(401, 404, 503)}},
    },
    "/v1/admin/campaigns/{campaign_id}/budget": {
        "post": {"summary": "Top up the budget (a campaign made with one); 409 no_budget",
                 "security": _ADMIN, "parameters": [_CAMPAIGN_ID_PARAM],
                 "requestBody": _body("BudgetTopUp"),
                 "responses": {"200": _json(_ref("AdminCampaign"), "The campaign after it"),
                               **_errors(400, 401, 404, 408, 409, 413, 415, 503)}},
    },
    "/v1/admin/audit": {
        "get": {"summary": "Every write through the admin API and the CLI: who, what, the "
                           "result, when; newest first", "security": _ADMIN,
                "parameters": [_query("campaign", _ID), _query("actor", {"type": "string"}),
                               _query("from", _TIME), _query("to", _TIME), _CURSOR,
                               _query("limit", _int((1, 500)))],
                "responses": {"200": _json(_ref("AuditPage"), "Entries"),
                              **_errors(400, 401, 503)}},
    },
    "/v1/admin/tokens": {
        "post": {"summary": "A named token with a role (admin only; its value answered once)",
                 "security": _ADMIN, "requestBody": _body("TokenCreate"),
                 "responses": {"201": _json(_ref("Token"), "Created"),
                               **_errors(400, 401, 403, 408, 409, 413, 415, 503)}},
        "get": {"summary": "The named tokens and their roles (admin only)", "security": _ADMIN,
                "responses": {"200": _json(_ref("TokenList"), "Tokens"),
                              **_errors(401, 403, 503)}},
    },
    "/v1/admin/tokens/{name}": {
        "delete": {"summary": "Revoke a token (every service refuses it within a second)",
                   "security": _ADMIN,
                   "parameters": [{"name": "name", "in": "path", "required": True,
                                   "schema": {"type": "string"}}],
                   "responses": {"204": {"description": "Revoked"},
                                 **_errors(401, 403, 404, 503)}},
    },
    "/v1/admin/campaigns/{campaign_id}/uplift": {
        "get": {"summary": "A holdout campaign's treatment against its control group: users, "
                           "buyers, orders, GMV, discount cost and profit at a margin; the "
                           "uplift per treated user with its 95 % interval",
                "security": _ADMIN,
                "parameters": [_CAMPAIGN_ID_PARAM, _query("from", _TIME), _query("to", _TIME),
                               _query("margin", {"type": "number", "minimum": 0,
                                                 "maximum": 1})],
                "responses": {"200": _json(_ref("Uplift"), "The groups compared"),
                              **_errors(400, 401, 404, 409, 503)}},
    },
    "/v1/admin/cap-groups": {
        "get": {"summary": "The cap groups: caps on a user's coupons across campaigns",
                "security": _ADMIN,
                "responses": {"200": _json(_ref("CapGroupList"), "Cap groups"),
                              **_errors(401, 503)}},
    },
    "/v1/admin/cap-groups/{name}": {
        "put": {"summary": "Set a cap group (admin only): most unused coupons, most grants "
                           "a day, over the campaigns that name it",
                "security": _ADMIN,
                "parameters": [{"name": "name", "in": "path", "required": True,
                                "schema": _text(CAP_GROUP_RE)}],
                "requestBody": _body("CapGroupPut"),
                "responses": {"200": _json(_ref("CapGroup"), "Replaced"),
                              "201": _json(_ref("CapGroup"), "Created"),
                              **_errors(400, 401, 403, 408, 413, 415, 503)}},
        "delete": {"summary": "Remove a cap group (its campaigns are capped no more)",
                   "security": _ADMIN,
                   "parameters": [{"name": "name", "in": "path", "required": True,
                                   "schema": _text(CAP_GROUP_RE)}],
                   "responses": {"204": {"description": "Removed"},
                                 **_errors(400, 401, 403, 404, 503)}},
    },
    "/v1/admin/whoami": {
        "get": {"summary": "The caller's token name and role", "security": _ADMIN,
                "responses": {"200": _json(_ref("WhoAmI"), "Who"), **_errors(401, 503)}},
    },
    "/v1/admin/webhooks": {
        "post": {"summary": "Create a webhook endpoint (its secret is in this answer only)",
                 "security": _ADMIN, "requestBody": _body("WebhookCreate"),
                 "responses": {"201": _json(_ref("Webhook"), "Created"),
                               **_errors(400, 401, 408, 413, 415, 503)}},
        "get": {"summary": "The webhook endpoints", "security": _ADMIN,
                "responses": {"200": _json(_ref("WebhookList"), "Endpoints"),
                              **_errors(401, 503)}},
    },
    "/v1/admin/webhooks/{webhook_id}": {
        "delete": {"summary": "Delete an endpoint, its waiting events and its log",
                   "security": _ADMIN, "parameters": [_WEBHOOK_ID_PARAM],
                   "responses": {"204": {"description": "Deleted"}, **_errors(401, 404, 503)}},
    },
    "/v1/admin/webhooks/{webhook_id}/deliveries": {
        "get": {"summary": "An endpoint's delivery attempts (newest first), waiting and dead "
                           "events", "security": _ADMIN,
                "parameters": [_WEBHOOK_ID_PARAM, _query("limit", _int((1, 1000)))],
                "responses": {"200": _json(_ref("Deliveries"), "Deliveries"),
                              **_errors(400, 401, 404, 503)}},
    },
    "/v1/admin/webhooks/{webhook_id}/replay": {
        "post": {"summary": "Queue again one event (by id) or those of a time range",
                 "security": _ADMIN, "parameters": [_WEBHOOK_ID_PARAM],
                 "requestBody": _body("ReplayBody"),
                 "responses": {"202": _json(_ref("Replayed"), "Queued"),
                               **_errors(400, 401, 404, 408, 413, 415, 503)}},
    },
    "/v1/admin/alerts": {
        "get": {"summary": "Risk alerts, newest first, with their evidence; counts per rule",
                "security": _ADMIN,
                "parameters": [_query("limit", _int(ALERTS_LIMIT_RANGE))],
                "responses": {"200": _json(_ref("AlertList"), "Alerts"),
                              **_errors(400, 401, 503)}},
    },
    "/v1/admin/alert-rules": {
        "get": {"summary": "The alert rules: thresholds, windows, block actions",
                "security": _ADMIN,
                "responses": {"200": _json(_ref("AlertRules"), "Rules"), **_errors(401, 503)}},
    },
    "/v1/admin/alert-rules/{rule}": {
        "put": {"summary": "Change a rule's threshold, window or block action",
                "security": _ADMIN,
                "parameters": [{"name": "rule", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                "requestBody": _body("RuleChange"),
                "responses": {"200": _json(_ref("AlertRule"), "The rule after the change"),
                              **_errors(400, 401, 404, 408, 413, 415, 503)}},
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
    "/v1/checkout/quote": {
        "post": {"summary": "Checkout: which of a user's coupons apply to this cart, why not the "
                            "others, for how much, and the best combination (locks nothing)",
                 "security": [{"checkoutToken": []}], "requestBody": _body("QuoteBody"),
                 "responses": {"200": _json(_ref("QuoteAnswer"), "The quote"),
                               **_errors(400, 401, 408, 413, 415, 503)}},
    },
    "/v1/me/quote": {
        "post": {"summary": "The caller's own quote (identity as for claims; locks nothing)",
                 "security": [{}, {"userToken": []}], "parameters": [*_USER],
                 "requestBody": _body("MyQuoteBody"),
                 "responses": {"200": _json(_ref("QuoteAnswer"), "The quote"),
                               **_errors(400, 401, 408, 413, 415, 503)}},
    },
    "/v1/checkout/orders": {
        "post": {"summary": "Checkout: quote the coupons again and lock them all for the order, "
                            "or none (409 with each coupon's reason); the same order again is a "
                            "replay (200)",
                 "security": [{"checkoutToken": []}], "requestBody": _body("OrderBody"),
                 "responses": {"201": _json(_ref("OrderAnswer"), "Locked"),
                               "200": _json(_ref("OrderAnswer"), "The same order, as it is now"),
                               **_errors(400, 401, 408, 409, 413, 415, 503)}},
    },
    **{f"/v1/checkout/orders/{{order_id}}/{action}": {
        "post": {"summary": summary, "security": [{"checkoutToken": []}],
                 "parameters": [{"name": "order_id", "in": "path", "required": True,
                                 "schema": _text(ORDER_ID_RE)}],
                 "responses": {"200": _json(_ref("OrderAnswer"), "The order now"),
                               **_errors(400, 401, 404, 409, 503)}}}
       for action, summary in (
           ("confirm", "Checkout: the order is paid; its coupons are used (409 order_expired "
                       "after the hold, order_cancelled after a cancel)"),
           ("cancel", "Checkout: the order is cancelled; its coupons are unused again"),
           ("refund", "Checkout: the paid order is refunded; its coupons are unused again if "
                      "still valid, else refunded"))},
    "/v1/me/coupons": {
        "get": {"summary": "The caller's coupons across campaigns, newest first (from the ledger)",
                "security": [{}, {"userToken": []}],
                "parameters": [*_USER, _query("status", {"enum": list(WALLET_STATUSES)}),
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
                "responses": {"200": _json(_ref("BlocklistPage"), "A page of the blocklist"),
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
            "summary": "Claims, claim rate, use rate, discount cost, orders, GMV and (with "
                       "?margin=) ROI, split by channel, segment and source, with a timeline "
                       "(from the ledger)",
            "security": _ADMIN,
            "parameters": [_CAMPAIGN_ID_PARAM,
                           _query("bucket", {"enum": ["minute", "hour", "day"]}), _MARGIN],
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
                           _query("bucket", {"enum": ["minute", "hour", "day"]}), _MARGIN],
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


# Every shape a route names: its component comes from the type (flashclaim/schemas).
_SHAPES: tuple[Any, ...] = (
    Error, Health, Ready,
    CampaignCreate, CampaignPatch, StockDelta, Campaign, AdminCampaign, AdminCampaignList,
    CampaignList, ClaimBody, Claim, Records,
    TemplateCreate, Template, TemplateList, GrantCreate, Grant, CodeBatchCreate, CodeBatch,
    CodeBatches, Redemption, BlockBody, Blocked, BlocklistPage,
    CouponRedeem, CouponRelease, CouponState, Wallet, CampaignReport, Report,
    TemplateUse, QuoteBody, MyQuoteBody, QuoteAnswer, OrderBody, OrderAnswer,
    ChallengeAnswer, EntryAnswer, EntriesPage, AlertList, AlertRules, AlertRule, RuleChange,
    WebhookCreate, Webhook, WebhookList, Deliveries, ReplayBody, Replayed,
    EventBody, EventOutcome, RuleBody, Rule, RuleList, ScheduleBody, Schedule, ScheduleList,
    TokenCreate, Token, TokenList, WhoAmI, AuditPage, BudgetTopUp,
    CapGroupPut, CapGroup, CapGroupList, Uplift,
)


def _components() -> dict[str, Any]:
    (any_coupon, *_), schemas = msgspec.json.schema_components(
        (AnyCoupon, *_SHAPES), ref_template="#/components/schemas/{name}")
    schemas["AnyCoupon"] = any_coupon
    return cast(dict[str, Any], _ecma_patterns(schemas))


def _ecma_patterns(node: Any) -> Any:
    """The schemas' whole-string patterns (`\\A(?:…)\\Z`, what msgspec matches) as JSON
    Schema states them: ECMA-262, where `^…$` is the whole input."""
    if isinstance(node, dict):
        return {k: (_ecma(v) if k == "pattern" and isinstance(v, str) else _ecma_patterns(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_ecma_patterns(v) for v in node]
    return node


SCHEMAS = _components()


def _with_roles(paths: dict[str, Any]) -> dict[str, Any]:
    """Every route behind a token also answers 403: a known token without the role the
    route needs (flashclaim/roles.py)."""
    out: dict[str, Any] = {}
    for path, operations in paths.items():
        out[path] = {}
        for method, op in operations.items():
            if op.get("security") and op["security"] != [{}, {"userToken": []}]:
                op = {**op, "responses": {**_errors(403), **op["responses"]}}
            out[path][method] = op
    return out


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "flashclaim", "version": __version__},
        "paths": _with_roles(PATHS),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "adminToken": {"type": "http", "scheme": "bearer",
                               "description": "the bootstrap admin token, or a named token "
                                              "whose role the route needs"},
                "checkoutToken": {"type": "http", "scheme": "bearer",
                                  "description": "FLASHCLAIM_CHECKOUT_TOKEN"},
                "eventsToken": {"type": "http", "scheme": "bearer",
                                "description": "FLASHCLAIM_EVENTS_TOKEN"},
                "userToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                              "description": "jwt identity mode: sub is the user id"},
            },
        },
    }
