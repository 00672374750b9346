"""Redeeming a code: check it offline, limit failures, find its campaign, let claim.lua
decide (the code's uses are part of the campaign's one atomic decision)."""

from __future__ import annotations

import math

from flashclaim.claim.decision import ClaimCode, rejection
from flashclaim.claim.identity import Identity
from flashclaim.claim.service import ClaimOutcome, ClaimService
from flashclaim.codes import code_hash, normalize, slot_of, slot_tag
from flashclaim.errors import ApiError
from flashclaim.keys import KeySpace
from flashclaim.store.code_store import CodeStore
from flashclaim.stream import Source


class Redeemer:
    def __init__(self, codes: CodeStore, claims: ClaimService, keyspace: KeySpace) -> None:
        self._codes = codes
        self._claims = claims
        self._keyspace = keyspace

    async def redeem(self, typed: str, who: Identity, channel: str | None,
                     idempotency_key: str | None, client_ip: str) -> ClaimOutcome:
        code = normalize(typed)
        if code is None:  # a typo the check character catches: no Redis call at all
            raise rejection(ClaimCode.CODE_NOT_FOUND)
        secret = self._codes.secret
        wait_ms = await self._codes.take_attempt(who.user_id, client_ip)
        if wait_ms is not None:
            raise ApiError(429, "rate_limited", "Too many wrong codes; try again later.",
                           retry_after=max(1, math.ceil(wait_ms / 1000)))
        hashed = code_hash(secret, code)
        slot_codes = f"{self._keyspace.namespace}:{{{slot_tag(slot_of(code))}}}:codes"
        campaign_id = await self._codes.owner(slot_codes, hashed)
        if campaign_id is None:
            await self._codes.failed(client_ip)
            raise rejection(ClaimCode.CODE_NOT_FOUND)
        try:
            outcome = await self._claims.claim(campaign_id, who, channel, idempotency_key,
                                               client_ip, Source.CODE, hashed)
        except ApiError as exc:
            if exc.code == ClaimCode.CODE_NOT_FOUND:  # its campaign is gone: a failure
                await self._codes.failed(client_ip)
            else:
                await self._codes.give_back(who.user_id)
            raise
        await self._codes.give_back(who.user_id)
        return outcome
