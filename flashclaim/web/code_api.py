"""Redemption codes: batches and their one export (admin), and POST /v1/redemptions."""

from __future__ import annotations

import logging

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from flashclaim.claim.idempotency import checked_key
from flashclaim.schemas.issuance import code_batch, redemption
from flashclaim.web.claim_endpoint import client_ip
from flashclaim.web.http import answer, campaign_id_of, read_json, with_server_time
from flashclaim.web.services import services

audit = logging.getLogger("flashclaim.audit")


async def create_codes(request: Request) -> Response:
    """Generate `count` codes in the background; 202 with the batch and its progress."""
    s = services(request)
    campaign_id = campaign_id_of(request)
    wanted = code_batch(await read_json(
        request, s.settings.max_admin_body, required=True,
        body_deadline_s=s.settings.body_timeout_s))
    batch = await s.codes.create_batch(campaign_id, wanted)
    audit.info("code batch campaign=%s batch=%s count=%d uses=%d per_user=%d", campaign_id,
               batch.batch_id, wanted.count, wanted.uses_per_code, wanted.uses_per_user)
    return answer(batch, 202)


async def list_codes(request: Request) -> Response:
    s = services(request)
    return answer(await s.codes.batches(campaign_id_of(request)))


async def export_codes(request: Request) -> Response:
    """The codes, once: a batch's codes cannot be produced again after this download."""
    s = services(request)
    campaign_id = campaign_id_of(request)
    lines = await s.codes.export(campaign_id)
    audit.info("codes exported campaign=%s", campaign_id)
    return StreamingResponse(lines, media_type="text/csv", headers={
        "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="{campaign_id}-codes.csv"'})


async def redeem(request: Request) -> Response:
    """A user redeems a code: 201 with the claim, as a grab; 200 replays an Idempotency-Key."""
    s = services(request)
    who = s.authenticator.authenticate(request.headers)
    idempotency_key = checked_key(request.headers.get("idempotency-key"))
    body = redemption(await read_json(request, s.settings.max_claim_body, required=True,
                                      body_deadline_s=s.settings.body_timeout_s))
    typed, channel = body.code, body.channel
    ip = client_ip(request.scope, request.headers, s.settings.client_ip_header)
    outcome = await s.redeemer.redeem(typed, who, channel, idempotency_key, ip)
    return Response(with_server_time(orjson.dumps(outcome.claim)), outcome.status,
                    media_type="application/json")


routes = [
    Route("/campaigns/{campaign_id}/codes", create_codes, methods=["POST"]),
    Route("/campaigns/{campaign_id}/codes", list_codes, methods=["GET"]),
    Route("/campaigns/{campaign_id}/codes.csv", export_codes, methods=["GET"]),
]
public_routes = [Route("/v1/redemptions", redeem, methods=["POST"])]
