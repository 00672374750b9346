"""Keeps /openapi.json true: every response the tests see must be documented there,
with a body that validates against the documented schema."""

from __future__ import annotations

import re
from typing import Any

import httpx
import jsonschema

from flashclaim.web.openapi import openapi_document

DOC = openapi_document()
_TEMPLATES = [
    (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path) for path in DOC["paths"]
]
_ERROR_SCHEMA = DOC["components"]["schemas"]["Error"]


def schema_for(ref_or_schema: dict[str, Any]) -> dict[str, Any]:
    return {**ref_or_schema, "components": DOC["components"]}


def validate(instance: object, schema: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(schema_for(schema)).validate(instance)


async def check_response(response: httpx.Response) -> None:
    await response.aread()
    request = response.request
    status = response.status_code
    matches = [tpl for rx, tpl in _TEMPLATES if rx.match(request.url.path)]
    if not matches:  # unknown route: still a JSON error
        assert status == 404, f"{request.url.path}: {status}"
        validate(response.json(), _ERROR_SCHEMA)
        return
    operation = DOC["paths"][matches[0]].get(request.method.lower())
    if operation is None:
        assert status == 405, f"{request.method} {request.url.path}: {status}"
        validate(response.json(), _ERROR_SCHEMA)
        return
    documented = operation["responses"].get(str(status))
    assert documented is not None, (
        f"{request.method} {matches[0]} answered {status}, which /openapi.json does not list"
    )
    content = documented.get("content", {}).get("application/json")
    if content is not None:
        assert response.headers["content-type"] == "application/json"
        validate(response.json(), content["schema"])
