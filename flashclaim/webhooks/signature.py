"""The signature on every delivery, as Stripe signs its webhooks:

    Flashclaim-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>

A receiver recomputes the HMAC over the timestamp and the raw body with the endpoint's
secret, compares in constant time, and refuses a timestamp older than TOLERANCE_S (a
replayed delivery). `verify` is the receiver's side, in the docs as the snippet to copy.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "Flashclaim-Signature"
TOLERANCE_S = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now: int, tolerance_s: int = TOLERANCE_S
           ) -> bool:
    """True when the header signs this body with this secret, recently enough."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
