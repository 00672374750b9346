"""Named operator tokens as the admin API takes and shows them."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from flashclaim.roles import TOKEN_NAME_RE
from flashclaim.schemas.base import UNSET, Answer, Body, TimeText, whole

Role = Literal["viewer", "operator", "admin", "checkout", "events"]


class TokenCreate(Body, kw_only=True):
    """POST /v1/admin/tokens: a named token with a role (its value answered once)."""

    name: Annotated[str, msgspec.Meta(pattern=whole(TOKEN_NAME_RE))]
    role: Role


class Token(Answer, kw_only=True):
    name: str
    role: str
    created_at: TimeText
    token: Annotated[str, msgspec.Meta(description="in the create's answer only")] = UNSET


class TokenList(Answer, kw_only=True):
    tokens: list[Token]


class WhoAmI(Answer, kw_only=True):
    """GET /v1/admin/whoami: the caller's token name and role (what a page may offer)."""

    name: str
    role: str
