"""Campaigns and their coupons: the create and patch bodies, and a campaign as answered."""

from __future__ import annotations

import re
import secrets
from dataclasses import replace
from typing import Annotated, Any, Literal

import msgspec
import orjson

from flashclaim.campaigns import (
    COUPONS_RANGE,
    DAILY_LIMIT_RANGE,
    DEFAULT_DIFFICULTY,
    DEFAULT_RATE_LIMIT,
    DEFAULT_VALIDITY_DAYS,
    DEFINED_TYPES,
    DIFFICULTY_RANGE,
    DRAW_STATES,
    MAX_BUCKETS,
    MAX_CHANNELS,
    MAX_MONEY,
    MAX_SCOPE_BYTES,
    MAX_SEGMENTS,
    NAME_MAX_LEN,
    PER_USER_LIMIT_RANGE,
    PERCENT_OFF_RANGE,
    RATE_MAX_RANGE,
    RATE_SECONDS_RANGE,
    STATUSES,
    STOCK_RANGE,
    TEMPLATE_VERSION_RANGE,
    VALIDITY_DAYS_RANGE,
    CampaignSpec,
    CampaignView,
    CouponDef,
    DrawSpec,
    DrawView,
    MissingDevice,
    TemplateLookup,
    unit_cost,
)
from flashclaim.campaigns import Validity as CouponValidity
from flashclaim.errors import ApiError, invalid_request
from flashclaim.schemas.base import (
    UNIQUE,
    UNSET,
    Answer,
    Body,
    Channel,
    Currency,
    Id,
    Tag,
    Time,
    TimeText,
    decode,
    distinct,
    epoch_ms,
    printable,
    whole,
)
from flashclaim.schemas.cap_groups import CapGroupName
from flashclaim.timefmt import to_rfc3339
from flashclaim.use_rules import DEFAULT_GROUP, MAX_RULE_IDS, SCOPE_LISTS, UseRules
from flashclaim.use_rules import Scope as RuleScope
from flashclaim.use_rules import Stacking as RuleStacking
from flashclaim.use_windows import MAX_SLOTS, UseWindows
from flashclaim.zones import DEFAULT_TIMEZONE, zone

Money = Annotated[int, msgspec.Meta(ge=0, le=MAX_MONEY, description="minor units (fen, cents)")]
PositiveMoney = Annotated[int, msgspec.Meta(ge=1, le=MAX_MONEY,
                                            description="minor units (fen, cents)")]
ValidityDays = Annotated[int, msgspec.Meta(ge=VALIDITY_DAYS_RANGE[0], le=VALIDITY_DAYS_RANGE[1])]
PercentOff = Annotated[int, msgspec.Meta(ge=PERCENT_OFF_RANGE[0], le=PERCENT_OFF_RANGE[1])]
TemplateVersionNo = Annotated[int, msgspec.Meta(ge=TEMPLATE_VERSION_RANGE[0],
                                                le=TEMPLATE_VERSION_RANGE[1])]
RateMax = Annotated[int, msgspec.Meta(ge=RATE_MAX_RANGE[0], le=RATE_MAX_RANGE[1])]
RatePerSeconds = Annotated[int, msgspec.Meta(ge=RATE_SECONDS_RANGE[0], le=RATE_SECONDS_RANGE[1])]
PerUserLimit = Annotated[int, msgspec.Meta(ge=PER_USER_LIMIT_RANGE[0], le=PER_USER_LIMIT_RANGE[1])]
DailyLimit = Annotated[int, msgspec.Meta(ge=DAILY_LIMIT_RANGE[0], le=DAILY_LIMIT_RANGE[1])]
Stock = Annotated[int, msgspec.Meta(ge=STOCK_RANGE[0], le=STOCK_RANGE[1])]
HourMinute = Annotated[str, msgspec.Meta(
    pattern=whole(re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00")))]
MAX_FACE_VALUES = 50  # a random coupon's distinct face values
Channels = Annotated[list[Channel], msgspec.Meta(max_length=MAX_CHANNELS,
                                                  extra_json_schema=UNIQUE)]
Segments = Annotated[list[Tag], msgspec.Meta(max_length=MAX_SEGMENTS, extra_json_schema=UNIQUE)]
# A campaign's coupon: written out, or copied from a template (told apart by "template").
CouponOrTemplate = Annotated[dict[str, Any], msgspec.Meta(extra_json_schema={"oneOf": [
    {"$ref": "#/components/schemas/AnyCoupon"},
    {"$ref": "#/components/schemas/TemplateUse"}]})]
Coupons = Annotated[list[CouponOrTemplate], msgspec.Meta(
    min_length=COUPONS_RANGE[0], max_length=COUPONS_RANGE[1])]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX_LEN)]
Status = Annotated[str, msgspec.Meta(extra_json_schema={"enum": list(STATUSES)})]
# A category, sku, merchant or stacking group: any text but control characters (category
# names are often Chinese: 肉蛋水产).
RuleId = Annotated[str, msgspec.Meta(pattern=whole(re.compile(r"[^\x00-\x1f\x7f-\x9f]{1,64}")))]
RuleIds = Annotated[list[RuleId], msgspec.Meta(max_length=MAX_RULE_IDS,
                                                extra_json_schema=UNIQUE)]


class Scope(Body, kw_only=True):
    """The goods a coupon covers: an item is in scope when it meets every include list
    that is not empty (its sku, category or merchant is in it) and no exclude list.
    Empty include lists: everything. Only in-scope items count towards `min_spend` and
    take the discount."""

    categories: RuleIds = msgspec.field(default_factory=list)
    skus: RuleIds = msgspec.field(default_factory=list)
    merchants: RuleIds = msgspec.field(default_factory=list)
    exclude_skus: RuleIds = msgspec.field(default_factory=list)
    exclude_categories: RuleIds = msgspec.field(default_factory=list)


class Stacking(Body, kw_only=True):
    """At most one coupon of a `group` in one order; an `exclusive` coupon combines with
    nothing. Default: group "platform", not exclusive."""

    group: RuleId = DEFAULT_GROUP
    exclusive: bool = False


class Validity(Body, kw_only=True):
    """How long a granted coupon is valid: `days` from the grant, or a fixed window."""

    days: ValidityDays | None = None
    from_: Time | None = msgspec.field(default=None, name="from")
    until: Time | None = None


class UseWindow(Body, kw_only=True):
    """A slot of the week the coupon may be used in, in the campaign's time zone: `days`
    (mon..sun; absent: every day) from `from` to `to` (HH:MM, 24-hour; `to` may be 24:00)."""

    days: Annotated[list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]],
                    msgspec.Meta(min_length=1, max_length=7)] | None = None
    from_: HourMinute = msgspec.field(name="from")
    to: HourMinute


class Coupon(Body, tag_field="type", kw_only=True):
    """What one claim grants; `type` says which kind; how it may be used: `scope`,
    `use_channels` (where; absent or empty: anywhere), `stacking`, `use_windows` (when in
    the week; absent: at any hour of its validity)."""

    currency: Currency = "CNY"
    validity: Validity | None = None
    scope: Scope | None = None
    use_channels: Channels | None = None
    stacking: Stacking | None = None
    use_windows: Annotated[list[UseWindow], msgspec.Meta(min_length=1,
                                                         max_length=MAX_SLOTS)] | None = None


class PersonalValue(Body, kw_only=True):
    """The bounds of the value an operator grant may give each user (千人千券)."""

    min: PositiveMoney
    max: PositiveMoney


class CashCoupon(Coupon, tag="cash", kw_only=True):
    """A fixed amount off; with `personal`, each operator grant may give each user its own
    value within those bounds (`value` is the default: a grab, a grant without one)."""

    value: PositiveMoney
    personal: PersonalValue | None = None


class ThresholdCoupon(Coupon, tag="threshold", kw_only=True):
    """`value` off an order of at least `min_spend` (min_spend >= value)."""

    value: PositiveMoney
    min_spend: PositiveMoney


class DiscountCoupon(Coupon, tag="discount", kw_only=True):
    """`percent_off` off, at most `max_discount`, from `min_spend` on."""

    percent_off: PercentOff
    max_discount: PositiveMoney
    min_spend: Money = 0


class FaceValue(Body, kw_only=True):
    value: PositiveMoney
    count: Stock


class RandomCashCoupon(Coupon, tag="random_cash", kw_only=True):
    """A cash amount drawn at each claim from `values`, without replacement: the campaign's
    stock is exactly that multiset (its counts add up to the stock), so the total face value
    issued is known in advance. Granted as a `cash` coupon of the value drawn."""

    values: Annotated[list[FaceValue], msgspec.Meta(min_length=1, max_length=MAX_FACE_VALUES)]


class GiftCoupon(Coupon, tag="gift", kw_only=True):
    """A named item free: the cart must hold `sku`; one of it is free. Counted at its stated
    `cost` (what the item costs the business) in reports and budgets; `fulfilment` says
    whether it is delivered with the order or picked up in store."""

    sku: RuleId
    cost: PositiveMoney
    fulfilment: Literal["delivery", "pickup"] = "delivery"
    min_spend: Money = 0


class TradeUpCoupon(Coupon, tag="trade_up", kw_only=True):
    """"Spend X, buy this item for Z": once the in-scope amount (the item aside) reaches
    `min_spend`, one `sku` in the cart costs `price`."""

    sku: RuleId
    price: Money
    min_spend: PositiveMoney


AnyCoupon = (CashCoupon | ThresholdCoupon | DiscountCoupon | RandomCashCoupon | GiftCoupon
             | TradeUpCoupon)


class TemplateUse(Body, kw_only=True):
    """A coupon copied from a template: its latest version, or the one named."""

    template: Id
    version: TemplateVersionNo | None = None


class RateLimit(Body, kw_only=True):
    """Taps one user (and one address) may make per window."""

    max: RateMax
    per_seconds: RatePerSeconds


class Challenge(Body, kw_only=True):
    """Proof of work before a grab or an entry: SHA-256 of token:nonce with `difficulty`
    leading zero bits (the default: about a second on a phone, docs/fairness.md)."""

    difficulty: Annotated[int, msgspec.Meta(
        ge=DIFFICULTY_RANGE[0], le=DIFFICULTY_RANGE[1])] = DEFAULT_DIFFICULTY


class Holdout(Body, kw_only=True):
    """An A/B holdout: `percent` of users (by a stable hash of `salt` and the user id) form
    the control group, which is never granted, so the campaign's uplift can be measured."""

    percent: Annotated[int, msgspec.Meta(ge=1, le=50)]
    salt: Annotated[str, msgspec.Meta(pattern=whole(re.compile(r"[A-Za-z0-9_.:-]{1,64}")),
                                      description="default: the campaign id")] | None = None


class Admission(Body, kw_only=True):
    """A drawn campaign: entries from starts_at until `entries_until`, the stock drawn
    among them at `draw_at` (verifiably: docs/fairness.md)."""

    mode: Literal["draw"]
    entries_until: Time
    draw_at: Time


class Budget(Body, kw_only=True):
    """The face value a campaign's grants may commit in all (a pack: the sum of its
    coupons' values, a percentage coupon's max_discount)."""

    amount: PositiveMoney
    currency: Currency


class CampaignFields(Body, kw_only=True):
    """What a create and a patch share."""

    name: Name | msgspec.UnsetType = UNSET
    ends_at: Time | None = None
    per_user_limit: PerUserLimit = 1
    per_user_daily_limit: DailyLimit | None = None
    coupons: Coupons | msgspec.UnsetType = UNSET
    channels: Channels = msgspec.field(default_factory=list)
    segments: Segments = msgspec.field(default_factory=list)
    exclude_segments: Segments = msgspec.field(default_factory=list)
    rate_limit: RateLimit | None = None
    listed: Annotated[bool, msgspec.Meta(
        description="shown by GET /v1/campaigns (false: internal, claimable by id)")] = True
    per_device_limit: Annotated[int, msgspec.Meta(
        ge=PER_USER_LIMIT_RANGE[0], le=PER_USER_LIMIT_RANGE[1],
        description="grants (entries) of all accounts on one device")] | None = None
    missing_device: Annotated[MissingDevice, msgspec.Meta(
        description="with a per_device_limit, a request without a device id is refused "
                    "(default) or allowed")] = "refuse"
    challenge: Challenge | None = None


class CampaignCreate(CampaignFields, kw_only=True):
    """POST /v1/admin/campaigns. `stock` is required (null: unlimited)."""

    name: Name
    coupons: Coupons
    stock: Stock | None
    id: Id | msgspec.UnsetType = UNSET
    starts_at: Time | None = None
    timezone: Annotated[str, msgspec.Meta(
        min_length=1, max_length=64, description="IANA zone the daily limit counts days in"
    )] | None = None
    buckets: Annotated[int, msgspec.Meta(
        ge=1, le=MAX_BUCKETS, description="hash tags the stock is spread over (hot campaigns "
                                          "on Redis Cluster); fixed at creation")] = 1
    admission: Admission | None = None
    budget: Budget | None = None
    holdout: Holdout | None = None
    cap_group: Annotated[CapGroupName, msgspec.Meta(
        description="the cap group whose caps this campaign's grants count in (it must "
                    "exist); fixed at creation")] | None = None


class CampaignPatch(CampaignFields, kw_only=True):
    """PATCH /v1/admin/campaigns/{id}: any of these (coupons only before the first grant);
    the result is validated whole, as a create is."""


PATCHABLE = tuple(f.encode_name for f in msgspec.structs.fields(CampaignPatch))


# ---- answers -------------------------------------------------------------------------


class TemplateVersionRef(Answer, kw_only=True):
    id: Id
    version: int


class ShownCoupon(Answer, kw_only=True):
    """A campaign's coupon as shown: the input form, plus the template version it copies."""

    type: Annotated[str, msgspec.Meta(extra_json_schema={"enum": list(DEFINED_TYPES)})]
    currency: str
    validity: dict[str, Any]
    scope: dict[str, Any]
    use_channels: list[str] = UNSET
    stacking: dict[str, Any] = UNSET
    value: int = UNSET
    min_spend: int = UNSET
    percent_off: int = UNSET
    max_discount: int = UNSET
    values: list[FaceValue] = UNSET  # random_cash: the multiset its claims draw from
    personal: PersonalValue = UNSET  # a cash coupon's bounds for grants' personal values
    use_windows: list[dict[str, Any]] = UNSET  # the hours of the week it may be used in
    timezone: str = UNSET  # the windows' zone (the campaign's)
    sku: str = UNSET  # gift, trade_up: the item
    cost: int = UNSET  # gift: its stated cost
    fulfilment: str = UNSET  # gift: delivery or pickup
    price: int = UNSET  # trade_up: what the item costs with the coupon
    template: TemplateVersionRef = UNSET


class ShownHoldout(Answer, kw_only=True):
    percent: int
    salt: str


class ShownRateLimit(Answer, kw_only=True):
    max: int
    per_seconds: int


class ShownChallenge(Answer, kw_only=True):
    difficulty: int


class ShownDraw(Answer, kw_only=True):
    """A drawn campaign's draw: verifiable (docs/fairness.md). `seed_sha256` is published
    from the creation on, `seed` (hex) once the draw is done."""

    state: Annotated[str, msgspec.Meta(extra_json_schema={"enum": list(DRAW_STATES)})]
    entries_until: TimeText
    draw_at: TimeText
    seed_sha256: str
    seed: str | None
    entrants: Annotated[int, msgspec.Meta(ge=0)]
    winners: Annotated[int, msgspec.Meta(ge=0, description="granted by the draw")]


class Campaign(Answer, kw_only=True):
    id: Id
    name: str
    status: Status
    starts_at: TimeText
    ends_at: TimeText | None
    stock: Annotated[int, msgspec.Meta(ge=0)] | None
    remaining: Annotated[int, msgspec.Meta(ge=0)] | None
    per_user_limit: int
    per_user_daily_limit: int | None = UNSET
    timezone: str = UNSET
    coupons: list[ShownCoupon]
    channels: list[str]
    segments: list[str]
    exclude_segments: list[str] = UNSET
    rate_limit: ShownRateLimit
    buckets: Annotated[int, msgspec.Meta(ge=1)] = UNSET
    listed: bool = UNSET
    per_device_limit: int = UNSET
    missing_device: str = UNSET
    challenge: ShownChallenge = UNSET
    draw: ShownDraw = UNSET
    cap_group: str = UNSET
    holdout: ShownHoldout = UNSET
    granted: Annotated[int, msgspec.Meta(
        ge=0, description="(the admin listing) claims granted so far")] = UNSET
    created_at: TimeText = UNSET
    server_time: TimeText = UNSET
    claimed: Annotated[int, msgspec.Meta(
        ge=0, description="with an identity: the caller's grants")] = UNSET
    claimed_today: Annotated[int, msgspec.Meta(ge=0)] | None = msgspec.field(
        default=UNSET)
    can_claim: Annotated[bool, msgspec.Meta(
        description="with an identity: a grab now could be granted")] = UNSET
    refusal: Annotated[str, msgspec.Meta(
        description="with an identity: the error a grab now would get (not_started, ended, "
                    "paused, not_eligible, blocked, already_claimed, daily_limit, sold_out); "
                    "null when it could be granted")] | None = UNSET


def campaign_answer(view: CampaignView, now_ms: int) -> Campaign:
    """A campaign as every route shows it (the admin listing and a caller's standing add
    their fields to it)."""
    d = view.definition
    return Campaign(
        id=view.id, name=d["name"], status=view.status(now_ms),
        starts_at=to_rfc3339(view.starts_at),
        ends_at=None if view.ends_at is None else to_rfc3339(view.ends_at),
        stock=view.stock, remaining=view.remaining, per_user_limit=view.per_user_limit,
        per_user_daily_limit=view.per_user_daily_limit, timezone=view.timezone,
        coupons=msgspec.convert(d["coupons"], list[ShownCoupon]),
        channels=d["channels"], segments=d["segments"],
        exclude_segments=d.get("exclude_segments", []),
        rate_limit=ShownRateLimit(**d["rate_limit"]), buckets=view.buckets, listed=view.listed,
        per_device_limit=d.get("per_device_limit") or UNSET,
        missing_device=d["missing_device"] if d.get("per_device_limit") else UNSET,
        challenge=ShownChallenge(**d["challenge"]) if d.get("challenge") else UNSET,
        draw=UNSET if view.draw is None else shown_draw(view.draw),
        cap_group=d.get("cap_group") or UNSET,
        holdout=ShownHoldout(**d["holdout"]) if d.get("holdout") else UNSET,
    )


def shown_draw(draw: DrawView) -> ShownDraw:
    return ShownDraw(state=draw.state, entries_until=to_rfc3339(draw.entries_until),
                     draw_at=to_rfc3339(draw.draw_at), seed_sha256=draw.seed_sha256,
                     seed=draw.seed, entrants=draw.entrants, winners=draw.winners)


class BudgetFigures(Answer, kw_only=True):
    amount: int
    currency: str
    committed: Annotated[int, msgspec.Meta(ge=0, description="face value granted so far")]
    remaining: int


class CampaignStats(Answer, kw_only=True):
    granted: Annotated[int, msgspec.Meta(ge=0)]
    remaining: Annotated[int, msgspec.Meta(ge=0)] | None
    recorded: Annotated[int, msgspec.Meta(ge=0)]
    rejected: dict[str, int]
    budget: BudgetFigures = UNSET


class AdminCampaign(Campaign, kw_only=True):
    """GET /v1/admin/campaigns/{id}: the campaign and its live counters."""

    stats: CampaignStats


class AdminCampaignList(Answer, kw_only=True):
    campaigns: list[Campaign]
    next: str | None


class CampaignList(Answer, kw_only=True):
    campaigns: list[Campaign]
    server_time: TimeText = UNSET


class BudgetTopUp(Body, kw_only=True):
    """POST /v1/admin/campaigns/{id}/budget: raise the budget by `delta` (minor units)."""

    delta: PositiveMoney


class StockDelta(Body, kw_only=True):
    """POST /v1/admin/campaigns/{id}/stock: add (> 0) or withdraw (< 0); never 0."""

    delta: Annotated[int, msgspec.Meta(ge=-STOCK_RANGE[1], le=STOCK_RANGE[1],
                                       extra_json_schema={"not": {"const": 0}})]


# ---- the rules across fields, after decoding ------------------------------------------


def template_refs(body: object) -> set[tuple[str, int | None]]:
    """The templates a create or patch body names, to be looked up before it is decoded
    (malformed references are left for the decoding to refuse)."""
    coupons = body.get("coupons") if isinstance(body, dict) else None
    refs: set[tuple[str, int | None]] = set()
    for c in coupons[:COUPONS_RANGE[1]] if isinstance(coupons, list) else []:
        if isinstance(c, dict) and isinstance(c.get("template"), str):
            version = c.get("version")
            refs.add((c["template"], version if type(version) is int else None))
    return refs


def campaign_spec(body: object, now_ms: int, templates: TemplateLookup | None = None
                  ) -> CampaignSpec:
    """A create request, decoded and checked across its fields."""
    c = decode(body, CampaignCreate)
    name = printable(c.name, "name")
    if c.per_user_daily_limit is not None and c.per_user_daily_limit > c.per_user_limit:
        raise invalid_request("per_user_daily_limit must not exceed per_user_limit.")
    timezone = DEFAULT_TIMEZONE if c.timezone is None else c.timezone
    zone(timezone)
    starts_at = now_ms if c.starts_at is None else epoch_ms(c.starts_at, "starts_at")
    ends_at = None if c.ends_at is None else epoch_ms(c.ends_at, "ends_at")
    if ends_at is not None and ends_at <= starts_at:
        raise invalid_request("ends_at must be after starts_at.")
    coupons: list[CouponDef] = []
    coupon_inputs: list[Any] = []
    for i, raw in enumerate(c.coupons):
        coupon, pinned = _coupon_or_template(raw, f"coupons[{i}]", templates or {})
        if coupon.validity.until is not None and coupon.validity.until <= starts_at:
            raise invalid_request(f"coupons[{i}].validity.until must be after starts_at.")
        coupons.append(coupon)
        coupon_inputs.append(pinned)
    stock = _random_stock(c, coupons)
    coupons = [replace(coupon, rules=replace(coupon.rules, windows=replace(
        coupon.rules.windows, timezone=timezone))) if coupon.rules.windows else coupon
        for coupon in coupons]  # the windows are in the campaign's zone
    channels = distinct(c.channels, "channels")
    segments = distinct(c.segments, "segments")
    excluded = distinct(c.exclude_segments, "exclude_segments")
    if set(segments) & set(excluded):
        raise invalid_request("A segment cannot be both targeted and excluded.")
    rate_limit = dict(DEFAULT_RATE_LIMIT) if c.rate_limit is None else {
        "max": c.rate_limit.max, "per_seconds": c.rate_limit.per_seconds}
    campaign_id = c.id or secrets.token_hex(8)
    accepted: dict[str, Any] = {
        "id": campaign_id, "name": name, "stock": stock, "per_user_limit": c.per_user_limit,
        "per_user_daily_limit": c.per_user_daily_limit, "timezone": timezone,
        "starts_at": to_rfc3339(starts_at),
        "ends_at": None if ends_at is None else to_rfc3339(ends_at),
        "coupons": coupon_inputs, "channels": channels, "segments": segments,
        "exclude_segments": excluded, "rate_limit": rate_limit,
    }
    if c.buckets > 1:
        accepted["buckets"] = c.buckets
    if not c.listed:
        accepted["listed"] = False
    draw = _draw(c, starts_at, ends_at)
    budget = _budget(c, coupons)
    if budget is not None:
        accepted["budget"] = {"amount": budget, "currency": coupons[0].currency}
    if c.per_device_limit is not None:
        if c.buckets > 1:  # a device's accounts live in several buckets: no atomic cap
            raise invalid_request("per_device_limit cannot be used with buckets.")
        accepted["per_device_limit"] = c.per_device_limit
        accepted["missing_device"] = c.missing_device
    if c.challenge is not None:
        accepted["challenge"] = {"difficulty": c.challenge.difficulty}
    if c.holdout is not None:
        accepted["holdout"] = {"percent": c.holdout.percent,
                               "salt": c.holdout.salt or campaign_id}
    if c.cap_group is not None:
        if draw is not None:  # winners are granted by the draw, not by their own claims
            raise invalid_request("A drawn campaign cannot be in a cap group.")
        accepted["cap_group"] = c.cap_group
    if draw is not None:
        accepted["admission"] = {"mode": "draw", "entries_until": to_rfc3339(draw.entries_until),
                                 "draw_at": to_rfc3339(draw.draw_at)}
    return CampaignSpec(
        campaign_id, name, stock, c.per_user_limit, c.per_user_daily_limit, timezone,
        starts_at, ends_at, coupons, channels, segments, excluded, rate_limit, accepted,
        c.buckets, c.listed, per_device_limit=c.per_device_limit,
        device_required=c.missing_device == "refuse",
        difficulty=None if c.challenge is None else c.challenge.difficulty, draw=draw,
        budget=budget, cap_group=c.cap_group,
        holdout=None if c.holdout is None else (c.holdout.percent, c.holdout.salt or campaign_id),
    )


def _budget(c: CampaignCreate, coupons: list[CouponDef]) -> int | None:
    """The budget, checked: in the coupons' currency, room for one grant."""
    if c.budget is None:
        return None
    if any(coupon.currency != c.budget.currency for coupon in coupons):
        raise invalid_request("budget.currency must be the currency of every coupon.")
    if any(coupon.type == "trade_up" for coupon in coupons):
        raise invalid_request("A budget cannot be used with a trade_up coupon: what it takes "
                              "off is only known at checkout.")
    if any(coupon.personal is not None for coupon in coupons):
        raise invalid_request("A budget cannot be used with a personal value: a grant's cost "
                              "would only be known at the grant.")
    if c.budget.amount < unit_cost(coupons):
        raise invalid_request(f"budget.amount must cover one grant ({unit_cost(coupons)}).")
    return c.budget.amount


def _random_stock(c: CampaignCreate, coupons: list[CouponDef]) -> int | None:
    """The stock, checked against a random coupon's values: their counts are the stock
    (null takes it from them). One random coupon a pack; its cost is only known at the
    draw, so no budget. With buckets, each bucket holds part of the multiset and transfers
    move values with the units (bucket_give.lua)."""
    randoms = [coupon for coupon in coupons if coupon.values is not None]
    if not randoms:
        return c.stock
    if len(randoms) > 1:
        raise invalid_request("A pack holds at most one random_cash coupon.")
    assert randoms[0].values is not None
    total = sum(n for _, n in randoms[0].values)
    if c.stock is not None and c.stock != total:
        raise invalid_request(f"stock must be the random_cash counts' sum ({total}), or null.")
    if total > STOCK_RANGE[1]:
        raise invalid_request(f"The random_cash counts add up to more than {STOCK_RANGE[1]}.")
    if c.budget is not None:
        raise invalid_request("A random_cash campaign's stock fixes its cost: no budget.")
    return total


def _draw(c: CampaignCreate, starts_at: int, ends_at: int | None) -> DrawSpec | None:
    """A drawn campaign's times, checked: entries, then the draw, then (if any) the end."""
    if c.admission is None:
        return None
    entries_until = epoch_ms(c.admission.entries_until, "admission.entries_until")
    draw_at = epoch_ms(c.admission.draw_at, "admission.draw_at")
    if entries_until <= starts_at:
        raise invalid_request("admission.entries_until must be after starts_at.")
    if draw_at < entries_until:
        raise invalid_request("admission.draw_at must not be before entries_until.")
    if ends_at is not None and ends_at <= draw_at:
        raise invalid_request("ends_at must be after admission.draw_at.")
    if c.stock is None:
        raise invalid_request("A drawn campaign needs a stock (the number of winners).")
    if c.buckets > 1:
        raise invalid_request("A drawn campaign cannot be spread over buckets.")
    return DrawSpec(entries_until, draw_at)


def campaign_patch(body: object, accepted: dict[str, Any], now_ms: int,
                   templates: TemplateLookup | None = None) -> CampaignSpec:
    """A PATCH body over the campaign as accepted: the result is validated as a whole,
    exactly as a create request would be."""
    decode(body, CampaignPatch)  # refuses id, stock, starts_at, timezone, typos
    assert isinstance(body, dict)  # (decoding refuses anything else)
    if not body:
        raise invalid_request(f"Send at least one of {', '.join(PATCHABLE)}.")
    return campaign_spec({**accepted, **body}, now_ms, templates)


def _coupon_or_template(value: dict[str, Any], where: str, templates: TemplateLookup
                        ) -> tuple[CouponDef, Any]:
    """A coupon, written out or copied from a template version; and its input form,
    with the template's version pinned."""
    if "template" not in value:
        return coupon_of(value, where), value
    use = decode(value, TemplateUse, where)
    ref = templates.get((use.template, use.version))
    if ref is None:
        raise ApiError(404, "template_not_found",
                       f"{where}: no template {use.template!r}"
                       + ("" if use.version is None else f" version {use.version}") + ".")
    coupon = replace(coupon_of(ref.coupon, where), template=(ref.id, ref.version))
    return coupon, {"template": ref.id, "version": ref.version}


def coupon_of(value: object, where: str) -> CouponDef:
    """A coupon body as the campaign model keeps it (times as epoch ms, defaults filled)."""
    c: AnyCoupon = decode(value, AnyCoupon, where)  # type: ignore[arg-type]
    currency, rules = c.currency, _rules(c, where)
    validity = _validity(c.validity, f"{where}.validity")
    if isinstance(c, CashCoupon):
        personal = None
        if c.personal is not None:
            if not c.personal.min <= c.value <= c.personal.max:
                raise invalid_request(f"{where}.personal must hold its value: min <= value <= max.")
            personal = (c.personal.min, c.personal.max)
        return CouponDef("cash", currency, validity, rules, value=c.value, personal=personal)
    if isinstance(c, GiftCoupon):
        return CouponDef("gift", currency, validity, rules, min_spend=c.min_spend, sku=c.sku,
                         cost=c.cost, fulfilment=c.fulfilment)
    if isinstance(c, TradeUpCoupon):
        return CouponDef("trade_up", currency, validity, rules, min_spend=c.min_spend,
                         sku=c.sku, price=c.price)
    if isinstance(c, RandomCashCoupon):
        values = [(f.value, f.count) for f in c.values]
        if len({v for v, _ in values}) != len(values):
            raise invalid_request(f"{where}.values must name each value once.")
        return CouponDef("random_cash", currency, validity, rules, values=tuple(values))
    if isinstance(c, ThresholdCoupon):
        if c.min_spend < c.value:
            raise invalid_request(f"{where}.min_spend must be at least its value ({c.value}).")
        return CouponDef("threshold", currency, validity, rules, value=c.value,
                         min_spend=c.min_spend)
    return CouponDef("discount", currency, validity, rules, percent_off=c.percent_off,
                     max_discount=c.max_discount, min_spend=c.min_spend)


def _validity(v: Validity | None, where: str) -> CouponValidity:
    if v is None:
        return CouponValidity(days=DEFAULT_VALIDITY_DAYS)
    if v.days is not None and v.from_ is None and v.until is None:
        return CouponValidity(days=v.days)
    if v.days is None and v.from_ is not None and v.until is not None:
        start, until = epoch_ms(v.from_, f"{where}.from"), epoch_ms(v.until, f"{where}.until")
        if until > start:
            return CouponValidity(start=start, until=until)
    raise invalid_request(f"{where} must be {{\"days\": n}} or {{\"from\": t, \"until\": t}}"
                          " with until > from.")


def _rules(c: Coupon, where: str) -> UseRules:
    scope = c.scope or Scope()
    lists = {name: distinct(getattr(scope, name), f"{where}.scope.{name}")
             for name in SCOPE_LISTS}
    if len(orjson.dumps(lists)) > MAX_SCOPE_BYTES:
        raise invalid_request(f"{where}.scope must be at most {MAX_SCOPE_BYTES} bytes of JSON.")
    channels = distinct(c.use_channels or [], f"{where}.use_channels")
    stacking = c.stacking or Stacking()
    return UseRules(RuleScope(**{k: frozenset(v) for k, v in lists.items()}),
                    frozenset(channels), RuleStacking(stacking.group, stacking.exclusive),
                    _windows(c.use_windows, where))


def _windows(windows: list[UseWindow] | None, where: str) -> UseWindows | None:
    """The slots, read as a granted coupon carries them and checked (from before to);
    their zone is the campaign's, set with it (campaign_spec), UTC until then."""
    if windows is None:
        return None
    found = UseWindows.of({"use_windows": [{"days": w.days, "from": w.from_, "to": w.to}
                                           for w in windows], "timezone": "UTC"})
    assert found is not None  # (at least one slot: the schema says so)
    for i, slot in enumerate(found.slots):
        if slot.end <= slot.start:
            raise invalid_request(f"{where}.use_windows[{i}]: to must be after from.")
    return found
