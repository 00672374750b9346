"""Risk alerts (admin): the newest alerts with their evidence, and the rules' thresholds
and block actions."""

from __future__ import annotations

import time

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flashclaim.risk.alert_store import ALERTS_LIMIT_RANGE
from flashclaim.risk.rules import Rule
from flashclaim.schemas.base import decode
from flashclaim.schemas.risk import Alert, AlertList, AlertRule, AlertRules, RuleChange
from flashclaim.timefmt import to_rfc3339
from flashclaim.web.http import answer, query_limit, read_json
from flashclaim.web.services import services


async def list_alerts(request: Request) -> Response:
    s = services(request)
    limit = query_limit(request, ALERTS_LIMIT_RANGE, 100)
    alerts = [msgspec.convert({**a, "raised_at": to_rfc3339(a["raised_at"])}, Alert)
              for a in await s.alerts.newest(limit)]
    return answer(AlertList(alerts=alerts, counts=await s.alerts.counts(),
                            server_time=to_rfc3339(int(time.time() * 1000))))


def _shown(rule: Rule) -> AlertRule:
    return AlertRule(**rule.shown())


async def list_rules(request: Request) -> Response:
    s = services(request)
    return answer(AlertRules(rules=[_shown(r) for r in (await s.alerts.rules()).values()]))


async def change_rule(request: Request) -> Response:
    s = services(request)
    name = request.path_params["rule"]
    change = decode(await read_json(request, s.settings.max_admin_body, required=True,
                                    body_deadline_s=s.settings.body_timeout_s), RuleChange)
    rule = await s.alerts.change(name, change.threshold, change.window_s, change.block)
    return answer(_shown(rule))


routes = [
    Route("/alerts", list_alerts, methods=["GET"]),
    Route("/alert-rules", list_rules, methods=["GET"]),
    Route("/alert-rules/{rule}", change_rule, methods=["PUT"]),
]
