"""Gifts and trade-ups in the pure quote engine: the item must be in the cart; a gift makes
one of it free, a trade-up sells one at its price once the rest of the cart in scope reaches
its threshold; both combine with amounts off as any coupon does."""

from __future__ import annotations

from flashclaim.checkout.quote import Cart, HeldCoupon, Item, quote
from flashclaim.use_rules import Stacking, UseRules

NOW = 1_800_000_000_000
DAY = 86_400_000
CUP = Item("tea-cup", "gifts", "m1", 1_500, 1)
TEA = Item("oolong", "tea", "m1", 4_000, 2)  # 80.00
DRINK = Item("cola", "drinks", "m1", 600, 2)


def held(cid: str, kind: str, group: str = "platform", **terms: object) -> HeldCoupon:
    return HeldCoupon(cid, "camp", kind, "CNY", NOW - DAY, NOW + DAY,
                      UseRules(stacking=Stacking(group)), **terms)  # type: ignore[arg-type]


def test_a_gift_needs_its_item_and_makes_one_free() -> None:
    gift = held("g", "gift", value=900, sku="tea-cup", min_spend=0)
    with_cup = quote([gift], Cart("app", "CNY", (TEA, CUP)), NOW)
    v = with_cup.verdicts[0]
    assert (v.applicable, v.discount, v.lines, v.split) == (True, 1_500, (1,), (1_500,))
    without = quote([gift], Cart("app", "CNY", (TEA,)), NOW).verdicts[0]
    assert (without.applicable, without.reason) == (False, "item_not_in_cart")


def test_a_trade_up_counts_the_rest_of_the_cart_towards_its_threshold() -> None:
    """"Spend ¥50, a cola for ¥1": the colas do not count towards the ¥50."""
    trade = held("t", "trade_up", sku="cola", price=100, min_spend=5_000, group="merchant")
    short = quote([trade], Cart("app", "CNY", (Item("oolong", "tea", "m1", 4_000, 1), DRINK)),
                  NOW).verdicts[0]
    assert (short.applicable, short.reason, short.shortfall) == (False, "below_min_spend", 1_000)
    enough = quote([trade], Cart("app", "CNY", (TEA, DRINK)), NOW)
    v = enough.verdicts[0]
    assert (v.applicable, v.discount, v.lines, v.split) == (True, 500, (1,), (500,))  # ¥6 for ¥1
    cash = held("c", "cash", value=1_000)
    both = quote([trade, cash], Cart("app", "CNY", (TEA, DRINK)), NOW)
    assert both.best.discount == 1_500  # the merchant's trade-up and the platform's ¥10
    assert [a.coupon.coupon_id for a in both.best.applied] == ["t", "c"]
