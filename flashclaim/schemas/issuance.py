"""Issuing beyond the grab: coupon templates, operator grants, redemption codes, the
blocklist. Their bodies, answers and bounds (the store imports the bounds from here)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from flashclaim.errors import invalid_request
from flashclaim.schemas.base import (
    UNIQUE,
    UNSET,
    Answer,
    Body,
    Channel,
    Id,
    Tag,
    Time,
    TimeText,
    UserId,
    decode,
    distinct,
    printable,
)
from flashclaim.schemas.campaigns import Name, coupon_of
from flashclaim.validation import MAX_TAGS

MAX_USERS_PER_CALL = 10_000
MAX_CODES_PER_CAMPAIGN = 1_000_000
COUNT_RANGE = (1, MAX_CODES_PER_CAMPAIGN)
USES_RANGE = (1, 1000)
REASON_MAX_LEN = 500
CODE_MAX_LEN = 64  # typed codes carry spaces or dashes; longer is no code

Count = Annotated[int, msgspec.Meta(ge=0)]
Tags = Annotated[list[Tag], msgspec.Meta(max_length=MAX_TAGS, extra_json_schema=UNIQUE)]
CodeCount = Annotated[int, msgspec.Meta(ge=COUNT_RANGE[0], le=COUNT_RANGE[1])]
CodeUses = Annotated[int, msgspec.Meta(ge=USES_RANGE[0], le=USES_RANGE[1])]
CouponBody = Annotated[dict[str, Any], msgspec.Meta(
    extra_json_schema={"$ref": "#/components/schemas/AnyCoupon"})]


# ---- templates ------------------------------------------------------------------------


class TemplateCreate(Body, kw_only=True):
    """POST /v1/admin/templates: a new template, or a new version of one."""

    id: Id | msgspec.UnsetType = UNSET
    name: Name
    coupon: CouponBody


def template_version(body: object) -> tuple[str | None, dict[str, Any]]:
    """(id or None for a new one, the version to store) of a template body; the coupon is
    validated as a campaign's is, and stored as sent."""
    t = decode(body, TemplateCreate)
    coupon_of(t.coupon, "coupon")
    return (t.id or None), {"name": printable(t.name, "name"), "coupon": t.coupon}


class TemplateVersion(Answer, kw_only=True):
    id: Id
    version: Annotated[int, msgspec.Meta(ge=1)]
    name: str
    coupon: CouponBody
    created_at: TimeText


class Template(TemplateVersion, kw_only=True):
    """A template: its newest version, and every version."""

    versions: list[TemplateVersion]


class TemplateList(Answer, kw_only=True):
    templates: list[TemplateVersion]
    next: str | None


# ---- operator grants ------------------------------------------------------------------


class GrantUserBody(Body, kw_only=True):
    user_id: UserId
    tags: Tags = msgspec.field(default_factory=list)
    value: Annotated[int, msgspec.Meta(
        ge=1, description="a personal value (minor units) for the campaign's cash coupon "
                          "with `personal` bounds, within them")] | None = None


class GrantCreate(Body, kw_only=True):
    """POST /v1/admin/campaigns/{id}/grants: idempotent per grant_id and user."""

    grant_id: Id
    users: Annotated[list[UserId | GrantUserBody], msgspec.Meta(
        min_length=1, max_length=MAX_USERS_PER_CALL)]
    at: Time | None = None


def grant_body(body: object) -> GrantCreate:
    g = decode(body, GrantCreate)
    for i, u in enumerate(g.users):
        if isinstance(u, GrantUserBody):
            distinct(u.tags, f"users[{i}].tags")
    return g


class GrantUserOutcome(Answer, kw_only=True):
    user_id: str
    outcome: str
    claim_id: str = UNSET


class Grant(Answer, kw_only=True):
    grant_id: Id
    campaign_id: Id
    state: Annotated[str, msgspec.Meta(
        extra_json_schema={"enum": ["scheduled", "running", "done"]})]
    at: TimeText
    created_at: TimeText
    total: Count
    processed: Count
    outcomes: dict[str, int]
    added: Annotated[int, msgspec.Meta(
        ge=0, description="(a submission's answer) users this call added")] = UNSET
    already_in_grant: Annotated[int, msgspec.Meta(
        ge=0, description="(a submission's answer) users of this call the grant held "
                          "already: they keep the tags of their first submission")] = UNSET
    users: list[GrantUserOutcome] = UNSET
    next: str | None = UNSET


# ---- redemption codes -----------------------------------------------------------------


class CodeBatchCreate(Body, kw_only=True):
    """POST /v1/admin/campaigns/{id}/codes."""

    count: CodeCount
    uses_per_code: CodeUses = 1
    uses_per_user: Annotated[int, msgspec.Meta(
        ge=USES_RANGE[0], le=USES_RANGE[1],
        description="how often one user may redeem one code (default 1; at most "
                    "uses_per_code)")] = 1


def code_batch(body: object) -> CodeBatchCreate:
    batch = decode(body, CodeBatchCreate)
    if batch.uses_per_user > batch.uses_per_code:
        raise invalid_request(f"uses_per_user must be an integer from 1 to "
                              f"{batch.uses_per_code} (uses_per_code).")
    return batch


class CodeBatch(Answer, kw_only=True):
    batch_id: str
    campaign_id: Id
    state: Annotated[str, msgspec.Meta(
        extra_json_schema={"enum": ["generating", "ready", "exported"]})]
    count: int
    generated: int
    uses_per_code: int
    uses_per_user: int = UNSET
    created_at: TimeText


class CodeBatches(Answer, kw_only=True):
    batches: list[CodeBatch]


class Redemption(Body, kw_only=True):
    """POST /v1/redemptions: a code, as the user typed it."""

    code: Annotated[str, msgspec.Meta(min_length=1, max_length=CODE_MAX_LEN)]
    channel: Channel | None = None


def redemption(body: object) -> Redemption:
    r = decode(body, Redemption)
    printable(r.code, "code")
    return r


# ---- the blocklist --------------------------------------------------------------------


class BlockBody(Body, kw_only=True):
    """PUT /v1/admin/blocklist/{user_id}."""

    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=REASON_MAX_LEN)]


def block_reason(body: object) -> str:
    return printable(decode(body, BlockBody).reason, "reason")


class Blocked(Answer, kw_only=True):
    user_id: str
    reason: str
    blocked_at: TimeText


class BlocklistPage(Answer, kw_only=True):
    blocked: list[Blocked]
    next: str | None
