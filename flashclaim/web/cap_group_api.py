"""Cap groups (docs/operators.md, "Caps across campaigns"): an admin sets them, anyone
with a token reads them; campaigns name one at creation."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flashclaim.errors import ApiError, invalid_request
from flashclaim.schemas.base import decode
from flashclaim.schemas.cap_groups import CAP_GROUP_RE, CapGroup, CapGroupList, CapGroupPut
from flashclaim.store.cap_store import CapSettings
from flashclaim.web.http import answer, read_json
from flashclaim.web.services import services
from flashclaim.zones import DEFAULT_TIMEZONE, zone


def _shown(group: CapSettings) -> CapGroup:
    return CapGroup(name=group.name, max_unused=group.max_unused, max_daily=group.max_daily,
                    timezone=group.timezone)


def _name(request: Request) -> str:
    name = str(request.path_params["name"])
    if not CAP_GROUP_RE.fullmatch(name):
        raise invalid_request("A cap group's name is 1-64 of A-Z a-z 0-9 _ . -")
    return name


async def put(request: Request) -> Response:
    s = services(request)
    name = _name(request)
    body = decode(await read_json(request, s.settings.max_admin_body, required=True,
                                  body_deadline_s=s.settings.body_timeout_s), CapGroupPut)
    if body.max_unused is None and body.max_daily is None:
        raise invalid_request("A cap group needs max_unused, max_daily or both.")
    timezone = body.timezone or DEFAULT_TIMEZONE
    zone(timezone)
    group = CapSettings(name, body.max_unused, body.max_daily, timezone)
    created = await s.cap_groups.put(group)
    return answer(_shown(group), 201 if created else 200)


async def list_groups(request: Request) -> Response:
    s = services(request)
    return answer(CapGroupList(cap_groups=[_shown(g) for g in await s.cap_groups.all()]))


async def delete(request: Request) -> Response:
    s = services(request)
    if not await s.cap_groups.delete(_name(request)):
        raise ApiError(404, "cap_group_not_found", "No such cap group.")
    return Response(status_code=204)


routes = [
    Route("/cap-groups", list_groups, methods=["GET"]),
    Route("/cap-groups/{name}", put, methods=["PUT"]),
    Route("/cap-groups/{name}", delete, methods=["DELETE"]),
]
