"""Cap groups as the admin API takes and shows them (docs/operators.md, "Caps across
campaigns")."""

from __future__ import annotations

import re
from typing import Annotated

import msgspec

from flashclaim.schemas.base import Answer, Body, whole

CAP_GROUP_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
CAP_RANGE = (1, 10_000)
CapGroupName = Annotated[str, msgspec.Meta(pattern=whole(CAP_GROUP_RE))]
Cap = Annotated[int, msgspec.Meta(ge=CAP_RANGE[0], le=CAP_RANGE[1])]


class CapGroupPut(Body, kw_only=True):
    """PUT /v1/admin/cap-groups/{name}: the group's caps (at least one)."""

    max_unused: Annotated[Cap | None, msgspec.Meta(
        description="unused coupons of the group's campaigns a user may hold")] = None
    max_daily: Annotated[Cap | None, msgspec.Meta(
        description="grants a day a user may receive across the group")] = None
    timezone: Annotated[str, msgspec.Meta(
        min_length=1, max_length=64, description="IANA zone max_daily counts days in"
    )] | None = None


class CapGroup(Answer, kw_only=True):
    name: str
    max_unused: int | None
    max_daily: int | None
    timezone: str


class CapGroupList(Answer, kw_only=True):
    cap_groups: list[CapGroup]
