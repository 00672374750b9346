"""Risk alerts as the API shows them, and an operator's change to a rule."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from flashclaim.schemas.base import UNSET, Answer, Body, TimeText

THRESHOLD_RANGE = (1, 1_000_000)
WINDOW_RANGE = (1, 86_400)
Threshold = Annotated[int, msgspec.Meta(ge=THRESHOLD_RANGE[0], le=THRESHOLD_RANGE[1])]
WindowSeconds = Annotated[int, msgspec.Meta(ge=WINDOW_RANGE[0], le=WINDOW_RANGE[1])]


class Alert(Answer, kw_only=True):
    id: str
    rule: str
    watches: str
    subject: Annotated[str, msgspec.Meta(
        description="a keyed hash of the address, network or device; a campaign id; 'all'")]
    count: int
    threshold: int
    window_s: int
    raised_at: TimeText
    users: list[str]
    evidence: dict[str, Any]
    blocked: Annotated[bool, msgspec.Meta(description="the named users were blocked")]


class AlertList(Answer, kw_only=True):
    """GET /v1/admin/alerts: the newest alerts first, and the count ever raised per rule."""

    alerts: list[Alert]
    counts: dict[str, int]
    server_time: TimeText = UNSET


class AlertRule(Answer, kw_only=True):
    rule: str
    watches: str
    threshold: int
    window_s: int
    block: bool


class AlertRules(Answer, kw_only=True):
    rules: list[AlertRule]


class RuleChange(Body, kw_only=True):
    """PUT /v1/admin/alert-rules/{rule}: any of these."""

    threshold: Threshold | None = None
    window_s: WindowSeconds | None = None
    block: bool | None = None
