"""The claim path's vocabulary: a claim as claim.lua takes it, its decision, and the one
mapping from a decision (or a failure to get one) to the answer a client receives."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from flashclaim.errors import CLAIM_REJECTIONS, ApiError
from flashclaim.packed import join
from flashclaim.store.connection import StoreError, client_fault, store_failure
from flashclaim.store.scripts import ScriptDecision
from flashclaim.stream import Source


class ClaimCode(StrEnum):
    """Mirrors the return codes of claim.lua."""

    GRANTED = "granted"
    REPLAY = "replay"
    CODE_NOT_FOUND = "code_not_found"
    CODE_USED = "code_used"
    CODE_ALREADY_REDEEMED = "code_already_redeemed"
    CAMPAIGN_NOT_FOUND = "campaign_not_found"
    NOT_STARTED = "not_started"
    ENDED = "ended"
    PAUSED = "paused"
    NOT_ELIGIBLE = "not_eligible"
    BLOCKED = "blocked"
    RATE_LIMITED = "rate_limited"
    ALREADY_CLAIMED = "already_claimed"
    DAILY_LIMIT = "daily_limit"
    SOLD_OUT = "sold_out"
    DEVICE_REQUIRED = "device_required"
    DEVICE_LIMIT = "device_limit"
    CHALLENGE_REQUIRED = "challenge_required"
    CHALLENGE_SPENT = "challenge_spent"
    DRAW_CAMPAIGN = "draw_campaign"
    NOT_A_DRAW = "not_a_draw"
    ENTRIES_CLOSED = "entries_closed"
    ENTERED = "entered"
    BUDGET_EXHAUSTED = "budget_exhausted"
    HOLDOUT = "holdout"
    CAP_REACHED = "cap_reached"  # decided by cap_reserve.lua, before claim.lua
    CAP_DAILY_LIMIT = "cap_daily_limit"


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """One claim as claim.lua receives it (see the ARGV block of its header)."""

    claim_id: str
    dedup_token: str
    user_id: str
    tags: tuple[str, ...]
    channel: str | None
    idempotency_key: str | None
    client_ip: str | None = None  # set when the service limits taps per client IP
    ip_limit: tuple[int, int] | None = None  # (taps, window ms)
    source: Source = Source.GRAB
    source_ref: str = ""  # the grant id, or the code's hash prefix
    blocked: bool = False  # on the blocklist, as this process last read it
    # Asked again after stock (budget) moved into its bucket: the code of its last answer,
    # counted already (and so was the tap, by the rate limits); None: a first decision.
    retry_of: ClaimCode | None = None
    device_id: str = ""  # the caller's device (validated like a user id), "" when none
    challenge: str = ""  # a verified proof of work, fair.challenge.Solved.packed()
    entry: bool = False  # an entry into a drawn campaign, not a claim
    trace: tuple[str, str, str] = ("", "", "")  # keyed hashes: address, network, device
    value: int | None = None  # a grant's personal value for the pack's personal coupon

    def packed(self) -> str:
        """One ARGV string: the twenty fields joined by the unit separator (none contains
        it: ids, tags and channel are validated, an Idempotency-Key is printable ASCII)."""
        tags = "," + ",".join(self.tags) + "," if self.tags else ""
        ip, taps, window = "", "", ""
        if self.client_ip and self.ip_limit:
            ip, taps, window = self.client_ip, str(self.ip_limit[0]), str(self.ip_limit[1])
        return join(
            self.claim_id, self.dedup_token, self.user_id, tags, self.channel or "",
            self.idempotency_key or "", self.source.value, self.source_ref,
            "1" if self.blocked else "0", ip, taps, window,
            self.retry_of.value if self.retry_of else "",
            self.device_id, self.challenge, "1" if self.entry else "0", *self.trace,
            "" if self.value is None else str(self.value))


@dataclass(frozen=True, slots=True)
class ClaimDecision:
    code: ClaimCode
    payload: str  # the claim's JSON when granted or replayed; a wait in ms when limited
    holds_limit: bool = False  # the user now holds per_user_limit grants

    @classmethod
    def of(cls, reply: ScriptDecision) -> ClaimDecision:
        code, payload, holds_limit = reply
        return cls(ClaimCode(code), payload, holds_limit)


def rejection(code: ClaimCode, payload: str = "") -> ApiError:
    """The answer to a claim claim.lua (or the gate, on its behalf) refused."""
    status, message = CLAIM_REJECTIONS[code]
    retry_after = None
    if code in (ClaimCode.RATE_LIMITED, ClaimCode.DAILY_LIMIT, ClaimCode.CAP_DAILY_LIMIT
                ) and payload:
        retry_after = max(1, math.ceil(int(payload) / 1000))
    return ApiError(status, code.value, message, retry_after=retry_after)


def failure_answer(exc: BaseException) -> ApiError | None:
    """The answer to a request that failed: its own ApiError; a store failure (or a fault
    inside the Redis client, which stands for a lost connection) is 503 with Retry-After;
    anything else is a bug (None: the caller answers 500 and logs it)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, StoreError):
        return store_failure(exc)
    fault = client_fault(exc)
    return None if fault is None else store_failure(fault)
