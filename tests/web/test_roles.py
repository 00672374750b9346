"""Roles: every admin route (and the checkout and events scopes) called with a token of
every role: allowed or 403 naming the role it lacks, as flashclaim/roles.py says; unknown
tokens 401; a revoked token refused by every service within a second; the CLI."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from flashclaim.roles import ADMIN_ROLES, ROLES, allows, required_role
from flashclaim.settings import Settings
from flashclaim.web.openapi import openapi_document

from helpers import ADMIN, CHECKOUT, EVENTS, NAMESPACE, app_client

GUARDED = ("/v1/admin", "/v1/checkout", "/v1/events")


def routes() -> list[tuple[str, str, str]]:
    """(method, template, a concrete path) of every guarded route."""
    found = []
    for template, operations in openapi_document()["paths"].items():
        if not template.startswith(GUARDED):
            continue
        path = re.sub(r"\{[^}]+\}", "x1", template)
        found += [(method.upper(), template, path) for method in operations]
    return found


def scope_of(path: str) -> str | None:
    if path.startswith(("/v1/admin/coupons", "/v1/checkout")):
        return "checkout"
    return "events" if path.startswith("/v1/events") else None


async def tokens_of(client: httpx.AsyncClient) -> dict[str, str]:
    made = {}
    for role in ROLES:
        response = await client.post("/v1/admin/tokens", headers=ADMIN,
                                     json={"name": f"t-{role}", "role": role})
        assert response.status_code == 201, response.text
        made[role] = response.json()["token"]
    return made


async def test_every_guarded_route_by_every_role(client: httpx.AsyncClient) -> None:
    tokens = await tokens_of(client)
    checked = 0
    for method, template, path in routes():
        scope = scope_of(path)
        required = scope or required_role(method, path)
        for role, token in tokens.items():
            body: Any = {} if method in ("POST", "PUT", "PATCH") else None
            response = await client.request(method, path, json=body, headers={
                "Authorization": f"Bearer {token}"})
            if allows(role, required):
                assert response.status_code not in (401, 403), (method, template, role)
            else:
                assert response.status_code == 403, (method, template, role, response.text)
                assert response.json()["details"] == {"required": required, "role": role}
            checked += 1
    assert checked == len(routes()) * len(ROLES) and len(routes()) > 40


async def test_the_configured_tokens_keep_their_scope(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/admin/tokens", headers=ADMIN)).status_code == 200
    assert (await client.get("/v1/admin/whoami", headers=ADMIN)).json() == {
        "name": "bootstrap", "role": "admin"}
    # the checkout and events tokens reach their scope only; the admin token not theirs
    assert (await client.get("/v1/admin/campaigns", headers=CHECKOUT)).status_code == 401
    assert (await client.post("/v1/checkout/quote", headers=ADMIN, json={})).status_code == 401
    assert (await client.post("/v1/checkout/quote", headers=CHECKOUT, json={})).status_code == 400
    assert (await client.post("/v1/events", headers=EVENTS, json={})).status_code == 400
    for bad in ("Bearer nope", "Basic abc", "Bearer", ""):
        response = await client.get("/v1/admin/campaigns", headers={"Authorization": bad})
        assert response.status_code == 401, bad


async def test_a_viewer_is_told_the_role_it_lacks(client: httpx.AsyncClient) -> None:
    made = await client.post("/v1/admin/tokens", headers=ADMIN,
                             json={"name": "analyst", "role": "viewer"})
    viewer = {"Authorization": f"Bearer {made.json()['token']}"}
    assert (await client.get("/v1/admin/whoami", headers=viewer)).json() == {
        "name": "analyst", "role": "viewer"}
    assert (await client.get("/v1/admin/campaigns", headers=viewer)).status_code == 200
    refused = await client.post("/v1/admin/campaigns", headers=viewer, json={
        "name": "n", "stock": 1, "coupons": [{"type": "cash", "value": 1}]})
    assert refused.status_code == 403
    assert refused.json()["error"] == "forbidden" and "operator" in refused.json()["message"]
    assert (await client.get("/v1/admin/campaigns", headers=ADMIN)).json()["campaigns"] == []
    listed = (await client.get("/v1/admin/tokens", headers=ADMIN)).json()["tokens"]
    assert [(t["name"], t["role"]) for t in listed] == [("analyst", "viewer")]
    assert "token" not in listed[0]
    for bad in ({"name": "bootstrap", "role": "admin"}, {"name": "a b", "role": "admin"},
                {"name": "x", "role": "root"}, {"name": "analyst", "role": "admin"}):
        response = await client.post("/v1/admin/tokens", headers=ADMIN, json=bad)
        assert response.status_code in (400, 409), bad


async def test_a_revoked_token_is_refused_everywhere_within_a_second(
        client: httpx.AsyncClient, settings: Settings) -> None:
    made = await client.post("/v1/admin/tokens", headers=ADMIN,
                             json={"name": "temp", "role": "operator"})
    headers = {"Authorization": f"Bearer {made.json()['token']}"}
    async with app_client(settings) as other:  # another service on the same Redis
        deadline = time.monotonic() + 1.0
        while (await other.get("/v1/admin/campaigns", headers=headers)).status_code != 200:
            assert time.monotonic() < deadline, "the other service never learnt the token"
            await asyncio.sleep(0.02)
        assert (await client.delete("/v1/admin/tokens/temp", headers=ADMIN)).status_code == 204
        revoked = time.monotonic()
        while (await other.get("/v1/admin/campaigns", headers=headers)).status_code != 401:
            assert time.monotonic() - revoked < 1.0, "still accepted a second after"
            await asyncio.sleep(0.02)
    assert (await client.get("/v1/admin/campaigns", headers=headers)).status_code == 401


@pytest.mark.parametrize("role", ADMIN_ROLES)
def test_the_cli_creates_lists_and_revokes(settings: Settings, role: str) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "flashclaim", "token", *args,
                               "--namespace", NAMESPACE], capture_output=True, text=True,
                              env={"FLASHCLAIM_REDIS_URL": settings.redis_url or "",
                                   "PATH": "/usr/bin:/bin"}, timeout=60)
    made = cli("create", f"cli-{role}", "--role", role)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith("fct_")
    assert f"cli-{role}" in cli("list").stdout
    assert cli("create", f"cli-{role}", "--role", role).returncode == 2  # taken
    assert cli("create", "bootstrap").returncode == 2
    assert cli("revoke", f"cli-{role}").returncode == 0
    assert cli("revoke", f"cli-{role}").returncode == 2
