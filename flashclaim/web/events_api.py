"""Events in (POST /v1/events, the events token) and the rules that grant on them (admin)."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flashclaim.schemas.base import epoch_ms
from flashclaim.schemas.triggers import (
    EventOutcome,
    Rule,
    RuleList,
    Schedule,
    ScheduleList,
    event_body,
    rule_body,
    schedule_body,
)
from flashclaim.timefmt import to_rfc3339
from flashclaim.web.guards import EVENTS_REFUSAL, events_token, guarded_route
from flashclaim.web.http import answer, read_json
from flashclaim.web.services import services


async def receive(request: Request) -> Response:
    """202 with what the event did (its grants run in the background); 200 for an event
    received before, with its first outcome."""
    s = services(request)
    event = event_body(await read_json(request, s.settings.max_admin_body, required=True,
                                       body_deadline_s=s.settings.body_timeout_s))
    at = int(time.time() * 1000) if event.at is None else epoch_ms(event.at, "at")
    outcome, duplicate = await s.triggers.receive(event, at)
    return answer(EventOutcome(duplicate=duplicate, **outcome), 200 if duplicate else 202)


def _shown(stored: dict[str, object]) -> Rule:
    created = stored.get("created_at")
    return Rule(rule_id=str(stored["rule_id"]), on=str(stored["on"]),
                when=dict(stored["when"]),  # type: ignore[call-overload]
                grant=dict(stored["grant"]),  # type: ignore[call-overload]
                to=str(stored["to"]), grants_made=int(stored.get("grants_made", 0)),  # type: ignore[call-overload]
                created_at=to_rfc3339(int(created)) if isinstance(created, int) else "")


async def add_rule(request: Request) -> Response:
    s = services(request)
    rule = rule_body(await read_json(request, s.settings.max_admin_body, required=True,
                                     body_deadline_s=s.settings.body_timeout_s))
    return answer(_shown(await s.triggers.add_rule(rule, int(time.time() * 1000))), 201)


async def list_rules(request: Request) -> Response:
    s = services(request)
    return answer(RuleList(rules=[_shown(r) for r in await s.triggers.rules()]))


async def delete_rule(request: Request) -> Response:
    s = services(request)
    await s.triggers.delete_rule(request.path_params["rule_id"])
    return Response(status_code=204)


def _schedule(stored: dict[str, Any], now_ms: int, next_run: int | None) -> Schedule:
    return Schedule(schedule_id=stored["schedule_id"], campaign_id=stored["campaign_id"],
                    every=stored["every"], segment=stored["segment"],
                    timezone=stored["timezone"], last_run=to_rfc3339(int(stored["last_run"])),
                    runs=int(stored["runs"]),
                    next_run=None if next_run is None else to_rfc3339(next_run))


async def add_schedule(request: Request) -> Response:
    s = services(request)
    body = schedule_body(await read_json(request, s.settings.max_admin_body, required=True,
                                         body_deadline_s=s.settings.body_timeout_s))
    now = int(time.time() * 1000)
    stored = await s.schedules.add(body, now)
    return answer(_schedule(stored, now, s.schedules.next_run(stored, now)), 201)


async def list_schedules(request: Request) -> Response:
    s = services(request)
    now = int(time.time() * 1000)
    return answer(ScheduleList(schedules=[_schedule(x, now, s.schedules.next_run(x, now))
                                          for x in await s.schedules.all()]))


async def delete_schedule(request: Request) -> Response:
    s = services(request)
    await s.schedules.delete(request.path_params["schedule_id"])
    return Response(status_code=204)


public_routes = [guarded_route("/v1/events", receive, ["POST"], events_token, EVENTS_REFUSAL,
                               "events")]
routes = [
    Route("/rules", add_rule, methods=["POST"]),
    Route("/rules", list_rules, methods=["GET"]),
    Route("/rules/{rule_id}", delete_rule, methods=["DELETE"]),
    Route("/schedules", add_schedule, methods=["POST"]),
    Route("/schedules", list_schedules, methods=["GET"]),
    Route("/schedules/{schedule_id}", delete_schedule, methods=["DELETE"]),
]
