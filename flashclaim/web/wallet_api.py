"""GET /v1/me/coupons: the caller's coupons across campaigns, from the ledger."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flashclaim.errors import invalid_request
from flashclaim.ledger.wallet import WALLET_STATUSES, wallet_page
from flashclaim.schemas.after import Wallet, WalletCoupon
from flashclaim.timefmt import to_rfc3339
from flashclaim.validation import ascii_int
from flashclaim.web.http import answer, personal, query_limit
from flashclaim.web.services import services

WALLET_LIMIT_RANGE = (1, 100)
_TIMES = ("valid_from", "valid_until", "claimed_at", "used_at", "hold_until", "usable_from")
_COUPON_ID_RE = re.compile(r"[A-Za-z0-9-]{1,64}")  # any coupon id a page can end on


def _cursor(raw: str) -> tuple[int, str] | None:
    if not raw:
        return None
    ms, _, coupon_id = raw.partition(".")
    claimed_at = ascii_int(ms, 15)
    if claimed_at is None or not _COUPON_ID_RE.fullmatch(coupon_id):
        raise invalid_request("cursor must be the `next` of a previous page.")
    return claimed_at, coupon_id


async def my_coupons(request: Request) -> Response:
    s = services(request)
    who = s.authenticator.authenticate(request.headers)
    status = request.query_params.get("status")
    if status is not None and status not in WALLET_STATUSES:
        raise invalid_request(f"status must be one of {', '.join(WALLET_STATUSES)}.")
    after = _cursor(request.query_params.get("cursor", ""))
    limit = query_limit(request, WALLET_LIMIT_RANGE, 20)
    now = await s.campaigns.now()
    page = await s.ledger.read(
        lambda ledger: wallet_page(ledger, who.user_id, status, now, after, limit))
    # a campaign removed after its retention has no name any more: the ledger outlives it
    names = await s.campaigns.names(sorted({c["campaign_id"] for c in page.coupons}))
    coupons: list[WalletCoupon] = []
    for c in page.coupons:
        times = {name: to_rfc3339(int(c[name])) for name in _TIMES if name in c}
        coupons.append(WalletCoupon(**{**c, **times},
                                    campaign_name=names[c["campaign_id"]]))
    more = None if page.next is None else f"{page.next[0]}.{page.next[1]}"
    return personal(answer(Wallet(coupons=coupons, next=more, server_time=to_rfc3339(now))),
                    request)


routes = [Route("/v1/me/coupons", my_coupons, methods=["GET"])]
