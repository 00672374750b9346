"""Named operator tokens (admin only: flashclaim/roles.py), and whoami for any of them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flashclaim.errors import invalid_request
from flashclaim.roles import BOOTSTRAP
from flashclaim.schemas.base import decode
from flashclaim.schemas.tokens import Token, TokenCreate, TokenList, WhoAmI
from flashclaim.store.token_store import TokenInfo
from flashclaim.timefmt import to_rfc3339
from flashclaim.web.http import answer, read_json
from flashclaim.web.services import services


def _shown(info: TokenInfo, token: str | None = None) -> Token:
    shown = Token(name=info.name, role=info.role, created_at=to_rfc3339(info.created_at))
    if token is not None:
        shown.token = token
    return shown


async def create(request: Request) -> Response:
    s = services(request)
    body = decode(await read_json(request, s.settings.max_admin_body, required=True,
                                  body_deadline_s=s.settings.body_timeout_s), TokenCreate)
    if body.name == BOOTSTRAP:
        raise invalid_request(f"{BOOTSTRAP!r} names the configured admin token; choose another.")
    info, token = await s.tokens.create(body.name, body.role)
    return answer(_shown(info, token), 201)


async def list_tokens(request: Request) -> Response:
    s = services(request)
    return answer(TokenList(tokens=[_shown(t) for t in await s.tokens.all()]))


async def revoke(request: Request) -> Response:
    s = services(request)
    await s.tokens.revoke(request.path_params["name"])
    return Response(status_code=204)


async def whoami(request: Request) -> Response:
    state = request.scope["state"]
    return answer(WhoAmI(name=state.get("actor", BOOTSTRAP), role=state.get("actor_role",
                                                                            "admin")))


routes = [
    Route("/tokens", create, methods=["POST"]),
    Route("/tokens", list_tokens, methods=["GET"]),
    Route("/tokens/{name}", revoke, methods=["DELETE"]),
    Route("/whoami", whoami, methods=["GET"]),
]
