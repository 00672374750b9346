"""The claim stream record: the schema shared by the producer (claim.lua) and consumers.

One stream per campaign (keys.CampaignKeys.stream); the registry sorted set
(keys.KeySpace.registry) lists every campaign id, so a consumer finds every stream.
Entry fields, all strings on the wire:
  v                schema version, "3" ("1" entries, written before sources existed,
                   are still read: source "grab", no tags; "2" entries lack the hashes)
  claim_id         unique id of the grant (also the server-made request id)
  campaign_id      the campaign
  user_id          who claimed
  seq              1-based order of the grant within its campaign
  claimed_at       epoch ms, Redis server clock
  channel          "" when the claim named none
  idempotency_key  "" when the client sent none
  source           how it was issued: "grab", "grant", "code" or "draw"
  source_ref       the grant id, or the code's hash prefix ("" for a grab or a draw)
  tags             the claimant's segment tags as ",t1,t2," ("" when none)
  claim            the whole claim as JSON (times in epoch ms)
  ip_hash          keyed hashes (16 hex digits, flashclaim/fair/trace.py) of the client's
  net_hash         address, of its /24 or /64, and of its device; "" when unknown (a grant,
  device_hash      a draw, a request without a device id). Never the raw values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

SCHEMA_VERSION = 3
LEDGER_GROUP = "ledger"  # the ledger's consumer group on every claim and event stream
FIELDS = (
    "v", "claim_id", "campaign_id", "user_id", "seq", "claimed_at", "channel",
    "idempotency_key", "source", "source_ref", "tags", "claim", "ip_hash", "net_hash",
    "device_hash",
)


class Source(StrEnum):
    """How a coupon was issued; recorded with every grant (the record's `source`)."""

    GRAB = "grab"  # a user's tap on the grab button
    GRANT = "grant"  # an operator grant or a server-to-server trigger
    CODE = "code"  # a redemption code
    DRAW = "draw"  # a winner of a drawn campaign's draw


# Fields older entries lack, and what they mean there.
_V2_DEFAULTS = {"ip_hash": "", "net_hash": "", "device_hash": ""}
_OLDER_DEFAULTS = {"1": {"source": "grab", "source_ref": "", "tags": "", **_V2_DEFAULTS},
                   "2": _V2_DEFAULTS}


class RecordError(ValueError):
    """An entry that does not follow the schema (a poison entry for a consumer)."""


@dataclass(frozen=True, slots=True)
class ClaimRecord:
    entry_id: str
    claim_id: str
    campaign_id: str
    user_id: str
    seq: int
    claimed_at: int
    channel: str | None
    idempotency_key: str | None
    claim: dict[str, Any]
    source: str = "grab"
    source_ref: str = ""
    tags: tuple[str, ...] = ()
    ip_hash: str = ""
    net_hash: str = ""
    device_hash: str = ""

    @classmethod
    def decode(cls, entry_id: bytes | str, fields: dict[Any, Any]) -> ClaimRecord:
        f = {_s(k): _s(v) for k, v in fields.items()}
        older = _OLDER_DEFAULTS.get(f.get("v", ""))
        if older is not None:
            f = {**older, **f}
        if f.get("v") not in ("1", "2", str(SCHEMA_VERSION)):
            raise RecordError(f"entry {_s(entry_id)} has unknown schema version {f.get('v')!r}")
        missing = [name for name in FIELDS if name not in f]
        if missing:
            raise RecordError(f"entry {_s(entry_id)} lacks {', '.join(missing)}")
        try:
            claim = orjson.loads(f["claim"])
            record = cls(
                entry_id=_s(entry_id),
                claim_id=f["claim_id"],
                campaign_id=f["campaign_id"],
                user_id=f["user_id"],
                seq=int(f["seq"]),
                claimed_at=int(f["claimed_at"]),
                channel=f["channel"] or None,
                idempotency_key=f["idempotency_key"] or None,
                claim=claim,
                source=f["source"],
                source_ref=f["source_ref"],
                tags=tuple(t for t in f["tags"].split(",") if t),
                ip_hash=f["ip_hash"], net_hash=f["net_hash"], device_hash=f["device_hash"],
            )
        except (ValueError, orjson.JSONDecodeError) as exc:
            raise RecordError(f"entry {_s(entry_id)} is malformed: {exc}") from None
        if not isinstance(claim, dict) or claim.get("claim_id") != record.claim_id:
            raise RecordError(f"entry {_s(entry_id)} carries a claim that does not match it")
        return record

    def fields(self) -> dict[str, str]:
        """The entry's fields as claim.lua writes them (for a copy, e.g. a dead letter)."""
        values = (str(SCHEMA_VERSION), self.claim_id, self.campaign_id, self.user_id,
                  str(self.seq), str(self.claimed_at), self.channel or "",
                  self.idempotency_key or "", self.source, self.source_ref,
                  "," + ",".join(self.tags) + "," if self.tags else "",
                  orjson.dumps(self.claim).decode(), self.ip_hash, self.net_hash,
                  self.device_hash)
        return dict(zip(FIELDS, values, strict=True))


ENTRY_ID_RE = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
LAST_ENTRY = (2**64 - 1, 2**64 - 1)  # both halves of an entry id are unsigned 64-bit


def entry_order(entry_id: str) -> tuple[int, int]:
    """A stream entry id ("<ms>-<seq>") as a sortable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


# A records cursor: an entry id, "<bucket>/" before it on a campaign with buckets.
RECORDS_CURSOR_RE = re.compile(r"(?:[0-9]{1,2}/)?[0-9]{1,20}-[0-9]{1,20}")


def split_records_cursor(value: str) -> tuple[int, str] | None:
    """(bucket, entry id) of a records cursor; None when it is not one Redis accepts."""
    if RECORDS_CURSOR_RE.fullmatch(value) is None:
        return None
    bucket, _, entry_id = value.rpartition("/")
    return (int(bucket or 0), entry_id) if is_entry_id(entry_id) else None


def is_entry_id(value: str) -> bool:
    """A complete entry id that Redis accepts ("<ms>-<seq>", each within 64 bits)."""
    return ENTRY_ID_RE.fullmatch(value) is not None and max(entry_order(value)) < 2**64


PAGE = 1000  # entries per XRANGE when a whole stream is read


def next_page_start(page: list[Any], limit: int = PAGE) -> str | None:
    """Where the XRANGE after this page starts ("(<last id>": exclusive), or None when
    this page was the last (shorter than asked for). Sync and async readers share it."""
    if len(page) < limit:
        return None
    last = page[-1][0]
    return "(" + (last.decode() if isinstance(last, bytes) else str(last))


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
