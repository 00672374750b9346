"""The figures a campaign is judged by, computed from the ledger.

The population is a set of claims: one campaign's, or every campaign's claims made in
a window [from, to). Of it:

- claims: grants (a pack of several coupons is one claim); claim_rate = claims / issued,
  where issued is the campaign's stock (unknown for unlimited stock or across campaigns);
- coupons: coupons those claims carried; used: of them, used now (redeemed and not
  released); use_rate = used / coupons; expired: unused past valid_until;
- discount_cost: what the used coupons took off orders, per currency, minor units;
- orders: the distinct orders (of the orders API, which knows their GMV) the used coupons
  paid towards; gmv: those orders' goods before the discount (an order counts once in a
  group however many of its coupons are in it); discount_per_order: the discount those
  coupons gave, per order, rounded to the minor unit; roi, given a margin rate:
  (margin x gmv - discount) / discount over the same orders;
- refunded_orders and refunded_discount: refunds of paid orders (the coupons are unused
  again, or refunded if they expired), counted apart: a refunded order is in neither
  orders nor gmv;
- the same split by channel, by user segment (the claimant's tags at claim time; a
  claim with two tags counts in both, one without counts as "untagged"), and by
  source (grab, grant, code);
- a timeline: claims per bucket of claim time, uses per bucket of use time (only the
  buckets where something happened).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flashclaim.campaigns import CampaignView
from flashclaim.keys import KeySpace
from flashclaim.ledger.db import Cursor, Ledger, open_ledger
from flashclaim.money import format_amounts
from flashclaim.schemas.after import (
    CampaignFigures,
    CampaignReport,
    ChannelFigures,
    FaceValueFigures,
    SegmentFigures,
    SourceFigures,
    TimelinePoint,
)
from flashclaim.schemas.after import Figures as Figures_
from flashclaim.schemas.after import Report as ReportAnswer
from flashclaim.schemas.base import encode
from flashclaim.settings import Settings
from flashclaim.store.connection import redis_url_of, sync_client, time_reply_ms
from flashclaim.tables import text_table
from flashclaim.timefmt import to_rfc3339

UNTAGGED = "untagged"
BUCKETS_MS = {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000}
T = TypeVar("T", bound=Figures_)


@dataclass(frozen=True, slots=True)
class Population:
    """Which claims a report covers: one campaign's, claims in [from_ms, to_ms), or both."""

    campaign_id: str | None = None
    from_ms: int | None = None
    to_ms: int | None = None

    def where(self) -> tuple[str, list[Any]]:
        terms: list[str] = ["1 = 1"]
        params: list[Any] = []
        if self.campaign_id is not None:
            terms.append("cl.campaign_id = ?")
            params.append(self.campaign_id)
        if self.from_ms is not None:
            terms.append("cl.claimed_at_ms >= ?")
            params.append(self.from_ms)
        if self.to_ms is not None:
            terms.append("cl.claimed_at_ms < ?")
            params.append(self.to_ms)
        return " AND ".join(terms), params


@dataclass
class Figures:
    claims: int = 0
    coupons: int = 0
    used: int = 0
    expired: int = 0
    discount_cost: dict[str, int] = field(default_factory=dict)
    orders: dict[str, tuple[str, int]] = field(default_factory=dict)  # id -> (currency, gmv)
    order_discount: dict[str, int] = field(default_factory=dict)  # of those orders' coupons
    refunded: set[str] = field(default_factory=set)  # order ids
    refunded_discount: dict[str, int] = field(default_factory=dict)

    def add(self, claims: int, coupons: int, used: int, expired: int) -> None:
        self.claims += claims
        self.coupons += coupons
        self.used += used
        self.expired += expired

    def cost(self, currency: str, amount: int) -> None:
        self.discount_cost[currency] = self.discount_cost.get(currency, 0) + amount

    def order(self, order_id: str, currency: str, gmv: int, discount: int) -> None:
        """A used coupon's order (of the orders API): counted once per group."""
        self.orders[order_id] = (currency, gmv)
        self.order_discount[currency] = self.order_discount.get(currency, 0) + discount

    def refund(self, order_id: str, currency: str, discount: int) -> None:
        self.refunded.add(order_id)
        self.refunded_discount[currency] = self.refunded_discount.get(currency, 0) + discount

    def shown(self, margin: float | None = None) -> dict[str, Any]:
        """The figures as every answer carries them (the fields of schemas' Figures)."""
        gmv: dict[str, int] = {}
        count: dict[str, int] = {}
        for currency, amount in self.orders.values():
            gmv[currency] = gmv.get(currency, 0) + amount
            count[currency] = count.get(currency, 0) + 1
        out: dict[str, Any] = {
            "claims": self.claims, "coupons": self.coupons, "used": self.used,
            "use_rate": rate(self.used, self.coupons), "expired": self.expired,
            "discount_cost": dict(sorted(self.discount_cost.items())),
            "orders": len(self.orders), "gmv": dict(sorted(gmv.items())),
            "discount_per_order": {c: per_order(self.order_discount.get(c, 0), n)
                                   for c, n in sorted(count.items())},
            "refunded_orders": len(self.refunded),
            "refunded_discount": dict(sorted(self.refunded_discount.items()))}
        if margin is not None:
            out["roi"] = {c: roi(margin, gmv[c], self.order_discount.get(c, 0))
                          for c in sorted(gmv)}
        return out


def rate(part: int, whole: int | None) -> float | None:
    """part / whole to 4 places; None when the whole is unknown or nothing."""
    return round(part / whole, 4) if whole else None


def per_order(discount: int, orders: int) -> int:
    """The discount per order to the minor unit, halves rounded up (exact integers: no
    float between)."""
    return (2 * discount + orders) // (2 * orders)


def roi(margin: float, gmv: int, discount: int) -> float | None:
    """(margin x GMV - discount) / discount to 4 places: "spend 100, save 20" on an order
    of 100 at a 30% margin is (30 - 20) / 20 = 0.5. None without a discount."""
    return round((margin * gmv - discount) / discount, 4) if discount else None


@dataclass
class Report:
    total: Figures = field(default_factory=Figures)
    by_channel: dict[str, Figures] = field(default_factory=lambda: defaultdict(Figures))
    by_segment: dict[str, Figures] = field(default_factory=lambda: defaultdict(Figures))
    by_source: dict[str, Figures] = field(default_factory=lambda: defaultdict(Figures))
    by_campaign: dict[str, Figures] = field(default_factory=lambda: defaultdict(Figures))
    timeline: dict[int, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    # coupons issued per (currency, face value) of the cash and threshold coupons (a random
    # coupon's drawn values among them): what was handed out, by value
    face_values: dict[tuple[str, int], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0]))

    def groups(self, channel: str, source: str, tags: str, campaign: str) -> list[Figures]:
        segments = [t for t in tags.split(",") if t] or [UNTAGGED]
        return [self.total, self.by_channel[channel], self.by_source[source],
                self.by_campaign[campaign], *(self.by_segment[s] for s in segments)]

    margin: float | None = None  # the operator's margin rate: ROI is shown with it

    def splits(self) -> dict[str, Any]:
        """The fields of schemas' Splits: the totals, each split, the timeline."""
        return {
            **self.total.shown(self.margin),
            "by_channel": self._split(self.by_channel, "channel", ChannelFigures),
            "by_segment": self._split(self.by_segment, "segment", SegmentFigures),
            "by_source": self._split(self.by_source, "source", SourceFigures),
            "timeline": [TimelinePoint(at=to_rfc3339(at), claims=n[0], uses=n[1])
                         for at, n in sorted(self.timeline.items())],
            "face_values": [FaceValueFigures(currency=currency, value=value, coupons=n[0],
                                             used=n[1])
                            for (currency, value), n in sorted(self.face_values.items())],
        }

    def across(self, start_ms: int, end_ms: int, bucket: str, now_ms: int) -> ReportAnswer:
        """GET /v1/admin/report: every campaign's claims made in [start, end)."""
        return ReportAnswer(
            from_=to_rfc3339(start_ms), to=to_rfc3339(end_ms), bucket=bucket,
            campaigns=self._split(self.by_campaign, "campaign_id", CampaignFigures),
            server_time=to_rfc3339(now_ms), **self.splits())

    def _split(self, groups: dict[str, Figures], name: str, shape: type[T]) -> list[T]:
        """Each group's figures, named by its key (the shape's `name` field)."""
        return [shape(**{name: key, **figures.shown(self.margin)})
                for key, figures in sorted(groups.items())]


def build_report(ledger: Ledger, population: Population, now_ms: int, bucket_ms: int,
                 margin: float | None = None) -> Report:
    """Every figure of the population in one read transaction (timeline keys: bucket
    start, epoch ms)."""
    where, params = population.where()
    joined = f"FROM claims cl JOIN coupons co ON co.claim_id = cl.claim_id WHERE {where}"
    report = Report(margin=margin)

    def work(cur: Cursor) -> Report:
        # claims and coupons per (channel, source, tags, campaign): the claim's own
        # attributes, so each claim lands in exactly one row
        cur.execute(ledger.sql(
            "SELECT COALESCE(cl.channel, ''), cl.source, cl.tags, cl.campaign_id,"
            " COUNT(DISTINCT cl.claim_id), COUNT(*),"
            " SUM(CASE WHEN co.status = 'used' THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN co.status = 'expired' OR (co.status = 'unused'"
            "     AND co.valid_until_ms <= ?) THEN 1 ELSE 0 END)"
            f" {joined} GROUP BY 1, 2, 3, 4"), [now_ms, *params])
        for channel, source, tags, campaign, claims, coupons, used, expired in cur.fetchall():
            for figures in report.groups(channel or "unknown", source, tags, campaign):
                figures.add(int(claims), int(coupons), int(used or 0), int(expired or 0))
        cur.execute(ledger.sql(
            "SELECT COALESCE(cl.channel, ''), cl.source, cl.tags, cl.campaign_id, co.currency,"
            # a gift counts at its stated cost (its value), not the item's shelf price
            " SUM(CASE WHEN co.type = 'gift' THEN co.value ELSE co.discount END)"
            f" {joined} AND co.status = 'used' GROUP BY 1, 2, 3, 4, 5"), params)
        for channel, source, tags, campaign, currency, amount in cur.fetchall():
            for figures in report.groups(channel or "unknown", source, tags, campaign):
                figures.cost(str(currency), int(amount or 0))
        # the orders the used coupons paid towards (of the orders API: its GMV is known)
        cur.execute(ledger.sql(
            "SELECT COALESCE(cl.channel, ''), cl.source, cl.tags, cl.campaign_id, co.order_id,"
            " co.currency, co.order_gmv, co.discount"
            f" {joined} AND co.status = 'used' AND co.order_gmv IS NOT NULL"), params)
        for channel, source, tags, campaign, order_id, currency, gmv, discount in cur.fetchall():
            for figures in report.groups(channel or "unknown", source, tags, campaign):
                figures.order(str(order_id), str(currency), int(gmv), int(discount or 0))
        # refunds, from the events (a refunded coupon may be in use again by now)
        cur.execute(ledger.sql(
            "SELECT COALESCE(cl.channel, ''), cl.source, cl.tags, cl.campaign_id, ev.order_id,"
            " co.currency, ev.discount FROM coupon_events ev"
            " JOIN coupons co ON co.coupon_id = ev.coupon_id"
            f" JOIN claims cl ON cl.claim_id = co.claim_id WHERE {where}"
            " AND ev.event = 'refunded'"), params)
        for channel, source, tags, campaign, order_id, currency, discount in cur.fetchall():
            for figures in report.groups(channel or "unknown", source, tags, campaign):
                figures.refund(str(order_id), str(currency), int(discount))
        cur.execute(ledger.sql(
            f"SELECT cl.claimed_at_ms / ?, COUNT(*) FROM claims cl WHERE {where} GROUP BY 1"),
            [bucket_ms, *params])
        for at, n in cur.fetchall():
            report.timeline[int(at) * bucket_ms][0] += int(n)
        cur.execute(ledger.sql(
            f"SELECT co.used_at_ms / ?, COUNT(*) {joined} AND co.status = 'used' GROUP BY 1"),
            [bucket_ms, *params])
        for at, n in cur.fetchall():
            report.timeline[int(at) * bucket_ms][1] += int(n)
        cur.execute(ledger.sql(
            "SELECT co.currency, co.value, COUNT(*),"
            " SUM(CASE WHEN co.status = 'used' THEN 1 ELSE 0 END)"
            f" {joined} AND co.value IS NOT NULL GROUP BY 1, 2"), params)
        for currency, value, n, used in cur.fetchall():
            report.face_values[(str(currency), int(value))] = [int(n), int(used or 0)]
        return report
    return ledger.run(work)


def campaign_body(report: Report, campaign_id: str, name: str | None, stock: int | None,
                  bucket: str) -> CampaignReport:
    """GET /v1/admin/campaigns/{id}/report and `flashclaim report`: issued is the stock
    (None: unlimited, or the campaign has left Redis after its retention)."""
    return CampaignReport(campaign_id=campaign_id, name=name, issued=stock,
                          claim_rate=rate(report.total.claims, stock), bucket=bucket,
                          **report.splits())


def format_report(report: CampaignReport) -> str:
    """The campaign report for a terminal: the headline figures, then each split."""
    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value * 100:.1f}%"

    r = report
    lines = [f"campaign {r.campaign_id} ({r.name or 'no longer in Redis'})",
             f"  issued {r.issued if r.issued is not None else '-'}"
             f"  claims {r.claims} ({pct(r.claim_rate)})"
             f"  coupons {r.coupons}  used {r.used} ({pct(r.use_rate)})"
             f"  expired {r.expired}  discount cost {format_amounts(r.discount_cost)}"]
    splits: list[tuple[str, list[tuple[str, Figures_]]]] = [
        ("channel", [(g.channel, g) for g in r.by_channel]),
        ("segment", [(g.segment, g) for g in r.by_segment]),
        ("source", [(g.source, g) for g in r.by_source])]
    for key, groups in splits:
        rows = [(name, str(g.claims), str(g.coupons), str(g.used), pct(g.use_rate),
                 format_amounts(g.discount_cost)) for name, g in groups]
        if rows:
            header = (key, "claims", "coupons", "used", "use rate", "discount cost")
            lines += [""] + ["  " + line for line in text_table(header, rows)]
    timeline = [(t.at, str(t.claims), str(t.uses)) for t in r.timeline]
    if timeline:
        lines += ["", f"per {r.bucket}"] + [
            "  " + line for line in text_table(("from", "claims", "uses"), timeline)]
    return "\n".join(lines)


def run_report(settings: Settings, campaign: str, bucket: str, fmt: str) -> int:
    """`flashclaim report`: the campaign's report, as a table or as the API's JSON."""
    r = sync_client(redis_url_of(settings))
    meta = r.hgetall(KeySpace(settings.namespace).campaign(campaign).meta)
    view = CampaignView.from_meta({str(k): str(v) for k, v in meta.items()}) if meta else None
    now = time_reply_ms(r.time())
    ledger_db = open_ledger(settings.ledger_dsn, settings.data_dir, must_exist=True)
    try:
        ledger_db.migrate()
        built = build_report(ledger_db, Population(campaign_id=campaign), now,
                             BUCKETS_MS[bucket])
    finally:
        ledger_db.close()
    if view is None and built.total.claims == 0:
        print(f"flashclaim report: no campaign {campaign!r} in Redis or the ledger",
              file=sys.stderr)
        return 1
    body = campaign_body(built, campaign, view.definition["name"] if view else None,
                         view.stock if view else None, bucket)
    print(encode(body).decode() if fmt == "json" else format_report(body))
    return 0
