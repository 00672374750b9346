"""The audit trail of the admin API: a middleware inside the token guard that appends every
write's entry (flashclaim/audit_log.py), and GET /v1/admin/audit that pages through them,
newest first, by campaign, actor and time."""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flashclaim.audit_log import MAX_BODY_BYTES, AuditEntry, body_text, campaign_of
from flashclaim.errors import ApiError, invalid_request
from flashclaim.schemas.audit import AuditPage, AuditRecord
from flashclaim.schemas.base import epoch_ms
from flashclaim.store.connection import stream_rows
from flashclaim.timefmt import to_rfc3339
from flashclaim.validation import CAMPAIGN_ID_RE
from flashclaim.web.http import answer, query_cursor, query_limit
from flashclaim.web.services import services

log = logging.getLogger("flashclaim.audit")
AUDIT_LIMIT_RANGE = (1, 500)
_CURSOR_RE = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
_SCAN_PAGE = 500
LAST_SEQ = 2**64 - 1


class AuditTrail:
    """Inside the guard (the actor is known): a write's request body and answer status,
    appended once the answer is sent, also when the route refused it (an ApiError)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        body = bytearray()
        status = 500

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) <= MAX_BODY_BYTES * 4:
                body.extend(message.get("body", b""))
            return message

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, recording_receive, recording_send)
        except ApiError as exc:
            status = exc.status
            raise
        finally:
            await _append(scope, bytes(body), status)


async def _append(scope: Scope, body: bytes, status: int) -> None:
    state = scope["state"]
    s = state["services"]
    path: str = scope["path"]
    entry = AuditEntry(int(time.time() * 1000), state.get("actor", "?"),
                       state.get("actor_role", "?"), scope["method"], path, campaign_of(path),
                       body_text(body), status)
    try:
        await s.redis.xadd(s.keyspace.audit, entry.fields())
    except Exception:  # the write happened: say loudly that its entry did not
        log.exception("audit entry lost: %s %s by %s", entry.method, path, entry.actor)


def _record(entry_id: str, e: AuditEntry) -> AuditRecord:
    body: Any = e.body or None
    if body and not body.startswith("(") and not body.endswith("…(cut)"):
        body = orjson.loads(body)  # (written as JSON by body_text)
    return AuditRecord(id=entry_id, at=to_rfc3339(e.at), actor=e.actor, role=e.role,
                       method=e.method, path=e.path, campaign_id=e.campaign_id or None,
                       body=body, status=e.status)


def _before(entry_id: str) -> str | None:
    """The greatest entry id below this one (where a newest-first page goes on)."""
    ms, _, seq = entry_id.partition("-")
    if int(seq) > 0:
        return f"{ms}-{int(seq) - 1}"
    return f"{int(ms) - 1}-{LAST_SEQ}" if int(ms) > 0 else None


async def audit(request: Request) -> Response:
    """Newest first; `next` continues further back. Filters: campaign, actor, from, to. A
    call reads at most 20 x limit entries; with filters that match few, `next` may come
    with a short page."""
    s = services(request)
    q = request.query_params
    campaign = q.get("campaign")
    if campaign is not None and not CAMPAIGN_ID_RE.fullmatch(campaign):
        raise invalid_request("campaign must be a campaign id.")
    actor = q.get("actor")
    since, until = _time(q.get("from"), "from"), _time(q.get("to"), "to")
    limit = query_limit(request, AUDIT_LIMIT_RANGE, 100)
    end: str | None = query_cursor(request, _CURSOR_RE) or (
        "+" if until is None else f"{until - 1}-{LAST_SEQ}")
    start = "-" if since is None else f"{since}-0"
    found: list[AuditRecord] = []
    scanned = 0
    while end is not None:
        page = stream_rows(await s.redis.xrevrange(s.keyspace.audit, end, start,
                                                   count=_SCAN_PAGE))
        if not page:
            end = None
            break
        for entry_id, fields in page:
            scanned += 1
            e = AuditEntry.decode(fields)
            if (campaign is None or e.campaign_id == campaign) and (
                    actor is None or e.actor == actor):
                found.append(_record(entry_id, e))
            end = _before(entry_id)
            if len(found) == limit:
                break
        if len(found) == limit or scanned >= 20 * limit:
            break
        if len(page) < _SCAN_PAGE:
            end = None
    return answer(AuditPage(entries=found, next=end))


def _time(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise invalid_request(f"{name} must be an RFC 3339 time.") from None
    if moment.tzinfo is None:
        raise invalid_request(f"{name} needs a UTC offset.")
    return epoch_ms(moment, name)


routes = [Route("/audit", audit, methods=["GET"])]
