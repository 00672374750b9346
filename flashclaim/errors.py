"""Domain errors that carry their HTTP status, and every user-facing message in one place."""

from __future__ import annotations


class ApiError(Exception):
    """An error answered as {"error": code, "message": message} with an HTTP status (and,
    for a refusal a program acts on, "details": which coupon, and why)."""

    def __init__(
        self, status: int, code: str, message: str, *, retry_after: int | None = None,
        details: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.details = details


def invalid_request(message: str) -> ApiError:
    return ApiError(400, "invalid_request", message)


def unauthenticated(message: str = "A valid user identity is required.") -> ApiError:
    return ApiError(401, "unauthenticated", message)


def campaign_not_found(campaign_id: str) -> ApiError:
    return ApiError(404, "campaign_not_found", f"No campaign with id {campaign_id!r}.")


def unavailable(message: str = "The coupon store is unavailable; try again shortly.") -> ApiError:
    return ApiError(503, "unavailable", message, retry_after=1)


def payload_too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"The request body is over {limit} bytes.")


def request_timeout(seconds: float) -> ApiError:
    return ApiError(408, "request_timeout", f"The request body did not arrive within {seconds:g}s.")


def incomplete_body() -> ApiError:
    return ApiError(400, "invalid_request", "The request body ended before it was complete.")


def unsupported_media_type() -> ApiError:
    return ApiError(415, "unsupported_media_type", "Send the body as application/json.")


# Claim rejections decided by claim.lua: code -> (status, message).
CLAIM_REJECTIONS: dict[str, tuple[int, str]] = {
    "code_not_found": (404, "No such code."),
    "code_used": (410, "This code has been used up."),
    "code_already_redeemed": (409, "This user has redeemed this code as often as it allows."),
    "campaign_not_found": (404, "No such campaign."),
    "not_started": (409, "This campaign has not started yet."),
    "ended": (409, "This campaign has ended."),
    "paused": (409, "This campaign is paused."),
    "not_eligible": (403, "This user or channel is not eligible for this campaign."),
    "blocked": (403, "This account cannot receive coupons."),
    "rate_limited": (429, "Too many taps; slow down."),
    "already_claimed": (409, "This user already holds the most coupons this campaign allows."),
    "daily_limit": (409, "This user has claimed today's limit; try again tomorrow."),
    "sold_out": (410, "All coupons of this campaign have been claimed."),
    "device_required": (403, "This campaign needs the device id (X-Device-Id)."),
    "device_limit": (409, "This device's accounts hold the most coupons this campaign allows."),
    "challenge_required": (403, "This campaign needs a solved challenge: GET its /challenge, "
                                "then send challenge and nonce with the claim."),
    "challenge_spent": (403, "This challenge was already used; get a new one."),
    "draw_campaign": (409, "This campaign is drawn: enter the draw instead of grabbing."),
    "not_a_draw": (409, "This campaign is not drawn; grab it instead."),
    "entries_closed": (409, "The entries of this draw are closed."),
    "budget_exhausted": (410, "This campaign's budget is spent."),
    "holdout": (403, "This campaign is not offered to this user."),
    "cap_reached": (409, "This user holds the most unused coupons its campaign group allows."),
    "cap_daily_limit": (409, "This user has received today's most coupons of this campaign "
                             "group; try again tomorrow."),
}

IDEMPOTENCY_KEY_REUSED = (
    409,
    "idempotency_key_reused",
    "This Idempotency-Key was already used for another campaign or request body.",
)
