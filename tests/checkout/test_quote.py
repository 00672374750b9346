"""The coupon's rules of use, judged by the pure quote engine: every rule with exact amounts
in minor units (fen)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from flashclaim.checkout.quote import (
    Cart,
    HeldCoupon,
    Item,
    best,
    combine,
    judge,
    quote,
    split,
    stacking_refusal,
)
from flashclaim.use_rules import Scope, Stacking, UseRules

NOW = 1_800_000_000_000
EVERYTHING = Scope()
DAY = 86_400_000


def coupon(cid: str, kind: str = "cash", *, value: int | None = None,
           min_spend: int | None = None, percent_off: int | None = None,
           max_discount: int | None = None, scope: Scope = EVERYTHING,
           channels: frozenset[str] = frozenset(), group: str = "platform",
           exclusive: bool = False, until: int = NOW + DAY, start: int = NOW - DAY,
           currency: str = "CNY", locked_by: str | None = None) -> HeldCoupon:
    return HeldCoupon(cid, "camp", kind, currency, start, until,
                      UseRules(scope, channels, Stacking(group, exclusive)),
                      value=value, min_spend=min_spend, percent_off=percent_off,
                      max_discount=max_discount, locked_by=locked_by)


MEAT = Item("pork-500g", "肉蛋水产", "m1", 3_000, 3)  # 90.00
FRUIT = Item("apple", "fruit", "m1", 1_000, 2)  # 20.00
GIFT = Item("gift-card", "cards", "m2", 5_000, 1)  # 50.00
CART = Cart("app", "CNY", (MEAT, FRUIT, GIFT))


def test_a_threshold_counts_only_in_scope_items_and_says_the_shortfall() -> None:
    """"Spend 100 on meat, save 20": 90.00 of meat in the cart (the fruit and the gift card
    do not count), so 10.00 short."""
    meat_only = Scope(categories=frozenset({"肉蛋水产"}))
    v = judge(coupon("c", "threshold", value=2_000, min_spend=10_000, scope=meat_only), CART, NOW)
    assert (v.applicable, v.reason, v.shortfall, v.scope_amount) == (
        False, "below_min_spend", 1_000, 9_000)
    more_meat = replace(CART, items=(replace(MEAT, quantity=4), FRUIT, GIFT))
    v = judge(coupon("c", "threshold", value=2_000, min_spend=10_000, scope=meat_only),
              more_meat, NOW)
    assert (v.applicable, v.discount, v.shortfall) == (True, 2_000, None)


def test_scope_includes_all_lists_and_excludes_win() -> None:
    everything_but_cards = Scope(exclude_categories=frozenset({"cards"}))
    v = judge(coupon("c", "discount", percent_off=10, max_discount=100_000,
                     scope=everything_but_cards), CART, NOW)
    assert (v.scope_amount, v.discount) == (11_000, 1_100)
    # two include lists: both must hold (merchant m1 AND category fruit)
    v = judge(coupon("c", value=5_000, scope=Scope(merchants=frozenset({"m1"}),
                                                   categories=frozenset({"fruit"}))), CART, NOW)
    assert (v.scope_amount, v.discount) == (2_000, 2_000)  # a cash coupon: at most its goods
    v = judge(coupon("c", value=500, scope=Scope(skus=frozenset({"apple"}),
                                                 exclude_skus=frozenset({"apple"}))), CART, NOW)
    assert (v.reason, v.scope_amount) == ("out_of_scope", 0)


def test_a_percentage_stays_under_its_cap_and_rounds_down() -> None:
    v = judge(coupon("c", "discount", percent_off=15, max_discount=100_000), CART, NOW)
    assert v.discount == 16_000 * 15 // 100 == 2_400
    v = judge(coupon("c", "discount", percent_off=15, max_discount=2_000), CART, NOW)
    assert v.discount == 2_000
    odd = Cart("app", "CNY", (Item("x", "c", "m", 333, 1),))
    assert judge(coupon("c", "discount", percent_off=10, max_discount=999), odd, NOW).discount == 33


def test_each_reason_in_its_order() -> None:
    cases = [
        (coupon("c", value=100, currency="USD"), "currency"),
        (coupon("c", value=100, start=NOW + 1), "not_yet_valid"),
        (coupon("c", value=100, until=NOW), "expired"),
        (coupon("c", value=100, locked_by="o-other"), "locked"),
        (coupon("c", value=100, channels=frozenset({"store"})), "wrong_channel"),
        (coupon("c", value=100, scope=Scope(skus=frozenset({"nothing"}))), "out_of_scope"),
        (coupon("c", "threshold", value=100, min_spend=1_000_000), "below_min_spend"),
        # two failures: the first in the order wins
        (coupon("c", value=100, until=NOW, channels=frozenset({"store"})), "expired"),
    ]
    for c, reason in cases:
        assert judge(c, CART, NOW).reason == reason, reason
    assert judge(coupon("c", value=100, locked_by="o-1"), CART, NOW, order_id="o-1").applicable
    assert judge(coupon("c", value=100, channels=frozenset({"app"})), CART, NOW).applicable


def test_the_split_adds_up_exactly_by_largest_remainder() -> None:
    assert split(100, [300, 300, 300]) == [34, 33, 33]
    assert split(1_000, [9_000, 2_000, 5_000]) == [563, 125, 312]  # 562.5, 125, 312.5
    assert split(0, [5, 5]) == [0, 0]
    assert split(10, [10]) == [10]


@given(st.lists(st.integers(0, 10**9), min_size=1, max_size=30), st.data())
def test_the_split_never_loses_or_invents_a_cent(weights: list[int], data: st.DataObject
                                                 ) -> None:
    amount = data.draw(st.integers(0, sum(weights)))
    parts = split(amount, weights)
    assert sum(parts) == amount
    assert all(0 <= p <= w for p, w in zip(parts, weights, strict=True))


def test_a_combination_never_takes_more_than_the_goods() -> None:
    """Two cash coupons on the 20.00 of fruit: the merchant's 15.00 first, then the
    platform's 10.00 takes only the 5.00 left; each split over the items exactly."""
    fruit = Scope(categories=frozenset({"fruit"}))
    merchant = coupon("m", value=1_500, scope=fruit, group="merchant")
    platform = coupon("p", value=1_000, scope=fruit)
    c = combine([platform, merchant], CART)
    assert [(a.coupon.coupon_id, a.discount, a.split) for a in c.applied] == [
        ("m", 1_500, (0, 1_500, 0)), ("p", 500, (0, 500, 0))]
    assert (c.discount, c.total) == (2_000, 14_000)


def test_stacking_one_per_group_and_exclusive_alone() -> None:
    a, b = coupon("a", value=100), coupon("b", value=200)
    m = coupon("m", value=300, group="merchant")
    x = coupon("x", value=400, exclusive=True, group="special")
    assert stacking_refusal([a, b]) == "same_group"
    assert stacking_refusal([a, m]) is None
    assert stacking_refusal([x, m]) == "exclusive"
    assert stacking_refusal([x]) is None


def test_the_best_combination() -> None:
    """The largest discount stacking allows: the best platform coupon with the merchant's
    (5.00 + 3.00 = 8.00) beats the exclusive 7.00 and any single coupon."""
    cs = [coupon("a", value=100), coupon("b", value=500), coupon("m", value=300, group="merchant"),
          coupon("x", value=700, exclusive=True, group="special"),
          coupon("t", "threshold", value=5_000, min_spend=50_000)]  # not applicable
    q = quote(cs, CART, NOW)
    assert sorted(a.coupon.coupon_id for a in q.best.applied) == ["b", "m"]
    assert (q.best.discount, q.best.total) == (800, 15_200)
    # the exclusive coupon wins once it is worth more than any combination
    cs[3] = coupon("x", value=900, exclusive=True, group="special")
    assert [a.coupon.coupon_id for a in quote(cs, CART, NOW).best.applied] == ["x"]


def test_a_tie_goes_to_the_coupon_that_expires_first() -> None:
    late, soon = coupon("late", value=500, until=NOW + 9 * DAY), coupon("soon", value=500,
                                                                        until=NOW + DAY)
    verdicts = [judge(c, CART, NOW) for c in (late, soon)]
    assert [a.coupon.coupon_id for a in best(verdicts, CART).applied] == ["soon"]


def test_no_applicable_coupon_gives_the_empty_combination() -> None:
    q = quote([coupon("c", value=100, until=NOW)], replace(CART, shipping=800), NOW)
    assert (q.best.applied, q.best.discount, q.best.total) == ((), 0, 16_800)


def test_many_coupons_in_one_group_are_searched_within_bounds() -> None:
    """50 coupons over 5 groups: the search is bounded and still finds the best of each
    group (the largest of each is 1,000 + its group number)."""
    cs = [coupon(f"c{g}-{n}", value=100 * n + g, group=f"g{g}") for g in range(5)
          for n in range(1, 11)]
    q = quote(cs, CART, NOW)
    assert sorted(a.coupon.coupon_id for a in q.best.applied) == [f"c{g}-10" for g in range(5)]
    assert q.best.discount == sum(1_000 + g for g in range(5))


@st.composite
def shop(draw: st.DrawFn) -> tuple[list[HeldCoupon], Cart]:
    """A random cart and random coupons over its categories, groups and exclusivity."""
    categories = ["a", "b", "c"]
    items = tuple(Item(f"s{n}", draw(st.sampled_from(categories)), "m",
                       draw(st.integers(1, 5_000)), draw(st.integers(1, 3)))
                  for n in range(draw(st.integers(1, 6))))
    coupons = []
    for n in range(draw(st.integers(1, 9))):
        scope = Scope(categories=frozenset(draw(st.lists(st.sampled_from(categories),
                                                         max_size=2))))
        kind = draw(st.sampled_from(["cash", "threshold", "discount"]))
        value = draw(st.integers(1, 8_000))
        coupons.append(coupon(
            f"c{n}", kind, value=None if kind == "discount" else value,
            min_spend=value + draw(st.integers(0, 3_000)) if kind == "threshold" else None,
            percent_off=draw(st.integers(1, 60)) if kind == "discount" else None,
            max_discount=value if kind == "discount" else None, scope=scope,
            group=draw(st.sampled_from(["platform", "merchant", "x"])),
            exclusive=draw(st.booleans()) and n % 3 == 0,
            until=NOW + draw(st.integers(1, 5)) * DAY))
    return coupons, Cart("app", "CNY", items)


@settings(max_examples=300)
@given(shop())
def test_the_search_finds_what_trying_every_combination_finds(case: tuple[
        list[HeldCoupon], Cart]) -> None:
    """The branch-and-bound search against brute force: every subset stacking allows."""
    coupons, cart = case
    verdicts = [judge(c, cart, NOW) for c in coupons]
    usable = [v.coupon for v in verdicts if v.applicable and v.discount > 0]
    most = 0
    for mask in range(1 << len(usable)):
        chosen = [c for n, c in enumerate(usable) if mask >> n & 1]
        if stacking_refusal(chosen) is None:
            most = max(most, combine(chosen, cart).discount)
    found = best(verdicts, cart)
    assert found.discount == most
    assert stacking_refusal([a.coupon for a in found.applied]) is None


def test_a_smaller_coupon_can_make_the_better_pair() -> None:
    """The merchant's 50.00 coupon on fruit leaves nothing of the fruit for the platform's
    40.00; its 30.00 coupon on grain leaves the fruit whole: 70.00 beats 50.00."""
    fruit, grain = Scope(categories=frozenset({"fruit"})), Scope(categories=frozenset({"grain"}))
    cart = Cart("app", "CNY", (Item("apple", "fruit", "m", 5_000, 1),
                               Item("rice", "grain", "m", 3_000, 1)))
    big = coupon("big", value=5_000, scope=fruit, group="merchant")
    small = coupon("small", value=3_000, scope=grain, group="merchant")
    platform = coupon("p", value=4_000, scope=fruit)
    found = best([judge(c, cart, NOW) for c in (big, small, platform)], cart)
    assert sorted(a.coupon.coupon_id for a in found.applied) == ["p", "small"]
    assert found.discount == 7_000
