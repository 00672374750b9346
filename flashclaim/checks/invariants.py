"""The promises, judged in one place: no oversell, nothing lost, nothing duplicated.

The audit (Redis and its stream), reconcile (Redis, stream and SQL ledger), the
load-test verdict and the demo all judge through these functions, over whatever they
read: the counters of a campaign, and a summary of a set of grant records (built here
from records in hand, or by the ledger's SQL aggregates). Pure functions over facts,
so each check is shown to fail on a planted breach in the tests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from flashclaim.coupons import ALL_EVENTS


@dataclass(frozen=True, slots=True)
class Grant:
    """One record of a grant, wherever it was read (stream, ledger, a client's 201)."""

    claim_id: str
    user_id: str
    seq: int


@dataclass(frozen=True, slots=True)
class RecordSummary:
    """What a set of grant records holds, in the terms the promises are judged in."""

    rows: int
    distinct_claim_ids: int
    distinct_seqs: int
    min_seq: int | None
    max_seq: int | None
    max_per_user: int


def summarize(grants: Iterable[Grant]) -> RecordSummary:
    grants = list(grants)
    seqs = [g.seq for g in grants]
    per_user = Counter(g.user_id for g in grants)
    return RecordSummary(
        rows=len(grants), distinct_claim_ids=len({g.claim_id for g in grants}),
        distinct_seqs=len(set(seqs)), min_seq=min(seqs, default=None),
        max_seq=max(seqs, default=None), max_per_user=max(per_user.values(), default=0))


def counter_breaches(stock: int | None, remaining: int | None, granted: int) -> list[str]:
    """A campaign's own counters: granted never above stock, stock = granted + remaining.
    Unlimited stock (None) has no remaining to keep."""
    if stock is None or remaining is None:
        both = stock is None and remaining is None
        return [] if both else [f"stock {stock} and remaining {remaining}: only one is unlimited"]
    out = []
    if remaining < 0:
        out.append(f"remaining is negative ({remaining})")
    if granted > stock:
        out.append(f"oversold: granted {granted} > stock {stock}")
    if stock != granted + remaining:
        out.append(f"stock {stock} != granted {granted} + remaining {remaining}")
    return out


def budget_breaches(budget: int | None, committed: int, granted: int, unit_cost: int
                    ) -> list[str]:
    """A budget's counters (one bucket's, read atomically): every grant committed its
    pack's face value, and never more than the budget in all (overspent is an oversell
    of money)."""
    if budget is None:
        return []
    out = []
    if committed > budget:
        out.append(f"oversold: budget overspent, committed {committed} > budget {budget}")
    if committed != granted * unit_cost:
        out.append(f"budget committed {committed} != granted {granted} x unit cost {unit_cost}")
    return out


def stream_count_breaches(added: int, granted: int) -> list[str]:
    """One stream entry ever added per grant (entries-added survives trimming)."""
    return [] if added == granted else [f"stream: {added} records for {granted} grants"]


def lost_breaches(rows: int, expected_rows: int, where: str) -> list[str]:
    """At least `expected_rows` records (the grants, less any still on their way)."""
    if rows >= expected_rows:
        return []
    return [f"{where}: lost: {expected_rows - rows} grants have no record"]


def record_breaches(s: RecordSummary, *, granted: int, per_user_limit: int, where: str,
                    complete: bool, top_seq: int | None = None) -> list[str]:
    """A set of grant records against the campaign's `granted` counter. complete: the
    set must hold every grant (else it may be partial: a trimmed stream, ledger lag).
    top_seq: the highest seq granted, when seqs are not 1..granted (buckets interleave)."""
    top = granted if top_seq is None else top_seq
    out = lost_breaches(s.rows, granted, where) if complete else []
    if s.rows > granted:
        out.append(f"{where}: extra: {s.rows} records for {granted} grants")
    if s.distinct_claim_ids < s.rows:
        out.append(f"{where}: duplicated claim_id in {s.rows - s.distinct_claim_ids} records")
    if s.distinct_seqs < s.rows:
        out.append(f"{where}: duplicated seq in {s.rows - s.distinct_seqs} records")
    if s.rows and ((s.min_seq or 0) < 1 or (s.max_seq or 0) > top):
        out.append(f"{where}: seq outside 1..{top}: {s.min_seq}..{s.max_seq}")
    elif complete and s.distinct_seqs < granted:
        out.append(f"{where}: seq gap: {granted - s.distinct_seqs} of 1..{granted} have no record")
    if s.max_per_user > per_user_limit:
        out.append(f"{where}: above per_user_limit: a user holds {s.max_per_user} claims, "
                   f"limit {per_user_limit}")
    return out


def answered_breaches(answered: Iterable[str], recorded: set[str], where: str) -> list[str]:
    """Every claim a client was answered 201 for is recorded, and none was answered twice."""
    answered = list(answered)
    out = []
    lost = sorted(set(answered) - recorded)
    if lost:
        out.append(f"{where}: lost: {len(lost)} claims answered 201 are not recorded, "
                   f"e.g. {lost[0]}")
    if len(set(answered)) < len(answered):
        out.append(f"duplicated: {len(answered) - len(set(answered))} claims answered 201 twice")
    return out


@dataclass(frozen=True, slots=True)
class Issued:
    """One grant record with what the issuing rules are judged on."""

    user_id: str
    claimed_at: int  # epoch ms, Redis clock
    tags: tuple[str, ...]


# A block is seen by every service within one blocklist refresh (1 s) and the call in
# flight: grants later than this after the block are breaches.
BLOCK_STALENESS_MS = 2000


def daily_breaches(issued: Iterable[Issued], daily_limit: int | None,
                   day_of: Callable[[int], int], where: str) -> list[str]:
    """Nobody above the daily limit on any day (day_of: epoch ms -> the campaign's day)."""
    if daily_limit is None:
        return []
    per_day = Counter((i.user_id, day_of(i.claimed_at)) for i in issued)
    over = sorted((u, n) for (u, _), n in per_day.items() if n > daily_limit)
    if not over:
        return []
    return [f"{where}: above per_user_daily_limit: {over[0][0]} got {over[0][1]} in one day, "
            f"limit {daily_limit} ({len(over)} user-days)"]


def exclusion_breaches(issued: Iterable[Issued], excluded: Iterable[str], where: str
                       ) -> list[str]:
    """No grant to a user holding an excluded segment."""
    banned = set(excluded)
    hits = sorted({i.user_id for i in issued if banned & set(i.tags)})
    return [f"{where}: excluded users hold coupons: {len(hits)}, e.g. {hits[0]}"] if hits else []


def blocked_breaches(issued: Iterable[Issued], blocked_at: dict[str, int], where: str
                     ) -> list[str]:
    """No grant to a blocked user later than the blocklist's staleness bound."""
    hits = sorted({i.user_id for i in issued if i.user_id in blocked_at and
                   i.claimed_at >= blocked_at[i.user_id] + BLOCK_STALENESS_MS})
    return [f"{where}: blocked users got coupons: {len(hits)}, e.g. {hits[0]}"] if hits else []


def tally(breaches: Iterable[str]) -> dict[str, int]:
    """How many findings of each kind the promises name: oversold, lost, duplicated."""
    kinds = {"oversold": ("oversold",), "lost": ("lost",), "duplicated": ("duplicated", "extra")}
    found = list(breaches)
    return {kind: sum(1 for b in found if any(word in b for word in words))
            for kind, words in kinds.items()}


@dataclass(frozen=True, slots=True)
class EventCounts:
    """Coupon events of one campaign, by kind (coupons.ALL_EVENTS)."""

    redeemed: int = 0  # the write-back's
    released: int = 0
    locked: int = 0  # the orders'
    confirmed: int = 0
    unlocked: int = 0
    refunded: int = 0

    @classmethod
    def of(cls, counts: Mapping[str, int]) -> EventCounts:
        return cls(**{name: int(counts.get(name, 0)) for name in ALL_EVENTS})

    @property
    def used(self) -> int:
        """Coupons in use, as the events tell it: redeemed and not released, confirmed by
        an order and not refunded."""
        return self.redeemed - self.released + self.confirmed - self.refunded

    @property
    def locked_now(self) -> int:
        """Coupons an order holds, as the events tell it: locked, not yet confirmed or
        unlocked (an order's coupon is confirmed only while locked)."""
        return self.locked - self.unlocked - self.confirmed


def redemption_breaches(before: EventCounts, after: EventCounts, ledger: EventCounts,
                        ledger_used: int, caught_up: bool, ledger_locked: int = 0
                        ) -> list[str]:
    """The ledger's coupon events against those Redis wrote, read once before the ledger
    (`before`) and once after (`after`): events only ever add up, so the ledger holds at
    most `after`, and, once it has caught up with the event streams, at least `before`.
    When nothing changed meanwhile, its used and locked coupons are what the events say."""
    out = []
    for name in ALL_EVENTS:
        have, most, least = (getattr(x, name) for x in (ledger, after, before))
        if have > most:
            out.append(f"ledger: extra: {have} {name} events, Redis wrote {most}")
        if caught_up and have < least:
            out.append(f"ledger: lost: {least - have} {name} events have no record")
    if caught_up and before == after == ledger:
        if ledger_used != ledger.used:
            out.append(f"ledger: {ledger_used} coupons used, the events say {ledger.used}")
        if ledger_locked != ledger.locked_now:
            out.append(f"ledger: {ledger_locked} coupons locked, the events say "
                       f"{ledger.locked_now}")
    return out
