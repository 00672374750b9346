"""A refused claim leaves no cyclic garbage: what it allocates is freed by reference counting
at once, never left for the cyclic collector (whose passes pause the claim loop)."""

from __future__ import annotations

import gc
from typing import Any

from flashclaim.errors import ApiError
from flashclaim.settings import Settings

from helpers import app_client, claim, create_campaign


async def test_refused_claims_leave_no_cyclic_garbage(settings: Settings) -> None:
    app = app_client(settings)
    async with app as client:
        c = await create_campaign(client, stock=1)
        assert (await claim(client, c["id"], "first")).status_code == 201
        endpoint = app.app.endpoint
        assert endpoint is not None

        async def tap(user: str) -> int:
            """One tap, handed to the claim endpoint as the listener hands it."""
            scope: dict[str, Any] = {
                "type": "http", "method": "POST", "path": f"/v1/campaigns/{c['id']}/claims",
                "path_params": {"campaign_id": c["id"]}, "client": ("127.0.0.1", 40000),
                "headers": [(b"x-user-id", user.encode())], "state": dict(app.state)}
            sent: list[dict[str, Any]] = []

            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message: Any) -> None:
                sent.append(message)
            await endpoint(scope, receive, send)
            status: int = sent[0]["status"]
            return status

        # sold out: the first from Redis, then from the gate's memory, as in a flash sale
        statuses = [await tap(f"warm{i}") for i in range(20)]
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds is kept for a look
        try:
            statuses += [await tap(f"u{i}") for i in range(300)]
            gc.collect()
            left = [o for o in gc.garbage if isinstance(o, ApiError)]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
        assert set(statuses) == {410}
        assert left == [], f"{len(left)} refusals were freed only by the cyclic collector"


async def test_answers_in_the_listener_leave_no_cyclic_garbage(settings: Settings) -> None:
    """The listener's own answers (ClaimEndpoint.answer_now): a refusal from memory and a
    request's error (no user: 401, raised and caught) leave nothing for the collector."""
    app = app_client(settings)
    async with app as client:
        c = await create_campaign(client, stock=1)
        assert (await claim(client, c["id"], "first")).status_code == 201
        assert (await claim(client, c["id"], "second")).status_code == 410  # the gate learns

        def tap(user: str | None) -> int:
            headers = [] if user is None else [(b"x-user-id", user.encode())]
            scope: dict[str, Any] = {
                "type": "http", "method": "POST", "path": f"/v1/campaigns/{c['id']}/claims",
                "client": ("127.0.0.1", 40000), "headers": headers, "state": dict(app.state)}
            reply = app.app.answer_now(scope, b"")
            assert reply is not None
            return reply[0]

        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            statuses = [tap(f"u{i}" if i % 2 else None) for i in range(300)]
            gc.collect()
            left = list(gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
        assert set(statuses) == {410, 401}
        assert left == [], f"{len(left)} objects were freed only by the cyclic collector"
