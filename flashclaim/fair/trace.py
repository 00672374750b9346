"""Where a claim came from, as the stream records it: keyed hashes, never raw values.

An investigation and the risk detectors need to group claims by address, by network
(/24 for IPv4, /64 for IPv6) and by device, not to know them: each is recorded as the
first 16 hex digits of an HMAC-SHA256 under the service's fairness key. Without the key
a hash cannot be turned back into an address by trying all 2^32 of them.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from functools import lru_cache

Trace = tuple[str, str, str]  # (address, network, device) hashes; "" for what is unknown
NO_TRACE: Trace = ("", "", "")


def network_of(address: str) -> str:
    """The /24 of an IPv4 address, the /64 of an IPv6 one ("" when it is not an address)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ""
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


class Tracer:
    def __init__(self, key: bytes) -> None:
        self._key = key
        # a crowd taps from fewer addresses than it has members: hashed once each (bounded)
        self._hash = lru_cache(maxsize=65_536)(self._keyed)

    def _keyed(self, kind: str, value: str) -> str:
        if not value:
            return ""
        digest = hmac.new(self._key, f"{kind}:{value}".encode(), hashlib.sha256)
        return digest.hexdigest()[:16]

    def of(self, address: str | None, device: str) -> Trace:
        address = address or ""
        return (self._hash("ip", address), self._hash("net", network_of(address)),
                self._hash("device", device))

    def address(self, address: str) -> str:
        """The hash an address is recorded under (to look an address up)."""
        return self._hash("ip", address)
