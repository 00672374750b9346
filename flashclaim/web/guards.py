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
from flashclaim.roles import BOOTSTRAP, allows, required_role
from flashclaim.settings import Settings
from flashclaim.store.token_store import TokenStore


class BearerGuard:
    """ASGI middleware: the request goes on only with the group's token: the one configured
    (`token_of`), or a named token (store/token_store.py) whose role the route needs
    (flashclaim/roles.py: `scope_role` for a group of one scope, else the admin table).
    No token or an unknown one: 401; a known one without the role: 403 naming the role
    it lacks. The caller's name goes into the request's state, for the audit."""

    def __init__(self, app: ASGIApp, token_of: Callable[[Settings], str | None],
                 refusal: str, scope_role: str | None = None) -> None:
        self.app = app
        self._token_of = token_of
        self._refusal = refusal
        self._scope_role = scope_role

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            services = scope["state"]["services"]
            name, role = _caller(Headers(scope=scope), self._token_of(services.settings),
                                 self._scope_role or "admin", services.tokens, self._refusal)
            required = self._scope_role or required_role(scope["method"], scope["path"])
            if not allows(role, required):
                raise ApiError(403, "forbidden",
                               f"This needs the {required} role; token {name!r} is {role}.",
                               details={"required": required, "role": role})
            scope["state"]["actor"] = name
            scope["state"]["actor_role"] = role
        await self.app(scope, receive, send)


def _caller(headers: Headers, configured: str | None, configured_role: str,
            tokens: TokenStore, refusal: str) -> tuple[str, str]:
    """(name, role) of the bearer token: the configured one is the bootstrap admin (or
    the scope's own token), any other must be a named token."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "unauthenticated", refusal)
    if configured and hmac.compare_digest(token.encode(), configured.encode()):
        return BOOTSTRAP, configured_role
    found = tokens.find(token)
    if found is None:
        raise ApiError(401, "unauthenticated", refusal)
    return found.name, found.role


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
            refusal: str, scope_role: str | None = None,
            inner: Sequence[Middleware] = ()) -> Mount:
    """The routes under `path`, behind the bearer token `token_of` names (or a named token
    of the role they need); `inner`: middleware that runs once the caller is known."""
    mount = Mount(path, routes=routes, middleware=[
        Middleware(BearerGuard, token_of=token_of, refusal=refusal, scope_role=scope_role),
        *inner])
    # A Mount matches the rest of the path with `.*`, which stops at a newline: a request for
    # /v1/admin/campaigns/x%0A would fall through to 404 instead of its route's 400.
    mount.path_regex = re.compile(mount.path_regex.pattern, re.DOTALL)
    return mount


def guarded_route(path: str, endpoint: Callable[..., Any], methods: list[str],
                  token_of: Callable[[Settings], str | None], refusal: str,
                  scope_role: str) -> Route:
    """One route behind its own bearer token (a group of one, where a Mount would not
    match the path itself)."""
    return Route(path, endpoint, methods=methods, middleware=[
        Middleware(BearerGuard, token_of=token_of, refusal=refusal, scope_role=scope_role)])
