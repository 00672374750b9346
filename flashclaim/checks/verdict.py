"""The load-test verdict: what clients saw against what the service recorded.

A pure function over facts, so the Locust scenarios, the benchmark and the tests
share one judge, and a planted breach can be shown to fail it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from flashclaim.checks.invariants import (
    Grant,
    answered_breaches,
    counter_breaches,
    record_breaches,
    stream_count_breaches,
    summarize,
)
from flashclaim.tables import text_table


@dataclass
class ClientFacts:
    """What load-generating clients saw for one campaign (merged over all workers)."""

    granted: dict[str, str] = field(default_factory=dict)  # claim_id -> user_id, from 201s
    sold_out_seen: bool = False  # some client was told 410 sold_out
    server_errors: int = 0  # 5xx answers and failed connections

    def merge(self, other: ClientFacts) -> None:
        self.granted.update(other.granted)
        self.sold_out_seen |= other.sold_out_seen
        self.server_errors += other.server_errors

    def to_wire(self) -> dict[str, object]:
        return {"granted": self.granted, "sold_out_seen": self.sold_out_seen,
                "server_errors": self.server_errors}

    @classmethod
    def from_wire(cls, data: dict[str, object]) -> ClientFacts:
        granted = data.get("granted", {})
        errors = data.get("server_errors", 0)
        return cls(dict(granted) if isinstance(granted, dict) else {},
                   bool(data.get("sold_out_seen")), int(errors) if isinstance(errors, int) else 0)


@dataclass
class ServerFacts:
    """What the service recorded for one campaign (admin stats and the stream's records)."""

    stock: int
    granted: int
    recorded: int  # stream entries ever added
    per_user_limit: int
    records: list[tuple[str, str, int]]  # (claim_id, user_id, seq) for every stream record
    eligible_users_exist: bool = True  # False: nobody in the test may be granted anything
    remaining: int | None = None  # None: not read (taken as stock - granted)
    code_uses: dict[str, int] = field(default_factory=dict)  # code hash -> grants by it
    uses_per_code: int = 1


@dataclass(frozen=True)
class Breach:
    campaign_id: str
    what: str


def judge(campaign_id: str, client: ClientFacts, server: ServerFacts) -> list[Breach]:
    """Records = grants from every source (taps, operator grants, codes): the stream holds
    one record per grant, and every grant a client was answered is among them."""
    remaining = server.stock - server.granted if server.remaining is None else server.remaining
    out = counter_breaches(server.stock, remaining, server.granted)
    if client.sold_out_seen and server.granted < server.stock:
        out.append(f"undersold: clients were told sold out at {server.granted} of {server.stock}")
    out += stream_count_breaches(server.recorded, server.granted)
    grants = [Grant(claim_id, user, seq) for claim_id, user, seq in server.records]
    out += record_breaches(summarize(grants), granted=server.granted,
                           per_user_limit=server.per_user_limit, where="stream", complete=True)
    out += answered_breaches(client.granted, {g.claim_id for g in grants}, "stream")
    seen_per_user = Counter(client.granted.values())
    over_seen = sorted(u for u, n in seen_per_user.items() if n > server.per_user_limit)
    if over_seen:
        out.append(f"clients saw {over_seen[0]} granted {seen_per_user[over_seen[0]]} times, "
                   f"above per_user_limit {server.per_user_limit}")
    if not server.eligible_users_exist and (server.granted or client.granted):
        out.append(f"granted {server.granted} to users who are not eligible")
    overused = sorted(c for c, n in server.code_uses.items() if n > server.uses_per_code)
    if overused:
        out.append(f"duplicated: {len(overused)} codes redeemed more than "
                   f"{server.uses_per_code} times, e.g. {overused[0][:8]}")
    if client.server_errors:
        out.append(f"{client.server_errors} server errors (5xx or failed connections)")
    return [Breach(campaign_id, what) for what in out]


def format_verdict(rows: list[tuple[str, ClientFacts, ServerFacts]],
                   breaches: list[Breach]) -> str:
    header = ("campaign", "stock", "granted", "recorded", "201 seen", "verdict")
    bad = {b.campaign_id for b in breaches}
    lines = text_table(header, [
        (campaign_id, str(server.stock), str(server.granted), str(server.recorded),
         str(len(client.granted)), "BREACH" if campaign_id in bad else "ok")
        for campaign_id, client, server in rows])
    lines += [f"  {b.campaign_id}: {b.what}" for b in breaches]
    lines.append("VERDICT: " + ("FAIL" if breaches else "PASS (no oversell, loss or duplicate)"))
    return "\n".join(lines)
