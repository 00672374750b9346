"""Who is claiming: from the request, never from the body.

`header` mode trusts an authenticating gateway in front of the service. Other
modes plug in as another Authenticator; make_authenticator picks one by settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from starlette.datastructures import Headers

from flashclaim.errors import invalid_request, unauthenticated
from flashclaim.settings import Settings, SettingsError
from flashclaim.validation import TAG_RE, USER_ID_RE

MAX_TAGS = 32


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str
    tags: tuple[str, ...] = ()


class Authenticator(Protocol):
    def authenticate(self, headers: Headers) -> Identity:
        """The caller's identity, or ApiError 401."""
        ...


class HeaderAuthenticator:
    """X-User-Id (and optional X-User-Tags), set by a trusted gateway.

    No X-User-Id is 401; a malformed one is a bad header value, 400."""

    def authenticate(self, headers: Headers) -> Identity:
        user_id = headers.get("x-user-id")
        if user_id is None:
            raise unauthenticated("Send the user id in the X-User-Id header.")
        if not USER_ID_RE.match(user_id):
            raise invalid_request("X-User-Id must be 1-128 chars of A-Za-z0-9_.:@-.")
        raw_tags = headers.get("x-user-tags", "")
        tags = tuple(t.strip() for t in raw_tags.split(",") if t.strip())
        if len(tags) > MAX_TAGS or not all(TAG_RE.match(t) for t in tags):
            raise invalid_request(
                f"X-User-Tags must be at most {MAX_TAGS} comma-separated tags of A-Za-z0-9_.:-."
            )
        return Identity(user_id, tags)


def make_authenticator(settings: Settings) -> Authenticator:
    if settings.auth_mode == "header":
        return HeaderAuthenticator()
    raise SettingsError(
        f"FLASHCLAIM_AUTH={settings.auth_mode!r} is not available in this version; use 'header'"
    )
