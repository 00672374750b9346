"""One frozen configuration object, read from the environment (flags override it in cli).

Each setting is declared once, as a field: default, environment variable, bounds."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

NAMESPACE_RE = re.compile(r"[A-Za-z0-9_.:-]{1,32}")
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
PUBLIC_KEY_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "ES512",
                                   "PS256", "PS384", "PS512", "EdDSA"})


class SettingsError(ValueError):
    """A configuration value is missing or malformed."""


@dataclass(frozen=True, slots=True)
class Env:
    """Where a setting comes from and what it may be: its environment variable, how the
    text becomes a value, and its bounds (a number) or choices (a word)."""

    name: str
    parse: Callable[[str], Any] = str
    kind: str = "a string"  # what the text must be, for the error
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()


def setting(default: Any, env: str, parse: Callable[[str], Any] = str, kind: str = "a string",
            lo: float | None = None, hi: float | None = None,
            choices: tuple[str, ...] = ()) -> Any:
    """A setting, declared once: its default, its environment variable, its bounds."""
    return field(default=default,
                 metadata={"env": Env(env, parse, kind, lo, hi, choices)})


def _words(text: str) -> tuple[str, ...]:
    return tuple(w.strip() for w in text.split(",") if w.strip())


def _rate(text: str) -> tuple[int, int]:
    """"50/1": at most 50 per 1 second, as (50, 1000)."""
    taps, _, seconds = text.partition("/")
    limit = (int(taps), int(seconds) * 1000)
    if limit[0] < 1 or limit[1] < 1000:
        raise ValueError("taps and seconds must be at least 1")
    return limit


INT, NUMBER = (int, "an integer"), (float, "a number")
DEFAULT_DATA_DIR = Path(".flashclaim")


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of the service: its default, environment variable and bounds are the
    field's declaration (README.md's settings table lists them; a test keeps it true)."""

    redis_url: str | None = setting(None, "FLASHCLAIM_REDIS_URL")
    admin_token: str | None = setting(None, "FLASHCLAIM_ADMIN_TOKEN")
    auth_mode: str = setting("header", "FLASHCLAIM_AUTH", choices=("header", "jwt"))
    data_dir: Path = setting(DEFAULT_DATA_DIR, "FLASHCLAIM_DATA_DIR", Path, "a path")
    namespace: str = setting("fc", "FLASHCLAIM_NAMESPACE")
    ledger_dsn: str | None = setting(None, "FLASHCLAIM_LEDGER_DSN")
    # A claim that Redis has not answered within this bound gets 503 (the claim may
    # still have been granted: an Idempotency-Key retry returns it).
    redis_timeout_ms: int = setting(500, "FLASHCLAIM_REDIS_TIMEOUT_MS", *INT, lo=10)
    redis_connections: int = setting(64, "FLASHCLAIM_REDIS_CONNECTIONS", *INT, lo=1, hi=10_000)
    # Claims in flight per process beyond this are shed at once with 503 (never queued).
    max_in_flight: int = setting(2000, "FLASHCLAIM_MAX_IN_FLIGHT", *INT, lo=1)
    # Which routes this process serves: "all", or "public" and "admin" when the admin API
    # listens on its own port (FLASHCLAIM_ADMIN_PORT, see cli.serve).
    role: str = setting("all", "FLASHCLAIM_ROLE", choices=("all", "public", "admin"))
    # The admin API on its own port (0: with the public API), see cli.serve.
    admin_port: int = setting(0, "FLASHCLAIM_ADMIN_PORT", *INT, lo=0, hi=65535)
    # Optional per-client-IP limit on claims, per campaign: (taps, window ms), and the
    # header a trusted proxy sets to the client's address (else the peer address is used).
    ip_rate_limit: tuple[int, int] | None = setting(
        None, "FLASHCLAIM_IP_RATE_LIMIT", _rate, "taps/seconds, such as 50/1")
    client_ip_header: str | None = setting(None, "FLASHCLAIM_CLIENT_IP_HEADER")
    max_claim_body: int = 4096  # (not configurable)
    max_admin_body: int = 65536
    # HTTP limits (see web/http_server.py): a request body must arrive within
    # body_timeout_s; a request head within header_timeout_s and header_max_bytes; idle
    # keep-alive connections close after keepalive_s; connections beyond max_connections
    # per process are closed at once.
    body_timeout_s: float = setting(5.0, "FLASHCLAIM_HTTP_BODY_TIMEOUT_S", *NUMBER,
                                    lo=0.1, hi=3600)
    header_timeout_s: float = setting(10.0, "FLASHCLAIM_HTTP_HEADER_TIMEOUT_S", *NUMBER,
                                      lo=0.1, hi=3600)
    header_max_bytes: int = setting(16_384, "FLASHCLAIM_HTTP_MAX_HEADER_BYTES", *INT,
                                    lo=1024, hi=1_048_576)
    keepalive_s: int = setting(5, "FLASHCLAIM_HTTP_KEEPALIVE_S", *INT, lo=1, hi=3600)
    max_connections: int = setting(10_000, "FLASHCLAIM_HTTP_MAX_CONNECTIONS", *INT, lo=1)
    # "on": a tap whose answer is a refusal memory knows (sold out, ended, paused, the
    # user holds its limit) is answered by the listener itself, without an ASGI cycle
    # (web/http_server.py); "off": every tap goes through the app.
    listener_answers: str = setting("on", "FLASHCLAIM_HTTP_LISTENER_ANSWERS",
                                    choices=("on", "off"))
    # jwt identity mode: the algorithms accepted (never "none"; HMAC and public-key
    # algorithms never mixed), the HMAC secret or PEM public key (or a file holding it:
    # FLASHCLAIM_JWT_KEY_FILE), optional iss/aud.
    jwt_algorithms: tuple[str, ...] = setting(("HS256",), "FLASHCLAIM_JWT_ALGORITHMS", _words,
                                              "algorithm names, comma-separated")
    jwt_key: str | None = setting(None, "FLASHCLAIM_JWT_KEY")
    jwt_issuer: str | None = setting(None, "FLASHCLAIM_JWT_ISSUER")
    jwt_audience: str | None = setting(None, "FLASHCLAIM_JWT_AUDIENCE")
    jwt_tags_claim: str = setting("tags", "FLASHCLAIM_JWT_TAGS_CLAIM")
    # The key of the redemption codes' HMAC (at least 32 characters). `serve` generates
    # one on first start and keeps it in <data dir>/code-secret when none is set.
    code_secret: str | None = setting(None, "FLASHCLAIM_CODE_SECRET")
    # The key of the fair sale (at least 32 characters): it signs proof-of-work challenges
    # and keys the hashes of addresses and devices in the stream. Shared by every instance;
    # `serve` generates one on first start and keeps it in <data dir>/fairness-secret.
    fairness_secret: str | None = setting(None, "FLASHCLAIM_FAIRNESS_SECRET")
    # The bearer token of the checkout system (redeem/release write-back): its own scope,
    # not the admin token. `serve` generates one into <data dir>/checkout-token when unset.
    checkout_token: str | None = setting(None, "FLASHCLAIM_CHECKOUT_TOKEN")
    # The bearer token of the systems that send events (POST /v1/events): its own scope.
    # `serve` generates one into <data dir>/events-token when unset.
    events_token: str | None = setting(None, "FLASHCLAIM_EVENTS_TOKEN")
    # Replica durability: before a claim is answered, WAIT until this many replicas have it
    # (at most replica_timeout_ms; fewer in time: 503, and a retry is a replay). 0: no wait.
    replica_acks: int = setting(0, "FLASHCLAIM_REPLICA_ACKS", *INT, lo=0, hi=16)
    replica_timeout_ms: int = setting(100, "FLASHCLAIM_REPLICA_TIMEOUT_MS", *INT, lo=1)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """The settings the environment gives (absent or empty: the default), then the
        overrides that are not None (command-line flags), validated together."""
        e = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            source: Env | None = f.metadata.get("env")
            raw = e.get(source.name) if source else None
            if source is not None and raw:
                try:
                    values[f.name] = source.parse(raw)
                except ValueError:
                    raise SettingsError(
                        f"{source.name} must be {source.kind}, got {raw!r}") from None
        key_file = e.get("FLASHCLAIM_JWT_KEY_FILE")
        if key_file:
            try:
                values["jwt_key"] = Path(key_file).read_text()
            except OSError as exc:
                raise SettingsError(f"FLASHCLAIM_JWT_KEY_FILE: {exc}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        for f in fields(self):
            source: Env | None = f.metadata.get("env")
            value = getattr(self, f.name)
            if source is None or value is None:
                continue
            if source.choices and value not in source.choices:
                raise SettingsError(f"{source.name} must be one of {', '.join(source.choices)}")
            if (source.lo is not None and value < source.lo) or \
                    (source.hi is not None and value > source.hi):
                raise SettingsError(f"{source.name} must be {_range(source)}")
        if self.fairness_secret is not None and len(self.fairness_secret) < 32:
            raise SettingsError("FLASHCLAIM_FAIRNESS_SECRET must be at least 32 characters")
        if self.code_secret is not None and len(self.code_secret) < 32:
            raise SettingsError("FLASHCLAIM_CODE_SECRET must be at least 32 characters")
        if not NAMESPACE_RE.fullmatch(self.namespace):
            raise SettingsError("FLASHCLAIM_NAMESPACE must match " + NAMESPACE_RE.pattern)
        if self.redis_url is not None and not self.redis_url.startswith(
                ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")):
            raise SettingsError("FLASHCLAIM_REDIS_URL must start with redis://, rediss://, "
                                "unix://, redis+cluster:// or rediss+cluster://")
        if self.ledger_dsn is not None and not self.ledger_dsn.startswith(
                ("postgresql://", "postgres://", "sqlite:///")):
            raise SettingsError("FLASHCLAIM_LEDGER_DSN must start with postgresql:// or "
                                "sqlite:///")
        if self.replica_timeout_ms >= self.redis_timeout_ms:
            raise SettingsError("FLASHCLAIM_REPLICA_TIMEOUT_MS must be at least 1 and below "
                                "FLASHCLAIM_REDIS_TIMEOUT_MS")
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


def _range(source: Env) -> str:
    if source.hi is None:
        return f"at least {source.lo:g}"
    if source.lo is None:
        return f"at most {source.hi:g}"
    return f"from {source.lo:g} to {source.hi:g}"
