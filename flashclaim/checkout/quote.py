"""Which of a user's coupons apply to a cart, why not the others, for how much, and the best
combination: pure functions of the coupons, the cart and the time (no I/O), so every rule
is tested with exact amounts.

The rules (docs/checkout.md says them for people):
- A coupon is judged alone first, on the cart's prices: currency, validity, lock, channel,
  time-of-day windows, scope, threshold, in that order; the first that fails is its `reason`.
- Its discount alone: cash `value`, at most the in-scope amount; threshold `value` once the
  in-scope amount reaches `min_spend`; percentage `percent_off` of the in-scope amount,
  rounded down, at most `max_discount`.
- In a combination coupons are applied in group order (use_rules.GROUP_ORDER, then by id),
  each taking at most what the ones before left of its in-scope items. Thresholds stay
  judged on the prices (a merchant coupon does not push a platform coupon under its
  threshold).
- Every discount is split over its in-scope items in proportion to what is left of each, in
  integer minor units, by largest remainder: the parts add up to the discount exactly and
  no item gives more than it has.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from flashclaim.use_rules import UseRules, group_rank

# A combination search tries every choice of at most one coupon per group while there are
# no more than this many choices; beyond it, each group keeps its best few coupons alone.
MAX_COMBINATIONS = 4096

REASONS = ("currency", "not_yet_valid", "expired", "outside_window", "locked", "wrong_channel",
           "item_not_in_cart", "out_of_scope", "below_min_spend")
BENEFITS = ("gift", "trade_up")  # coupons about one item of the cart, not an amount off


@dataclass(frozen=True, slots=True)
class Item:
    sku: str
    category: str
    merchant: str
    unit_price: int
    quantity: int

    @property
    def amount(self) -> int:
        return self.unit_price * self.quantity


@dataclass(frozen=True, slots=True)
class Cart:
    channel: str
    currency: str
    items: tuple[Item, ...]
    shipping: int = 0
    amounts: tuple[int, ...] = field(init=False)  # each line's, worked out once
    subtotal: int = field(init=False)  # the goods before any discount: the order's GMV
    keys: tuple[tuple[str, str, str], ...] = field(init=False)  # what a scope matches

    def __post_init__(self) -> None:
        amounts = tuple(i.amount for i in self.items)
        object.__setattr__(self, "amounts", amounts)
        object.__setattr__(self, "subtotal", sum(amounts))
        object.__setattr__(self, "keys", tuple((i.sku, i.category, i.merchant)
                                               for i in self.items))


@dataclass(frozen=True, slots=True)
class HeldCoupon:
    """A coupon the user holds, unused (perhaps locked by an order), with its terms."""

    coupon_id: str
    campaign_id: str
    type: str  # cash, threshold, discount
    currency: str
    valid_from: int  # epoch ms
    valid_until: int
    rules: UseRules
    value: int | None = None
    min_spend: int | None = None
    percent_off: int | None = None
    max_discount: int | None = None
    locked_by: str | None = None  # the order holding it, if any
    sku: str | None = None  # gift, trade_up: the item it is about (a gift's value: its cost)
    price: int | None = None  # trade_up: what the item costs with it


@dataclass(frozen=True, slots=True)
class Verdict:
    """One coupon judged alone against the cart."""

    coupon: HeldCoupon
    reason: str | None  # None: applicable
    discount: int = 0  # alone, on the cart's prices
    shortfall: int | None = None  # below_min_spend: how much more in-scope spend it needs
    scope_amount: int = 0  # the in-scope items' amount
    lines: tuple[int, ...] = ()  # the cart lines it covers
    split: tuple[int, ...] = ()  # applicable: its discount alone over `lines`

    @property
    def applicable(self) -> bool:
        return self.reason is None


@dataclass(frozen=True, slots=True)
class Applied:
    """A coupon within a combination: what it took, item by item (cart line order)."""

    coupon: HeldCoupon
    discount: int
    split: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Combination:
    applied: tuple[Applied, ...]
    subtotal: int
    shipping: int

    @property
    def discount(self) -> int:
        return sum(a.discount for a in self.applied)

    @property
    def total(self) -> int:
        """What the order costs after the discount (shipping included, not discounted)."""
        return self.subtotal - self.discount + self.shipping


@dataclass(frozen=True, slots=True)
class Quote:
    verdicts: tuple[Verdict, ...]
    best: Combination
    cart: Cart = field(repr=False)


def in_scope(coupon: HeldCoupon, cart: Cart) -> list[int]:
    """The cart lines the coupon covers."""
    return coupon.rules.scope.matching(cart.keys)


def standalone_discount(coupon: HeldCoupon, scope_amount: int) -> int:
    """What the coupon takes off in-scope goods worth `scope_amount` (its threshold met)."""
    if coupon.type == "discount":
        assert coupon.percent_off is not None and coupon.max_discount is not None
        return min(scope_amount * coupon.percent_off // 100, coupon.max_discount)
    assert coupon.value is not None
    return min(coupon.value, scope_amount)


def item_lines(coupon: HeldCoupon, cart: Cart) -> list[int]:
    """A gift's or trade-up's lines: those of its item (one unit of the first is what it
    is about)."""
    return [n for n, item in enumerate(cart.items) if item.sku == coupon.sku]


def benefit_discount(coupon: HeldCoupon, cart: Cart, lines: Sequence[int]) -> int:
    """What a gift (one of its item, free) or a trade-up (one of its item at its price)
    takes off, its item in the cart."""
    unit = cart.items[lines[0]].unit_price
    if coupon.type == "gift":
        return unit
    assert coupon.price is not None
    return max(0, unit - coupon.price)


def judge(coupon: HeldCoupon, cart: Cart, now_ms: int, order_id: str | None = None) -> Verdict:
    """The coupon alone against the cart. `order_id`: the order asking (its own lock is no
    obstacle)."""
    lines = tuple(in_scope(coupon, cart))
    items = item_lines(coupon, cart) if coupon.type in BENEFITS else []
    if coupon.type == "trade_up":  # the item itself does not count towards its threshold
        lines = tuple(n for n in lines if n not in items)
    scope_amount = sum(cart.amounts[n] for n in lines)

    def refused(reason: str, shortfall: int | None = None) -> Verdict:
        return Verdict(coupon, reason, shortfall=shortfall, scope_amount=scope_amount,
                       lines=lines)
    if coupon.currency != cart.currency:
        return refused("currency")
    if now_ms < coupon.valid_from:
        return refused("not_yet_valid")
    if now_ms >= coupon.valid_until:
        return refused("expired")
    if not coupon.rules.usable_at(now_ms):
        return refused("outside_window")
    if coupon.locked_by is not None and coupon.locked_by != order_id:
        return refused("locked")
    if not coupon.rules.usable_in(cart.channel):
        return refused("wrong_channel")
    if coupon.type in BENEFITS:
        if not items:
            return refused("item_not_in_cart")
        if scope_amount < (coupon.min_spend or 0):
            return refused("below_min_spend", (coupon.min_spend or 0) - scope_amount)
        discount = benefit_discount(coupon, cart, items)
        parts = split(discount, [cart.amounts[n] for n in items]) if discount else [0] * len(items)
        return Verdict(coupon, None, discount, scope_amount=scope_amount, lines=tuple(items),
                       split=tuple(parts))
    if scope_amount == 0:
        return refused("out_of_scope")
    threshold = coupon.min_spend or 0
    if scope_amount < threshold:
        return refused("below_min_spend", threshold - scope_amount)
    discount = standalone_discount(coupon, scope_amount)
    return Verdict(coupon, None, discount, scope_amount=scope_amount, lines=lines,
                   split=tuple(split(discount, [cart.amounts[n] for n in lines])))


def split(amount: int, weights: Sequence[int]) -> list[int]:
    """`amount` in integer parts proportional to `weights`, by largest remainder: the parts
    add up to `amount` exactly; with amount <= sum(weights), no part exceeds its weight.
    Ties in the remainder go to the earlier weight."""
    total = sum(weights)
    if amount == 0 or total == 0:
        return [0] * len(weights)
    assert 0 < amount <= total
    floors = [amount * w // total for w in weights]
    left = amount - sum(floors)
    if left:
        by_remainder = sorted(range(len(weights)),
                              key=lambda n: (-(amount * weights[n] % total), n))
        for n in by_remainder[:left]:
            floors[n] += 1
    return floors


def combine(coupons: Iterable[HeldCoupon], cart: Cart,
            covered: dict[str, tuple[int, ...]] | None = None) -> Combination:
    """The coupons applied together in group order, each taking at most what is left of
    its in-scope items (whether stacking allows them together is `stacking_refusal`).
    `covered`: each coupon's lines, when known already."""
    left = list(cart.amounts)
    applied = []
    for coupon in sorted(coupons, key=lambda c: (group_rank(c.rules.stacking.group),
                                                 c.coupon_id)):
        if coupon.type in BENEFITS:
            lines = covered[coupon.coupon_id] if covered else item_lines(coupon, cart)
            alone = benefit_discount(coupon, cart, lines)
        else:
            lines = covered[coupon.coupon_id] if covered else in_scope(coupon, cart)
            alone = standalone_discount(coupon, sum(cart.amounts[n] for n in lines))
        took = min(alone, sum(left[n] for n in lines))
        parts = split(took, [left[n] for n in lines])
        per_line = [0] * len(cart.items)
        for n, part in zip(lines, parts, strict=True):
            per_line[n] = part
            left[n] -= part
        applied.append(Applied(coupon, took, tuple(per_line)))
    return Combination(tuple(applied), cart.subtotal, cart.shipping)


def stacking_refusal(coupons: Sequence[HeldCoupon]) -> str | None:
    """Why these coupons may not go together (None: they may)."""
    if len(coupons) > 1 and any(c.rules.stacking.exclusive for c in coupons):
        return "exclusive"
    groups = [c.rules.stacking.group for c in coupons]
    if len(set(groups)) != len(groups):
        return "same_group"
    return None


def best(verdicts: Iterable[Verdict], cart: Cart) -> Combination:
    """The combination of applicable coupons stacking allows with the largest total
    discount; ties: the one whose earliest coupon expires first, then fewer coupons, then
    coupon ids (so the answer is the same every time).

    A branch-and-bound search over the groups in the order their coupons apply: each
    choice's discount is computed as `combine` computes it (what is left of the goods
    caps each coupon), and a branch is left as soon as even the best coupon of every group
    still to come could not reach the best found. Usually the first branch (each group's
    best coupon) is the answer and the rest is cut at once."""
    usable = [v for v in verdicts if v.applicable and v.discount > 0]
    candidates = [[v.coupon] for v in usable if v.coupon.rules.stacking.exclusive]
    groups: dict[str, list[Verdict]] = {}
    for v in usable:
        if not v.coupon.rules.stacking.exclusive:
            groups.setdefault(v.coupon.rules.stacking.group, []).append(v)
    ordered = [sorted(g, key=lambda v: (-v.discount, v.coupon.valid_until, v.coupon.coupon_id))
               for _, g in sorted(groups.items(), key=lambda kv: group_rank(kv[0]))]
    keep = max((len(g) for g in ordered), default=0)
    while keep > 1 and _product(min(len(g), keep) + 1 for g in ordered) > MAX_COMBINATIONS:
        keep -= 1
    ordered = [g[:keep] for g in ordered]
    # the most the groups from g on can add: a bound no branch below can beat
    most_after = [0] * (len(ordered) + 1)
    for g in range(len(ordered) - 1, -1, -1):
        most_after[g] = most_after[g + 1] + ordered[g][0].discount
    lines = {v.coupon.coupon_id: v.lines for v in usable}
    found: list[tuple[int, list[HeldCoupon]]] = []  # (discount, coupons) at the best so far
    top = [0]

    def search(g: int, left: list[int], taken: int, chosen: list[HeldCoupon]) -> None:
        if taken + most_after[g] < top[0]:
            return  # nothing below reaches the best found
        if g == len(ordered):
            if taken > top[0]:
                top[0], found[:] = taken, []
            if taken == top[0] and chosen:
                found.append((taken, list(chosen)))
            return
        for v in ordered[g]:
            mine = lines[v.coupon.coupon_id]
            took = min(v.discount, sum(left[n] for n in mine))
            after = list(left)
            for n, part in zip(mine, split(took, [left[n] for n in mine]), strict=True):
                after[n] -= part
            chosen.append(v.coupon)
            search(g + 1, after, taken + took, chosen)
            chosen.pop()
        search(g + 1, left, taken, chosen)  # no coupon of this group

    search(0, list(cart.amounts), 0, [])
    choices: list[list[HeldCoupon]] = [[], *candidates, *(c for _, c in found)]
    return min((combine(c, cart, lines) for c in choices), key=_preference)


def _preference(c: Combination) -> tuple[int, tuple[int, ...], int, tuple[str, ...]]:
    expiries = tuple(sorted(a.coupon.valid_until for a in c.applied))
    return (-c.discount, expiries, len(c.applied), tuple(sorted(a.coupon.coupon_id
                                                              for a in c.applied)))


def _product(sizes: Iterable[int]) -> int:
    n = 1
    for size in sizes:
        n *= size
    return n


def quote(coupons: Iterable[HeldCoupon], cart: Cart, now_ms: int) -> Quote:
    verdicts = tuple(judge(c, cart, now_ms) for c in coupons)
    return Quote(verdicts, best(verdicts, cart), cart)
