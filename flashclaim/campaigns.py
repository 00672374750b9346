"""Campaigns: a validated definition laid out as the meta hash, read back as a view.

(The create and patch bodies are decoded and checked in flashclaim/schemas/campaigns.py.)"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from flashclaim.timefmt import to_rfc3339
from flashclaim.use_rules import UseRules
from flashclaim.zones import DEFAULT_TIMEZONE, offset_rules, zone

MAX_STOCK = 1_000_000_000
MAX_MONEY = 100_000_000_000  # minor units: one billion in major units
MAX_SCOPE_BYTES = 8192  # a coupon's scope lists, as JSON
# Every bound of a create request, once: the schemas (flashclaim/schemas/campaigns.py)
# enforce them, and /openapi.json states them from there.
NAME_MAX_LEN = 200
STOCK_RANGE = (1, MAX_STOCK)
PER_USER_LIMIT_RANGE = (1, 100)
DAILY_LIMIT_RANGE = (1, 100)
COUPONS_RANGE = (1, 10)
MAX_CHANNELS = 10
MAX_SEGMENTS = 20
RATE_MAX_RANGE = (1, 10_000)
RATE_SECONDS_RANGE = (1, 3600)
PERCENT_OFF_RANGE = (1, 99)
VALIDITY_DAYS_RANGE = (1, 3650)
TEMPLATE_VERSION_RANGE = (1, 1_000_000)
COUPON_TYPES = ("cash", "threshold", "discount", "gift", "trade_up")  # what a claim grants
DEFINED_TYPES = (*COUPON_TYPES, "random_cash")  # what a campaign may define (granted as cash)
DEFAULT_VALIDITY_DAYS = 30
# A person tapping fast never reaches 10 taps a second; a script does at once.
DEFAULT_RATE_LIMIT = {"max": 10, "per_seconds": 1}
MAX_BUCKETS = 16  # hash tags one campaign's stock may be spread over
STATUSES = ("scheduled", "live", "paused", "sold_out", "ended")
DIFFICULTY_RANGE = (1, 32)  # proof-of-work bits a campaign may ask for
DEFAULT_DIFFICULTY = 15  # about a second on a phone's Web Crypto (docs/fairness.md)
MissingDevice = Literal["refuse", "allow"]  # what a per_device_limit does without a device id
DRAW_STATES = ("open", "drawing", "done")  # a drawn campaign's draw ("open": not begun)


@dataclass(frozen=True, slots=True)
class TemplateRef:
    """A template version a campaign's coupon copies (versions never change)."""

    id: str
    version: int
    coupon: dict[str, Any]  # the template's coupon, in input form


@dataclass(frozen=True, slots=True)
class Validity:
    """How long a granted coupon is valid: `days` from its grant, or the window
    [start, until) (epoch ms)."""

    days: int | None = None
    start: int | None = None
    until: int | None = None

    def shown(self) -> dict[str, int | str]:
        if self.days is not None:
            return {"days": self.days}
        assert self.start is not None and self.until is not None  # (one of the two forms)
        return {"from": to_rfc3339(self.start), "until": to_rfc3339(self.until)}


@dataclass(frozen=True, slots=True)
class CouponDef:
    """One coupon of a campaign, validated: what every claim of it grants."""

    type: str  # cash, threshold, discount
    currency: str
    validity: Validity
    rules: UseRules  # scope, use_channels, stacking (flashclaim/use_rules.py)
    value: int | None = None  # cash and threshold
    min_spend: int | None = None  # threshold and discount
    percent_off: int | None = None  # discount
    max_discount: int | None = None  # discount
    template: tuple[str, int] | None = None  # (id, version) of the template it copies
    # random_cash: the face values and how many of each (value, count), drawn at the claim
    values: tuple[tuple[int, int], ...] | None = None
    # a personal value: (least, most) an operator grant may give each user; `value` is the
    # default (a grab, a grant without a value)
    personal: tuple[int, int] | None = None
    # gift and trade_up: the item (SKU) the benefit is about; a gift's stated cost, its
    # fulfilment (delivery or pickup); a trade-up's price for the item
    sku: str | None = None
    cost: int | None = None
    fulfilment: str | None = None
    price: int | None = None

    @property
    def cap(self) -> int:
        """The most it can take off an order, minor units: a cash or threshold coupon's
        value, a percentage coupon's max_discount, a random one's largest value."""
        if self.values is not None:
            return max(value for value, _ in self.values)
        if self.personal is not None:
            return self.personal[1]
        if self.type == "gift":
            assert self.cost is not None
            return self.cost
        if self.type == "trade_up":
            return 0  # (its item's price less its own is known only at checkout; no budget)
        cap = self.max_discount if self.type == "discount" else self.value
        assert cap is not None  # (each kind has its own)
        return cap

    def terms(self) -> dict[str, object]:
        """The coupon less its validity, in the order a claim shows it."""
        out: dict[str, object] = {"type": self.type}
        if self.values is not None:
            out["values"] = [{"value": v, "count": n} for v, n in self.values]
        if self.personal is not None:
            out["personal"] = {"min": self.personal[0], "max": self.personal[1]}
        for name in ("value", "percent_off", "max_discount", "min_spend", "sku", "cost",
                     "fulfilment", "price"):
            amount = getattr(self, name)
            if amount is not None:
                out[name] = amount
        out["currency"] = self.currency
        out["scope"] = self.rules.scope.shown()
        out.update(self.rules.shown())  # use_channels, stacking: only when not the default
        if self.template is not None:
            out["template"] = {"id": self.template[0], "version": self.template[1]}
        return out

    def shown(self) -> dict[str, object]:
        """The coupon as a campaign shows it (its definition in Redis, the API)."""
        terms = self.terms()
        rules = ("scope", "use_channels", "stacking")
        out = {k: v for k, v in terms.items() if k not in (*rules, "template")}
        out["validity"] = self.validity.shown()
        out.update((k, terms[k]) for k in rules if k in terms)
        if "template" in terms:
            out["template"] = terms["template"]
        return out


@dataclass(frozen=True, slots=True)
class DrawSpec:
    """A drawn campaign's admission (epoch ms): entries until `entries_until`, the draw at
    `draw_at` (flashclaim/fair/draw.py)."""

    entries_until: int
    draw_at: int


# What the caller found for each {"template": id[, "version": v]} of a body:
# (id, version or None for the latest) -> the version, or None when there is none.
TemplateLookup = dict[tuple[str, int | None], TemplateRef | None]


@dataclass(frozen=True, slots=True)
class CampaignSpec:
    """A validated create request. Times are epoch ms."""

    id: str
    name: str
    stock: int | None  # None: unlimited
    per_user_limit: int
    per_user_daily_limit: int | None
    timezone: str
    starts_at: int
    ends_at: int | None
    coupons: list[CouponDef]
    channels: list[str]
    segments: list[str]
    exclude_segments: list[str]
    rate_limit: dict[str, int]
    body: dict[str, Any]  # the request as accepted, templates pinned: PATCH re-reads it
    buckets: int = 1  # hash tags the stock is spread over (flashclaim/store/buckets.py)
    listed: bool = True  # shown by GET /v1/campaigns (False: internal, claimable by id)
    per_device_limit: int | None = None  # grants (entries) of all accounts on one device
    device_required: bool = True  # with a per_device_limit: refuse a request without one
    difficulty: int | None = None  # proof-of-work bits a grab or entry needs (None: none)
    draw: DrawSpec | None = None  # a drawn campaign
    budget: int | None = None  # minor units the grants may commit in all (face values)
    cap_group: str | None = None  # the cap group it counts in (docs/design.md)
    holdout: tuple[int, str] | None = None  # (percent, salt): the control group (holdout.py)


CHOSEN = "__value__"  # where claim.lua writes a value chosen per claim: drawn, or personal


def personal_bounds(definition: dict[str, Any]) -> tuple[int, int] | None:
    """(least, most) of the personal value a grant may give, from a campaign's shown
    definition; None when no coupon of its pack has one."""
    for coupon in definition["coupons"]:
        if coupon.get("personal"):
            return int(coupon["personal"]["min"]), int(coupon["personal"]["max"])
    return None


def values_left(coupons: list[CouponDef]) -> str:
    """claim.lua's multiset of a random coupon's face values: "<value>:<count>,..." ("" for
    a campaign without one)."""
    for coupon in coupons:
        if coupon.values is not None:
            return ",".join(f"{v}:{n}" for v, n in coupon.values)
    return ""


def _lua_coupon_template(coupon: CouponDef) -> dict[str, object]:
    """What claim.lua needs per coupon: a ready JSON fragment and the validity rule.

    The fragment is spliced into the claim as is, so claim.lua never re-encodes
    the operator's scope (Lua's cjson would turn {} into [] and round numbers).
    """
    terms = coupon.terms()
    if coupon.values is not None:  # granted as cash of the value claim.lua draws
        terms = {"type": "cash", "value": CHOSEN,
                 **{k: v for k, v in terms.items() if k not in ("type", "values")}}
    if coupon.personal is not None:  # the value a grant gives this user (or the default)
        terms = {**terms, "value": CHOSEN}
        terms.pop("personal", None)
    template: dict[str, object] = {"f": orjson.dumps(terms).decode()[1:-1]}
    # What a gift or a trade-up takes off is its item's shelf price (less the trade-up's
    # price), known only at checkout: no cap for the write-back (left out: a JSON null
    # would reach Lua as a value).
    if coupon.type not in ("gift", "trade_up"):
        template["cap"] = coupon.cap
    if coupon.values is not None:
        template["rnd"] = True
    if coupon.personal is not None:
        template["dv"] = coupon.value
    v = coupon.validity
    if v.days is not None:
        template["days"] = v.days
    else:
        template["from"], template["till"] = v.start, v.until
    return template


# The campaign's meta hash: every field name, once. The Lua scripts read and write
# these names (tests/store/test_scripts.py checks that they use no other); the audit and
# reconcile read them through CampaignView.from_meta.
META_FIELDS = (
    "id", "stock", "remaining", "granted", "paused", "starts_at", "ends_at", "per_user_limit",
    "channels", "segments", "rl_max", "rl_window_ms", "coupons", "definition", "created_at",
    "excluded", "daily_limit", "tz_rules", "spec", "rev",
    "buckets", "bucket", "defv",  # a campaign spread over buckets (flashclaim/store/buckets.py)
    "per_device_limit", "device_required", "pow_bits",  # a fair sale (docs/fairness.md)
    # a drawn campaign: the admission, the draw's state, its seed (secret until the draw is
    # done) and the seed's SHA-256 (public from the start), the entries so far
    "admission", "entries_until", "draw_at", "draw_state", "draw_seed", "draw_seed_sha256",
    "entrants", "drawn_winners",
    "budget", "committed", "unit_cost",  # a budget: its amount, what grants committed
    "cap_group",  # the cap group the campaign counts in ("" for none)
    "values_left",  # a random coupon's face values not yet drawn, "<value>:<count>,..."
    "holdout_pct", "holdout_salt",  # an A/B holdout: the control group's share and salt
)
GRANTED = "granted"  # the counter reconcile re-reads on its own
# Fields set at creation that no PATCH rewrites (counters, and what PATCH refuses).
_CREATE_ONLY = ("id", "stock", "remaining", "granted", "paused", "starts_at", "created_at", "rev",
                "buckets", "bucket", "defv", "admission", "entries_until", "draw_at",
                "draw_state", "draw_seed", "draw_seed_sha256", "entrants", "drawn_winners",
                "budget", "committed", "cap_group", "values_left", "holdout_pct",
                "holdout_salt")
# Fields each bucket keeps for itself; the others are copied from bucket 0 (its definition).
BUCKET_OWN = ("stock", "remaining", "granted", "bucket", "buckets", "defv", "budget", "committed",
              "values_left")


def meta_fields(spec: CampaignSpec, created_at: int) -> list[str | int]:
    """The field/value list create_campaign.lua stores (claim.lua reads these names)."""
    fields = _meta(spec, created_at)
    return [x for pair in fields.items() for x in pair]


def patched_fields(spec: CampaignSpec) -> list[str | int]:
    """The fields a PATCH rewrites: everything derived from the definition."""
    fields = _meta(spec, 0)
    return [x for k, v in fields.items() if k not in _CREATE_ONLY for x in (k, v)]


def _meta(spec: CampaignSpec, created_at: int) -> dict[str, str | int]:
    definition = {
        "name": spec.name,
        "coupons": [c.shown() for c in spec.coupons],
        "channels": spec.channels,
        "segments": spec.segments,
        "exclude_segments": spec.exclude_segments,
        "rate_limit": spec.rate_limit,
        "per_user_daily_limit": spec.per_user_daily_limit,
        "timezone": spec.timezone,
        "listed": spec.listed,
    }
    for name in ("per_device_limit", "missing_device", "challenge", "admission", "cap_group",
                 "holdout"):
        if name in spec.body:
            definition[name] = spec.body[name]
    stock: str | int = "" if spec.stock is None else spec.stock  # "": unlimited
    return {
        "id": spec.id,
        "stock": stock,
        "remaining": stock,  # claim.lua never decrements "" (unlimited)
        "granted": 0,
        "paused": "0",
        "starts_at": spec.starts_at,
        "ends_at": "" if spec.ends_at is None else spec.ends_at,
        "per_user_limit": spec.per_user_limit,
        "channels": _comma_set(spec.channels),
        "segments": _comma_set(spec.segments),
        "excluded": _comma_set(spec.exclude_segments),
        "daily_limit": "" if spec.per_user_daily_limit is None else spec.per_user_daily_limit,
        "tz_rules": offset_rules(zone(spec.timezone), spec.starts_at, spec.ends_at),
        "rl_max": spec.rate_limit["max"],
        "rl_window_ms": spec.rate_limit["per_seconds"] * 1000,
        "coupons": orjson.dumps([_lua_coupon_template(c) for c in spec.coupons]).decode(),
        "definition": orjson.dumps(definition).decode(),
        "spec": orjson.dumps(spec.body).decode(),
        "created_at": created_at,
        "rev": 0,
        "buckets": spec.buckets,
        "bucket": 0,
        "defv": 0,
        "per_device_limit": "" if spec.per_device_limit is None else spec.per_device_limit,
        "device_required": "1" if spec.device_required else "0",
        "pow_bits": "" if spec.difficulty is None else spec.difficulty,
        **_draw_meta(spec.draw),
        "budget": "" if spec.budget is None else spec.budget,
        "committed": 0,
        "unit_cost": unit_cost(spec.coupons),
        "cap_group": spec.cap_group or "",
        "values_left": values_left(spec.coupons),
        "holdout_pct": "" if spec.holdout is None else spec.holdout[0],
        "holdout_salt": "" if spec.holdout is None else spec.holdout[1],
    }


def unit_cost(coupons: list[CouponDef]) -> int:
    """What one grant commits of a budget: its pack's face value (each coupon's cap: a cash
    or threshold coupon's value, a percentage coupon's max_discount), minor units."""
    return sum(c.cap for c in coupons)


def seed_commitment(seed: bytes) -> str:
    """What a drawn campaign publishes before its draw: SHA-256 of its seed's bytes, hex."""
    return hashlib.sha256(seed).hexdigest()


def _draw_meta(draw: DrawSpec | None) -> dict[str, str | int]:
    """A drawn campaign's admission fields, and its seed, made once at creation: the
    SHA-256 is public from the start, the seed itself only once the draw is done."""
    if draw is None:  # every campaign has every field: "" for none
        return dict.fromkeys(("admission", "entries_until", "draw_at", "draw_state", "draw_seed",
                              "draw_seed_sha256", "entrants", "drawn_winners"), "")
    seed = secrets.token_hex(32)
    return {"admission": "draw", "entries_until": draw.entries_until, "draw_at": draw.draw_at,
            "draw_state": "open", "draw_seed": seed,
            "draw_seed_sha256": seed_commitment(bytes.fromhex(seed)), "entrants": 0,
            "drawn_winners": 0}


def _comma_set(items: list[str]) -> str:
    """",a,b," so claim.lua can test membership with a plain substring search."""
    return "," + ",".join(items) + "," if items else ""


def _optional_int(text: str | None) -> int | None:
    return int(text) if text else None


@dataclass(frozen=True, slots=True)
class DrawView:
    """A drawn campaign's draw as stored. The seed stays secret until the draw is done."""

    entries_until: int
    draw_at: int
    state: str  # DRAW_STATES
    seed_sha256: str
    entrants: int
    winners: int  # granted by the draw (once it is done)
    _seed: str

    @classmethod
    def from_meta(cls, meta: dict[str, str]) -> DrawView:
        return cls(int(meta["entries_until"]), int(meta["draw_at"]), meta["draw_state"],
                   meta["draw_seed_sha256"], int(meta.get("entrants") or 0),
                   int(meta.get("drawn_winners") or 0), meta["draw_seed"])

    @property
    def seed(self) -> str | None:
        """The seed (hex), published once the draw is done; None before."""
        return self._seed if self.state == "done" else None

    def secret_seed(self) -> bytes:
        """The seed itself, for the drawer only."""
        return bytes.fromhex(self._seed)


@dataclass(frozen=True, slots=True)
class CampaignView:
    """A campaign as stored, with its live counters; rendered for clients by `public()`."""

    id: str
    stock: int | None  # None: unlimited
    remaining: int | None
    granted: int
    paused: bool
    starts_at: int
    ends_at: int | None
    per_user_limit: int
    definition: dict[str, Any]
    created_at: int = 0
    rev: int = 0
    accepted: dict[str, Any] | None = None  # the create request as accepted (PATCH base)
    buckets: int = 1
    in_transfer: int = 0  # stock between two buckets right now (in neither's remaining)
    draw: DrawView | None = None  # a drawn campaign's draw
    budget: int | None = None  # minor units; None: no budget
    committed: int = 0  # minor units the grants committed

    @classmethod
    def from_meta(cls, meta: dict[str, str]) -> CampaignView:
        return cls(
            id=meta["id"],
            stock=_optional_int(meta["stock"]),
            remaining=_optional_int(meta["remaining"]),
            granted=int(meta["granted"]),
            paused=meta["paused"] == "1",
            starts_at=int(meta["starts_at"]),
            ends_at=_optional_int(meta["ends_at"]),
            per_user_limit=int(meta["per_user_limit"]),
            definition=orjson.loads(meta["definition"]),
            created_at=int(meta.get("created_at") or 0),
            rev=int(meta.get("rev") or 0),
            accepted=orjson.loads(meta["spec"]) if meta.get("spec") else None,
            buckets=int(meta.get("buckets") or 1),
            draw=DrawView.from_meta(meta) if meta.get("admission") == "draw" else None,
            budget=_optional_int(meta.get("budget")),
            committed=int(meta.get("committed") or 0),
        )

    @property
    def holdout(self) -> tuple[int, str] | None:
        """(percent, salt) of the campaign's control group; None: no holdout."""
        h = self.definition.get("holdout")
        return None if not h else (int(h["percent"]), str(h["salt"]))

    @property
    def random(self) -> bool:
        """A coupon of the pack is random_cash: the stock is its multiset of face values."""
        return any(c.get("type") == "random_cash" for c in self.definition["coupons"])

    @property
    def listed(self) -> bool:
        """Shown on the public list (a campaign made before the setting: yes)."""
        return self.definition.get("listed", True) is not False

    @property
    def per_user_daily_limit(self) -> int | None:
        limit = self.definition.get("per_user_daily_limit")
        return limit if isinstance(limit, int) else None

    def status(self, now_ms: int) -> str:
        """What a grab button shows. The claim script decides in the same precedence."""
        if self.ends_at is not None and now_ms >= self.ends_at:
            return "ended"
        if now_ms < self.starts_at:
            return "scheduled"
        if self.paused:
            return "paused"
        if self.remaining is not None and self.remaining <= 0:
            return "sold_out"
        return "live"

    @property
    def timezone(self) -> str:
        return str(self.definition.get("timezone", DEFAULT_TIMEZONE))
