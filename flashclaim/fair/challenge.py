"""Proof of work for the campaigns that ask for it (`"challenge": {"difficulty": bits}`).

A token is stateless: "<expires ms>.<bits>.<token id>.<signature>", the signature an
HMAC over the campaign, the user, the expiry, the bits and the id, so it is bound to
one user and one campaign and verified with no Redis call. The client finds a decimal
nonce such that SHA-256(token + ":" + nonce) starts with `bits` zero bits. Checking a
solution costs one hash (and one HMAC); spending it (once) is claim.lua's, atomically
with the decision, through the token id.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from flashclaim.errors import ApiError
from flashclaim.validation import MAX_NONCE_DIGITS, ascii_int

TOKEN_TTL_MS = 120_000  # long enough to solve and tap; short enough to keep the spent set small
_TOKEN_RE = re.compile(r"([0-9]{1,15})\.([0-9]{1,2})\.([0-9a-f]{32})\.([0-9a-f]{64})")


def challenge_invalid(message: str) -> ApiError:
    return ApiError(403, "challenge_invalid", message)


def leading_zero_bits(digest: bytes) -> int:
    """How many of the digest's first bits are zero."""
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()


def solves(token: str, nonce: str, bits: int) -> bool:
    digest = hashlib.sha256(f"{token}:{nonce}".encode()).digest()
    return leading_zero_bits(digest) >= bits


def solve(token: str, bits: int) -> str:
    """A nonce for the token (what a client does; tools and tests use it)."""
    nonce = 0
    while not solves(token, str(nonce), bits):
        nonce += 1
    return str(nonce)


@dataclass(frozen=True, slots=True)
class Solved:
    """A verified solution, as claim.lua spends it."""

    token_id: str
    expires_ms: int
    bits: int

    def packed(self) -> str:
        return f"{self.token_id}:{self.expires_ms}:{self.bits}"


class Challenges:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def _signature(self, campaign_id: str, user_id: str, expires_ms: int, bits: int,
                   token_id: str) -> str:
        message = f"{campaign_id}\x1f{user_id}\x1f{expires_ms}\x1f{bits}\x1f{token_id}"
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    def issue(self, campaign_id: str, user_id: str, bits: int, now_ms: int) -> str:
        expires_ms = now_ms + TOKEN_TTL_MS
        token_id = secrets.token_hex(16)
        signature = self._signature(campaign_id, user_id, expires_ms, bits, token_id)
        return f"{expires_ms}.{bits}.{token_id}.{signature}"

    def verify(self, campaign_id: str, user_id: str, token: object, nonce: object,
               now_ms: int) -> Solved:
        """The solution, checked: made for this user and campaign, not expired, solved.
        Any failure is 403 challenge_invalid (nothing was spent)."""
        if not isinstance(token, str) or not isinstance(nonce, str):
            raise challenge_invalid("challenge and nonce must be strings.")
        match = _TOKEN_RE.fullmatch(token)
        if match is None or ascii_int(nonce, MAX_NONCE_DIGITS) is None:
            raise challenge_invalid("This is not a challenge token and a decimal nonce.")
        expires_ms, bits, token_id = int(match[1]), int(match[2]), match[3]
        expected = self._signature(campaign_id, user_id, expires_ms, bits, token_id)
        if not hmac.compare_digest(expected, match[4]):
            raise challenge_invalid("This challenge was not made for this user and campaign.")
        if expires_ms <= now_ms:
            raise challenge_invalid("This challenge has expired; get a new one.")
        if not solves(token, nonce, bits):
            raise challenge_invalid("The nonce does not solve this challenge.")
        return Solved(token_id, expires_ms, bits)
