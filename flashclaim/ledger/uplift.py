"""A holdout campaign's uplift (docs/coupons.md, "Holdouts and uplift"): the treatment
group (the users it granted) against the control group (the users its holdout kept out,
as claim.lua recorded them), over a period, at a margin rate.

For each user of each group: the GMV of the orders paid in the period (orders told by
`order_paid` events, and orders the checkout API confirmed, each order once: an event
naming a confirmed order's id is the same order; refunded orders do not count), and the
discount this campaign's coupons gave in the period (a gift at its stated cost). A user's
profit is margin x GMV - that discount; a group's figures are its sums and means over all its users,
buyers or not. The uplift is the mean profit per treated user minus that per control
user, with a 95 % confidence interval by the normal approximation (Welch's standard
error: sample variances of both groups). Amounts are minor units; per-user figures are
rounded to the minor unit (the cent) at the end only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from flashclaim.ledger.db import Cursor, Ledger
from flashclaim.schemas.after import UpliftGroup

Z95 = 1.959963984540054  # the 97.5th percentile of the standard normal


@dataclass
class GroupTally:
    users: set[str] = field(default_factory=set)
    gmv: dict[str, int] = field(default_factory=dict)  # user -> paid GMV in the period
    orders: dict[str, int] = field(default_factory=dict)  # user -> orders in the period
    cost: dict[str, int] = field(default_factory=dict)  # user -> this campaign's discount

    def profits(self, margin: float) -> list[float]:
        return [margin * self.gmv.get(u, 0) - self.cost.get(u, 0) for u in self.users]

    def figures(self, margin: float) -> UpliftGroup:
        n = len(self.users)
        profit = sum(self.profits(margin))
        gmv = sum(self.gmv.get(u, 0) for u in self.users)
        return UpliftGroup(
            users=n, buyers=sum(1 for u in self.users if self.orders.get(u, 0)),
            orders=sum(self.orders.get(u, 0) for u in self.users), gmv=gmv,
            gmv_per_user=round(gmv / n) if n else None,
            discount_cost=sum(self.cost.get(u, 0) for u in self.users),
            profit=round(profit), profit_per_user=round(profit / n) if n else None)


def mean_and_variance(xs: list[float]) -> tuple[float, float]:
    """The mean and the sample variance (n - 1)."""
    m = sum(xs) / len(xs)
    return m, sum((x - m) ** 2 for x in xs) / (len(xs) - 1) if len(xs) > 1 else 0.0


def difference(treated: list[float], control: list[float]
               ) -> tuple[float, tuple[float, float]] | None:
    """Mean treated - mean control, and its 95 % interval; None without both groups."""
    if not treated or not control:
        return None
    mt, vt = mean_and_variance(treated)
    mc, vc = mean_and_variance(control)
    d = mt - mc
    half = Z95 * math.sqrt(vt / len(treated) + vc / len(control))
    return d, (d - half, d + half)


def tally_groups(ledger: Ledger, campaign_id: str, start_ms: int, end_ms: int
                 ) -> tuple[GroupTally, GroupTally]:
    """(treatment, control), read in one transaction."""
    def work(cur: Cursor) -> tuple[GroupTally, GroupTally]:
        treated, control = GroupTally(), GroupTally()
        cur.execute(ledger.sql("SELECT DISTINCT user_id FROM claims WHERE campaign_id = ?"),
                    [campaign_id])
        treated.users = {str(r[0]) for r in cur.fetchall()}
        cur.execute(ledger.sql("SELECT user_id FROM holdout_users WHERE campaign_id = ?"),
                    [campaign_id])
        control.users = {str(r[0]) for r in cur.fetchall()}
        group = {u: treated for u in treated.users} | {u: control for u in control.users}
        period = [start_ms, end_ms]
        # the checkout API's confirmed orders (each coupon of an order carries its GMV)
        cur.execute(ledger.sql(
            "SELECT DISTINCT order_id, user_id, gmv FROM coupon_events WHERE event = 'confirmed'"
            " AND at_ms >= ? AND at_ms < ? AND order_id NOT IN (SELECT order_id FROM"
            " coupon_events WHERE event = 'refunded')"), period)
        seen_orders: set[str] = set()
        for order_id, user_id, gmv in cur.fetchall():
            g = group.get(str(user_id))
            seen_orders.add(str(order_id))
            if g is not None:
                _add(g, str(user_id), int(gmv))
        # orders told by order_paid events (one a confirmed order counts once)
        cur.execute(ledger.sql(
            "SELECT user_id, amount, order_id FROM purchases WHERE at_ms >= ? AND at_ms < ?"),
            period)
        for user_id, amount, order_id in cur.fetchall():
            g = group.get(str(user_id))
            if g is not None and not (order_id and str(order_id) in seen_orders):
                _add(g, str(user_id), int(amount))
        # what this campaign's coupons took off in the period
        cur.execute(ledger.sql(
            "SELECT user_id, SUM(CASE WHEN type = 'gift' THEN value ELSE discount END)"
            " FROM coupons WHERE campaign_id = ? AND"
            " status = 'used' AND used_at_ms >= ? AND used_at_ms < ? GROUP BY user_id"),
            [campaign_id, *period])
        for user_id, cost in cur.fetchall():
            g = group.get(str(user_id))
            if g is not None:
                g.cost[str(user_id)] = int(cost or 0)
        return treated, control
    return ledger.run(work)


def _add(g: GroupTally, user: str, gmv: int) -> None:
    g.gmv[user] = g.gmv.get(user, 0) + gmv
    g.orders[user] = g.orders.get(user, 0) + 1
