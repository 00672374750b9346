"""The audit log: every write through the admin API leaves one entry (who, what, the
result, when), refused ones too, with secrets masked; reads leave none; the CLI's writes
are there too; GET /v1/admin/audit filters and pages, newest first."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

import httpx
from redis.asyncio import Redis

from flashclaim.audit_log import masked
from flashclaim.keys import KeySpace
from flashclaim.settings import Settings
from flashclaim.web.openapi import openapi_document

from helpers import ADMIN, NAMESPACE, create_campaign


async def entries_newest(r: Redis, keyspace: KeySpace) -> list[tuple[str, dict[str, str]]]:
    return [(str(i), {str(k): str(v) for k, v in (f or {}).items()})
            for i, f in await r.xrevrange(keyspace.audit, count=1) or []]


async def test_every_admin_write_leaves_one_entry(client: httpx.AsyncClient,
                                                  redis_client: Redis,
                                                  keyspace: KeySpace) -> None:
    writes = [(method.upper(), re.sub(r"\{[^}]+\}", "x1", path))
              for path, ops in openapi_document()["paths"].items()
              if path.startswith("/v1/admin") and not path.startswith("/v1/admin/coupons")
              for method in ops if method != "get"]
    assert len(writes) > 20
    for method, path in writes:
        before = await redis_client.xlen(keyspace.audit)
        response = await client.request(method, path, headers=ADMIN,
                                        json={} if method != "DELETE" else None)
        assert await redis_client.xlen(keyspace.audit) == before + 1, (method, path)
        [(_, fields)] = await entries_newest(redis_client, keyspace)
        assert (fields["method"], fields["path"], fields["status"]) == (
            method, path, str(response.status_code))
        assert (fields["actor"], fields["role"]) == ("bootstrap", "admin")
    before = await redis_client.xlen(keyspace.audit)
    for path in ("/v1/admin/campaigns", "/v1/admin/audit", "/v1/admin/tokens"):
        assert (await client.get(path, headers=ADMIN)).status_code == 200
    assert await redis_client.xlen(keyspace.audit) == before  # reads are not logged


async def test_entries_say_who_and_hide_secrets(client: httpx.AsyncClient) -> None:
    made = await client.post("/v1/admin/tokens", headers=ADMIN,
                             json={"name": "ops-anna", "role": "operator"})
    anna = {"Authorization": f"Bearer {made.json()['token']}"}
    campaign = await create_campaign(client)
    cid = campaign["id"]
    assert (await client.post(f"/v1/admin/campaigns/{cid}/pause", headers=anna)).status_code == 200
    refused = await client.post(f"/v1/admin/campaigns/{cid}/stock", headers=anna,
                                json={"delta": 5, "password": "hunter2"})
    assert refused.status_code == 400
    page = (await client.get(f"/v1/admin/audit?campaign={cid}", headers=ADMIN)).json()
    entries = [(e["actor"], e["role"], e["method"], e["path"], e["status"])
               for e in page["entries"]]
    assert entries == [
        ("ops-anna", "operator", "POST", f"/v1/admin/campaigns/{cid}/stock", 400),
        ("ops-anna", "operator", "POST", f"/v1/admin/campaigns/{cid}/pause", 200),
    ]  # newest first; the create went to /v1/admin/campaigns (no campaign in its path)
    assert page["entries"][0]["body"] == {"delta": 5, "password": "***"}
    by_anna = (await client.get("/v1/admin/audit?actor=ops-anna", headers=ADMIN)).json()
    assert [e["path"] for e in by_anna["entries"]] == [e[3] for e in entries]
    bootstrap = (await client.get("/v1/admin/audit?actor=bootstrap&limit=1",
                                  headers=ADMIN)).json()
    assert bootstrap["entries"][0]["path"] == "/v1/admin/campaigns"
    assert bootstrap["entries"][0]["body"]["name"] == campaign["name"]
    rest = (await client.get(f"/v1/admin/audit?actor=bootstrap&cursor={bootstrap['next']}",
                             headers=ADMIN)).json()
    assert [e["path"] for e in rest["entries"]] == ["/v1/admin/tokens"]
    assert rest["entries"][0]["body"] == {"name": "ops-anna", "role": "operator"}
    assert rest["next"] is None
    for bad in ("campaign=a%20b", "from=yesterday", "to=2026-12-01T00:00:00", "cursor=x"):
        assert (await client.get(f"/v1/admin/audit?{bad}", headers=ADMIN)).status_code == 400


def test_masking_reaches_every_depth() -> None:
    body = {"name": "x", "token": "t", "nested": [{"client_secret": "s", "keep": 1}],
            "passwords": ["a"], "code": "ABC"}
    assert masked(body) == {"name": "x", "token": "***", "nested": [
        {"client_secret": "***", "keep": 1}], "passwords": "***", "code": "***"}


async def test_the_cli_writes_are_logged(client: httpx.AsyncClient, settings: Settings) -> None:
    made = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "flashclaim", "token", "create", "bot", "--role",
                         "viewer", "--namespace", NAMESPACE], capture_output=True, text=True,
        env={"FLASHCLAIM_REDIS_URL": settings.redis_url or "", "PATH": "/usr/bin:/bin"},
        timeout=60)
    assert made.returncode == 0, made.stderr
    [entry] = (await client.get("/v1/admin/audit", headers=ADMIN)).json()["entries"]
    assert entry["actor"].startswith("cli:") and entry["role"] == "cli"
    assert (entry["path"], entry["body"]) == ("flashclaim token create",
                                              {"name": "bot", "role": "viewer"})
