"""A coupon's rules of use: which goods it covers, where it may be used, what it combines
with. Part of the coupon's definition (templates and campaigns), carried with every coupon
granted, read at checkout (flashclaim/checkout/).

Scope: an item is in scope when it meets every include list that is not empty (a list is
met when the item's sku, category or merchant is in it) and is in no exclude list. Empty
include lists mean everything. Only in-scope items count towards a threshold and take the
discount.

Stacking: at most one coupon of a group in one order; an exclusive coupon combines with
nothing. Default: group "platform", not exclusive (so a platform coupon and a merchant
coupon may go together, two platform coupons may not).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flashclaim.use_windows import UseWindows

DEFAULT_GROUP = "platform"
MAX_RULE_IDS = 200  # ids in one scope list
# The order coupons of a combination are applied in: merchants' own coupons first (they
# price the goods), then the platform's, then any other group by name.
GROUP_ORDER = ("merchant", "platform")
SCOPE_LISTS = ("categories", "skus", "merchants", "exclude_skus", "exclude_categories")


@dataclass(frozen=True, slots=True)
class Scope:
    categories: frozenset[str] = frozenset()
    skus: frozenset[str] = frozenset()
    merchants: frozenset[str] = frozenset()
    exclude_skus: frozenset[str] = frozenset()
    exclude_categories: frozenset[str] = frozenset()

    def matching(self, items: Sequence[tuple[str, str, str]]) -> list[int]:
        """The indexes of the (sku, category, merchant) items in scope."""
        if self == EVERYTHING:
            return list(range(len(items)))
        cats, skus, shops = self.categories, self.skus, self.merchants
        no_skus, no_cats = self.exclude_skus, self.exclude_categories
        return [n for n, (sku, cat, shop) in enumerate(items)
                if sku not in no_skus and cat not in no_cats and (not cats or cat in cats)
                and (not skus or sku in skus) and (not shops or shop in shops)]

    @classmethod
    def of(cls, shown: dict[str, Any]) -> Scope:
        """From the scope as a coupon carries it (lists of ids; absent lists are empty). A
        scope written before these rules existed (free-form JSON) limits nothing."""
        def ids(value: object) -> frozenset[str]:
            return frozenset(map(str, value)) if isinstance(value, list) else frozenset()
        return cls(**{name: ids(shown.get(name)) for name in SCOPE_LISTS})

    def shown(self) -> dict[str, list[str]]:
        """The lists that are not empty, each sorted (the form a coupon carries)."""
        return {name: sorted(getattr(self, name)) for name in SCOPE_LISTS
                if getattr(self, name)}


EVERYTHING = Scope()


@dataclass(frozen=True, slots=True)
class Stacking:
    group: str = DEFAULT_GROUP
    exclusive: bool = False

    def shown(self) -> dict[str, object]:
        return {"group": self.group, "exclusive": self.exclusive}


@dataclass(frozen=True, slots=True)
class UseRules:
    """Everything about where and with what a coupon may be used (its amounts aside)."""

    scope: Scope = Scope()
    use_channels: frozenset[str] = frozenset()  # empty: anywhere
    stacking: Stacking = Stacking()
    windows: UseWindows | None = None  # None: at any hour of its validity

    def usable_in(self, channel: str) -> bool:
        return not self.use_channels or channel in self.use_channels

    def usable_at(self, ms: int) -> bool:
        """Within its windows of the week (its validity is judged on its own)."""
        return self.windows is None or self.windows.open_at(ms)

    def shown(self) -> dict[str, object]:
        """The non-default rules beyond scope, as a coupon carries them (an old coupon,
        and one with the defaults, carries none: its bytes are what they were)."""
        out: dict[str, object] = {}
        if self.use_channels:
            out["use_channels"] = sorted(self.use_channels)
        if self.stacking != Stacking():
            out["stacking"] = self.stacking.shown()
        if self.windows is not None:
            out.update(self.windows.shown())
        return out

    @classmethod
    def of(cls, coupon: dict[str, Any]) -> UseRules:
        """From a coupon as granted (its scope, use_channels and stacking, each optional)."""
        stacking = coupon.get("stacking") or {}
        return cls(Scope.of(coupon.get("scope") or {}),
                   frozenset(coupon.get("use_channels") or ()),
                   Stacking(str(stacking.get("group", DEFAULT_GROUP)),
                            bool(stacking.get("exclusive", False))),
                   UseWindows.of(coupon))


def group_rank(group: str) -> tuple[int, str]:
    """Where a group's coupon is applied in a combination (GROUP_ORDER, then by name)."""
    return (GROUP_ORDER.index(group) if group in GROUP_ORDER else len(GROUP_ORDER), group)
