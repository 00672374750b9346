"""The audit log as GET /v1/admin/audit answers it."""

from __future__ import annotations

from typing import Any

from flashclaim.schemas.base import Answer, TimeText


class AuditRecord(Answer, kw_only=True):
    id: str
    at: TimeText
    actor: str
    role: str
    method: str
    path: str
    campaign_id: str | None
    body: Any
    status: int


class AuditPage(Answer, kw_only=True):
    """Newest first; `next` is the cursor of the next (older) page, null after the last."""

    entries: list[AuditRecord]
    next: str | None
