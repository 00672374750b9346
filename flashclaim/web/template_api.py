"""Operator routes for coupon templates, behind the admin bearer token."""

from __future__ import annotations

import logging
import secrets

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flashclaim.errors import invalid_request
from flashclaim.schemas.issuance import template_version
from flashclaim.store.templates import TEMPLATES_LIMIT_RANGE
from flashclaim.validation import CAMPAIGN_ID_RE
from flashclaim.web.http import answer, query_cursor, query_limit, read_json
from flashclaim.web.services import services

audit = logging.getLogger("flashclaim.audit")


async def create_template(request: Request) -> Response:
    """A new template, or a new version of an existing one (versions never change)."""
    s = services(request)
    body = await read_json(request, s.settings.max_admin_body, required=True,
                           body_deadline_s=s.settings.body_timeout_s)
    template_id, version = template_version(body)
    template_id = template_id or secrets.token_hex(8)
    template = await s.templates.add_version(template_id, version, await s.campaigns.now())
    audit.info("template version id=%s version=%d", template_id, template.version)
    return answer(template, 201)


async def list_templates(request: Request) -> Response:
    s = services(request)
    after = query_cursor(request, CAMPAIGN_ID_RE)
    limit = query_limit(request, TEMPLATES_LIMIT_RANGE, 100)
    return answer(await s.templates.list(after, limit))


async def get_template(request: Request) -> Response:
    s = services(request)
    template_id = request.path_params["template_id"]
    if not CAMPAIGN_ID_RE.fullmatch(template_id):
        raise invalid_request("A template id is 1-64 chars of A-Za-z0-9_-.")
    return answer(await s.templates.get(template_id))


routes = [
    Route("/templates", create_template, methods=["POST"]),
    Route("/templates", list_templates, methods=["GET"]),
    Route("/templates/{template_id}", get_template, methods=["GET"]),
]
