"""One frozen configuration object, read from the environment (flags override it in cli)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

NAMESPACE_RE = re.compile(r"[A-Za-z0-9_.:-]{1,32}")
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
PUBLIC_KEY_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "ES512",
                                   "PS256", "PS384", "PS512", "EdDSA"})


class SettingsError(ValueError):
    """A configuration value is missing or malformed."""


@dataclass(frozen=True, slots=True)
class Settings:
    redis_url: str | None = None
    admin_token: str | None = None
    auth_mode: str = "header"
    data_dir: Path = Path(".flashclaim")
    namespace: str = "fc"
    ledger_dsn: str | None = None
    # A claim that Redis has not answered within this bound gets 503 (the claim may
    # still have been granted: an Idempotency-Key retry returns it).
    redis_timeout_ms: int = 500
    redis_connections: int = 64
    # Claims in flight per process beyond this are shed at once with 503 (never queued).
    max_in_flight: int = 2000
    # Which routes this process serves: "all", or "public" and "admin" when the admin API
    # listens on its own port (FLASHCLAIM_ADMIN_PORT, see cli.serve).
    role: str = "all"
    # The admin API on its own port (0: with the public API), see cli.serve.
    admin_port: int = 0
    # Optional per-client-IP limit on claims, per campaign: (taps, window ms), and the
    # header a trusted proxy sets to the client's address (else the peer address is used).
    ip_rate_limit: tuple[int, int] | None = None
    client_ip_header: str | None = None
    max_claim_body: int = 4096
    max_admin_body: int = 65536
    # HTTP limits (see flashclaim.http_server): a request body must arrive within
    # body_timeout_s; a request head within header_timeout_s and header_max_bytes; idle
    # keep-alive connections close after keepalive_s; connections beyond max_connections
    # per process are closed at once.
    body_timeout_s: float = 5.0
    header_timeout_s: float = 10.0
    header_max_bytes: int = 16_384
    keepalive_s: int = 5
    max_connections: int = 10_000
    # jwt identity mode: the algorithms accepted (never "none"; HMAC and public-key
    # algorithms never mixed), the HMAC secret or PEM public key, optional iss/aud.
    jwt_algorithms: tuple[str, ...] = ("HS256",)
    jwt_key: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_tags_claim: str = "tags"
    # The key of the redemption codes' HMAC (at least 32 characters). `serve` generates
    # one on first start and keeps it in <data dir>/code-secret when none is set.
    code_secret: str | None = None
    # The bearer token of the checkout system (redeem/release write-back): its own scope,
    # not the admin token. `serve` generates one into <data dir>/checkout-token when unset.
    checkout_token: str | None = None
    # Replica durability: before a claim is answered, WAIT until this many replicas have it
    # (at most replica_timeout_ms; fewer in time: 503, and a retry is a replay). 0: no wait.
    replica_acks: int = 0
    replica_timeout_ms: int = 100

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        e = os.environ if env is None else env
        settings = cls(
            redis_url=e.get("FLASHCLAIM_REDIS_URL") or None,
            admin_token=e.get("FLASHCLAIM_ADMIN_TOKEN") or None,
            auth_mode=e.get("FLASHCLAIM_AUTH", "header"),
            data_dir=Path(e.get("FLASHCLAIM_DATA_DIR", ".flashclaim")),
            namespace=e.get("FLASHCLAIM_NAMESPACE", "fc"),
            ledger_dsn=e.get("FLASHCLAIM_LEDGER_DSN") or None,
            redis_timeout_ms=_int(e, "FLASHCLAIM_REDIS_TIMEOUT_MS", 500),
            max_in_flight=_int(e, "FLASHCLAIM_MAX_IN_FLIGHT", 2000),
            role=e.get("FLASHCLAIM_ROLE", "all"),
            admin_port=_int(e, "FLASHCLAIM_ADMIN_PORT", 0),
            ip_rate_limit=_rate(e, "FLASHCLAIM_IP_RATE_LIMIT"),
            client_ip_header=e.get("FLASHCLAIM_CLIENT_IP_HEADER") or None,
            redis_connections=_int(e, "FLASHCLAIM_REDIS_CONNECTIONS", 64),
            body_timeout_s=_float(e, "FLASHCLAIM_HTTP_BODY_TIMEOUT_S", 5.0),
            header_timeout_s=_float(e, "FLASHCLAIM_HTTP_HEADER_TIMEOUT_S", 10.0),
            header_max_bytes=_int(e, "FLASHCLAIM_HTTP_MAX_HEADER_BYTES", 16_384),
            keepalive_s=_int(e, "FLASHCLAIM_HTTP_KEEPALIVE_S", 5),
            max_connections=_int(e, "FLASHCLAIM_HTTP_MAX_CONNECTIONS", 10_000),
            jwt_algorithms=tuple(
                a.strip() for a in e.get("FLASHCLAIM_JWT_ALGORITHMS", "HS256").split(",")
                if a.strip()),
            jwt_key=_jwt_key(e),
            jwt_issuer=e.get("FLASHCLAIM_JWT_ISSUER") or None,
            jwt_audience=e.get("FLASHCLAIM_JWT_AUDIENCE") or None,
            jwt_tags_claim=e.get("FLASHCLAIM_JWT_TAGS_CLAIM", "tags"),
            code_secret=e.get("FLASHCLAIM_CODE_SECRET") or None,
            checkout_token=e.get("FLASHCLAIM_CHECKOUT_TOKEN") or None,
            replica_acks=_int(e, "FLASHCLAIM_REPLICA_ACKS", 0),
            replica_timeout_ms=_int(e, "FLASHCLAIM_REPLICA_TIMEOUT_MS", 100),
        )
        settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.code_secret is not None and len(self.code_secret) < 32:
            raise SettingsError("FLASHCLAIM_CODE_SECRET must be at least 32 characters")
        if self.auth_mode not in ("header", "jwt"):
            raise SettingsError("FLASHCLAIM_AUTH must be 'header' or 'jwt'")
        if not NAMESPACE_RE.fullmatch(self.namespace):
            raise SettingsError("FLASHCLAIM_NAMESPACE must match " + NAMESPACE_RE.pattern)
        if not 1 <= self.redis_connections <= 10_000:
            raise SettingsError("FLASHCLAIM_REDIS_CONNECTIONS must be from 1 to 10000")
        if self.redis_url is not None and not self.redis_url.startswith(
                ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")):
            raise SettingsError("FLASHCLAIM_REDIS_URL must start with redis://, rediss://, "
                                "unix://, redis+cluster:// or rediss+cluster://")
        if self.ledger_dsn is not None and not self.ledger_dsn.startswith(
                ("postgresql://", "postgres://", "sqlite:///")):
            raise SettingsError("FLASHCLAIM_LEDGER_DSN must start with postgresql:// or "
                                "sqlite:///")
        if not 0 <= self.admin_port <= 65535:
            raise SettingsError("FLASHCLAIM_ADMIN_PORT must be a port number (1-65535)")
        if self.role not in ("all", "public", "admin"):
            raise SettingsError("FLASHCLAIM_ROLE must be all, public or admin")
        if self.max_in_flight < 1:
            raise SettingsError("FLASHCLAIM_MAX_IN_FLIGHT must be at least 1")
        if not 0 <= self.replica_acks <= 16:
            raise SettingsError("FLASHCLAIM_REPLICA_ACKS must be from 0 to 16")
        if not 1 <= self.replica_timeout_ms < self.redis_timeout_ms:
            raise SettingsError("FLASHCLAIM_REPLICA_TIMEOUT_MS must be at least 1 and below "
                                "FLASHCLAIM_REDIS_TIMEOUT_MS")
        if self.redis_timeout_ms < 10:
            raise SettingsError("FLASHCLAIM_REDIS_TIMEOUT_MS must be at least 10")
        for name, seconds in (("FLASHCLAIM_HTTP_BODY_TIMEOUT_S", self.body_timeout_s),
                              ("FLASHCLAIM_HTTP_HEADER_TIMEOUT_S", self.header_timeout_s),
                              ("FLASHCLAIM_HTTP_KEEPALIVE_S", float(self.keepalive_s))):
            if not 0.1 <= seconds <= 3600:
                raise SettingsError(f"{name} must be from 0.1 to 3600 seconds")
        if not 1024 <= self.header_max_bytes <= 1_048_576:
            raise SettingsError("FLASHCLAIM_HTTP_MAX_HEADER_BYTES must be from 1024 to 1048576")
        if self.max_connections < 1:
            raise SettingsError("FLASHCLAIM_HTTP_MAX_CONNECTIONS must be at least 1")
        if self.auth_mode == "jwt":
            self._validate_jwt()

    def _validate_jwt(self) -> None:
        algorithms = set(self.jwt_algorithms)
        allowed = HMAC_ALGORITHMS | PUBLIC_KEY_ALGORITHMS
        if not algorithms or not algorithms <= allowed:
            raise SettingsError(
                "FLASHCLAIM_JWT_ALGORITHMS must name some of " + ", ".join(sorted(allowed)))
        if algorithms & HMAC_ALGORITHMS and algorithms & PUBLIC_KEY_ALGORITHMS:
            # A public key accepted as an HMAC secret lets anyone sign tokens.
            raise SettingsError("FLASHCLAIM_JWT_ALGORITHMS must not mix HMAC and public-key ones")
        if not self.jwt_key:
            raise SettingsError("jwt mode needs FLASHCLAIM_JWT_KEY or FLASHCLAIM_JWT_KEY_FILE")
        if algorithms & HMAC_ALGORITHMS and len(self.jwt_key) < 32:
            raise SettingsError("an HMAC secret (FLASHCLAIM_JWT_KEY) needs at least 32 chars")


def _jwt_key(env: Mapping[str, str]) -> str | None:
    path = env.get("FLASHCLAIM_JWT_KEY_FILE")
    if path:
        try:
            return Path(path).read_text()
        except OSError as exc:
            raise SettingsError(f"FLASHCLAIM_JWT_KEY_FILE: {exc}") from None
    return env.get("FLASHCLAIM_JWT_KEY") or None


def _rate(env: Mapping[str, str], name: str) -> tuple[int, int] | None:
    """"50/1": at most 50 per 1 second, as (50, 1000)."""
    raw = env.get(name)
    if not raw:
        return None
    taps, _, seconds = raw.partition("/")
    try:
        limit = (int(taps), int(seconds) * 1000)
    except ValueError:
        raise SettingsError(f"{name} must look like 50/1 (taps per seconds)") from None
    if limit[0] < 1 or limit[1] < 1000:
        raise SettingsError(f"{name}: taps and seconds must be at least 1")
    return limit


_T = TypeVar("_T")


def _parsed(env: Mapping[str, str], name: str, parse: Callable[[str], _T], default: _T,
            kind: str) -> _T:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return parse(raw)
    except ValueError:
        raise SettingsError(f"{name} must be {kind}, got {raw!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    return _parsed(env, name, float, default, "a number")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return _parsed(env, name, int, default, "an integer")
