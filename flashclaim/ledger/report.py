"""The figures a campaign is judged by, computed from the ledger.

The population is a set of claims: one campaign's, or every campaign's claims made in
a window [from, to). Of it:

- claims: grants (a pack of several coupons is one claim); claim_rate = claims / issued,
  where issued is the campaign's stock (unknown for unlimited stock or across campaigns);
- coupons: coupons those claims carried; used: of them, used now (redeemed and not
  released); use_rate = used / coupons; expired: unused past valid_until;
- discount_cost: what the used coupons took off orders, per currency, minor units;
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

    def add(self, claims: int, coupons: int, used: int, expired: int) -> None:
        self.claims += claims
        self.coupons += coupons
        self.used += used
        self.expired += expired

    def cost(self, currency: str, amount: int) -> None:
        self.discount_cost[currency] = self.discount_cost.get(currency, 0) + amount

    def shown(self) -> dict[str, Any]:
        """The figures as every answer carries them (the fields of schemas' Figures)."""
        return {"claims": self.claims, "coupons": self.coupons, "used": self.used,
                "use_rate": rate(self.used, self.coupons), "expired": self.expired,
                "discount_cost": dict(sorted(self.discount_cost.items()))}


def rate(part: int, whole: int | None) -> float | None:
    """part / whole to 4 places; None when the whole is unknown or nothing."""
    return round(part / whole, 4) if whole else None


@dataclass
class Report:
    total: Figures = field(default_factory=Figures)
    by_channel: dict[str, Figures] = field(default_factory=lambda: defaultdict(Figures))
    by_segment: dict[str, Figures] = field(default_factory=lambda: defaultdict(Figures))
    by_source: dict[str, Figures] = field(default_factory=lambda: defaultdict(Figures))
    by_campaign: dict[str, Figures] = field(default_factory=lambda: defaultdict(Figures))
    timeline: dict[int, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))

    def groups(self, channel: str, source: str, tags: str, campaign: str) -> list[Figures]:
        segments = [t for t in tags.split(",") if t] or [UNTAGGED]
        return [self.total, self.by_channel[channel], self.by_source[source],
                self.by_campaign[campaign], *(self.by_segment[s] for s in segments)]

    def splits(self) -> dict[str, Any]:
        """The fields of schemas' Splits: the totals, each split, the timeline."""
        return {
            **self.total.shown(),
            "by_channel": _split(self.by_channel, "channel", ChannelFigures),
            "by_segment": _split(self.by_segment, "segment", SegmentFigures),
            "by_source": _split(self.by_source, "source", SourceFigures),
            "timeline": [TimelinePoint(at=to_rfc3339(at), claims=n[0], uses=n[1])
                         for at, n in sorted(self.timeline.items())],
        }

    def across(self, start_ms: int, end_ms: int, bucket: str, now_ms: int) -> ReportAnswer:
        """GET /v1/admin/report: every campaign's claims made in [start, end)."""
        return ReportAnswer(
            from_=to_rfc3339(start_ms), to=to_rfc3339(end_ms), bucket=bucket,
            campaigns=_split(self.by_campaign, "campaign_id", CampaignFigures),
            server_time=to_rfc3339(now_ms), **self.splits())


def _split(groups: dict[str, Figures], name: str, shape: type[T]) -> list[T]:
    """Each group's figures, named by its key (the shape's `name` field)."""
    return [shape(**{name: key, **figures.shown()}) for key, figures in sorted(groups.items())]


def build_report(ledger: Ledger, population: Population, now_ms: int, bucket_ms: int) -> Report:
    """Every figure of the population in one read transaction (timeline keys: bucket
    start, epoch ms)."""
    where, params = population.where()
    joined = f"FROM claims cl JOIN coupons co ON co.claim_id = cl.claim_id WHERE {where}"
    report = Report()

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
            f" SUM(co.discount) {joined} AND co.status = 'used' GROUP BY 1, 2, 3, 4, 5"), params)
        for channel, source, tags, campaign, currency, amount in cur.fetchall():
            for figures in report.groups(channel or "unknown", source, tags, campaign):
                figures.cost(str(currency), int(amount or 0))
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
