"""Who may call a group of routes: a bearer token, checked once for the whole group.

The app mounts each guarded group (the admin API, the checkout write-back) with its guard
as the Mount's middleware, so no handler checks a token itself and a route added to a
group is guarded from the start. Tokens are compared in constant time; a group whose token
is not configured admits nobody.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Sequence
from typing import Any

from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from flashclaim.errors import ApiError
from flashclaim.settings import Settings


def require_bearer(headers: Headers, token: str | None, refusal: str) -> None:
    """401 unless the request carries `Authorization: Bearer <token>`."""
    sent = headers.get("authorization", "")
    if not token or not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        raise ApiError(401, "unauthenticated", refusal)


class BearerGuard:
    """ASGI middleware: the request goes on only with the group's bearer token."""

    def __init__(self, app: ASGIApp, token_of: Callable[[Settings], str | None],
                 refusal: str) -> None:
        self.app = app
        self._token_of = token_of
        self._refusal = refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            settings: Settings = scope["state"]["services"].settings
            require_bearer(Headers(scope=scope), self._token_of(settings), self._refusal)
        await self.app(scope, receive, send)


def admin_token(settings: Settings) -> str | None:
    return settings.admin_token


def checkout_token(settings: Settings) -> str | None:
    return settings.checkout_token


def events_token(settings: Settings) -> str | None:
    return settings.events_token


ADMIN_REFUSAL = "The admin API needs a valid bearer token."
EVENTS_REFUSAL = "Events need the events token."
CHECKOUT_REFUSAL = "Coupon write-back needs the checkout token."


def guarded(path: str, routes: Sequence[BaseRoute], token_of: Callable[[Settings], str | None],
            refusal: str) -> Mount:
    """The routes under `path`, behind the bearer token `token_of` names."""
    mount = Mount(path, routes=routes, middleware=[
        Middleware(BearerGuard, token_of=token_of, refusal=refusal)])
    # A Mount matches the rest of the path with `.*`, which stops at a newline: a request for
    # /v1/admin/campaigns/x%0A would fall through to 404 instead of its route's 400.
    mount.path_regex = re.compile(mount.path_regex.pattern, re.DOTALL)
    return mount


def guarded_route(path: str, endpoint: Callable[..., Any], methods: list[str],
                  token_of: Callable[[Settings], str | None], refusal: str) -> Route:
    """One route behind its own bearer token (a group of one, where a Mount would not
    match the path itself)."""
    return Route(path, endpoint, methods=methods, middleware=[
        Middleware(BearerGuard, token_of=token_of, refusal=refusal)])
