"""Who is claiming: from the request, never from the body.

`header` mode trusts an authenticating gateway in front of the service. Other
modes plug in as another Authenticator; make_authenticator picks one by settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import jwt
from jwt.types import Options

from flashclaim.errors import invalid_request, unauthenticated
from flashclaim.settings import Settings, SettingsError
from flashclaim.validation import MAX_TAGS, TAG_RE, USER_ID_RE


class HeaderLookup(Protocol):
    """What identity needs of a request's headers (Starlette's Headers, or the claim
    endpoint's one-pass web.http.TapHeaders)."""

    def get(self, key: str, /) -> str | None: ...
    def __contains__(self, key: object) -> bool: ...


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str
    tags: tuple[str, ...] = ()
    device_id: str = ""  # the device the request came from, "" when none was said


def _device(value: object, bad: str) -> str:
    """A device id as sent (validated like a user id), or "" for none."""
    if value is None:
        return ""
    if not isinstance(value, str) or not USER_ID_RE.fullmatch(value):
        raise invalid_request(bad)
    return value


class Authenticator(Protocol):
    def authenticate(self, headers: HeaderLookup) -> Identity:
        """The caller's identity, or ApiError 401."""
        ...

    def presented(self, headers: HeaderLookup) -> bool:
        """Whether the request carries an identity at all (where one is optional)."""
        ...


class HeaderAuthenticator:
    """X-User-Id (and optional X-User-Tags and X-Device-Id), set by a trusted gateway.

    No X-User-Id is 401; a malformed one is a bad header value, 400."""

    def presented(self, headers: HeaderLookup) -> bool:
        return "x-user-id" in headers

    def authenticate(self, headers: HeaderLookup) -> Identity:
        user_id = headers.get("x-user-id")
        if user_id is None:
            raise unauthenticated("Send the user id in the X-User-Id header.")
        if not USER_ID_RE.fullmatch(user_id):
            raise invalid_request("X-User-Id must be 1-128 chars of A-Za-z0-9_.:@-.")
        raw_tags = headers.get("x-user-tags") or ""
        tags = tuple(t.strip() for t in raw_tags.split(",") if t.strip())
        if len(tags) > MAX_TAGS or not all(TAG_RE.fullmatch(t) for t in tags):
            raise invalid_request(
                f"X-User-Tags must be at most {MAX_TAGS} comma-separated tags of A-Za-z0-9_.:-."
            )
        device = _device(headers.get("x-device-id"),
                         "X-Device-Id must be 1-128 chars of A-Za-z0-9_.:@-.")
        return Identity(user_id, tags, device)


class JwtAuthenticator:
    """Authorization: Bearer <JWT>. The user is `sub`, tags come from one claim, the device
    from `device` (the token's word only: an X-Device-Id header is not read).

    Only the configured algorithms verify (never "none"), `exp` is required, and
    `iss`/`aud` are checked when configured. Every failure is the same 401.
    """

    def __init__(self, settings: Settings) -> None:
        self._key = settings.jwt_key or ""  # validated as present by Settings
        self._algorithms = list(settings.jwt_algorithms)
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._tags_claim = settings.jwt_tags_claim
        required = ["exp", "sub"] + (["iss"] if self._issuer else []) + (
            ["aud"] if self._audience else [])
        self._options: Options = {"require": required}

    def presented(self, headers: HeaderLookup) -> bool:
        return "authorization" in headers

    def authenticate(self, headers: HeaderLookup) -> Identity:
        scheme, _, token = (headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise unauthenticated("Send a bearer token: Authorization: Bearer <JWT>.")
        try:
            claims = jwt.decode(
                token.strip(), self._key, algorithms=self._algorithms, issuer=self._issuer,
                audience=self._audience, options=self._options)
        except jwt.PyJWTError:  # bad tokens, and tokens whose alg does not fit the key
            raise unauthenticated("The bearer token is not valid.") from None
        user_id, tags = claims.get("sub"), claims.get(self._tags_claim, [])
        if not isinstance(user_id, str) or not USER_ID_RE.fullmatch(user_id):
            raise unauthenticated("The token's sub is not a valid user id.")
        if not isinstance(tags, list) or len(tags) > MAX_TAGS or not all(
                isinstance(t, str) and TAG_RE.fullmatch(t) for t in tags):
            raise unauthenticated(f"The token's {self._tags_claim} claim is not a list of tags.")
        device = claims.get("device")
        if device is not None and not (isinstance(device, str) and USER_ID_RE.fullmatch(device)):
            raise unauthenticated("The token's device claim is not a valid device id.")
        return Identity(user_id, tuple(tags), device or "")


def make_authenticator(settings: Settings) -> Authenticator:
    if settings.auth_mode == "jwt":
        return JwtAuthenticator(settings)
    if settings.auth_mode == "header":
        return HeaderAuthenticator()
    raise SettingsError(f"unknown identity mode {settings.auth_mode!r}")
