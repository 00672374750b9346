"""What every schema is built from: strict decoding with the API's error, whole-string
patterns, and the field types used across shapes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

import msgspec
import orjson

from flashclaim.errors import invalid_request
from flashclaim.validation import (
    CAMPAIGN_ID_RE,
    CHANNEL_RE,
    CURRENCY_RE,
    MAX_TIME_MS,
    MIN_TIME_MS,
    TAG_RE,
    USER_ID_RE,
)

T = TypeVar("T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


class Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A request body: every field named, no other accepted."""


class Answer(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A response body. Fields left at their default `UNSET` are left out of the JSON."""


UNSET: Any = msgspec.UNSET  # "not part of this answer" (distinct from null)


def whole(rx: re.Pattern[str]) -> str:
    """A regex matched against the whole string (msgspec searches; `\\A...\\Z` anchors it,
    and unlike `$` admits no trailing newline). OpenAPI states it as `^...$`."""
    return rf"\A(?:{rx.pattern})\Z"


# A list none of whose items repeats: stated in the schema, checked by `distinct` after
# decoding (msgspec states uniqueItems but does not enforce it).
UNIQUE = {"uniqueItems": True}


def distinct(values: list[str], name: str) -> list[str]:
    if len(set(values)) != len(values):
        raise invalid_request(f"{name} must not repeat an item.")
    return values


def printable(value: str, name: str) -> str:
    """Free text without control characters (a name shown on a page and in logs)."""
    if not value.isprintable():
        raise invalid_request(f"{name} must not contain control characters.")
    return value


Id = Annotated[str, msgspec.Meta(pattern=whole(CAMPAIGN_ID_RE))]
UserId = Annotated[str, msgspec.Meta(pattern=whole(USER_ID_RE))]
Tag = Annotated[str, msgspec.Meta(pattern=whole(TAG_RE))]
Channel = Annotated[str, msgspec.Meta(pattern=whole(CHANNEL_RE))]
Currency = Annotated[str, msgspec.Meta(pattern=whole(CURRENCY_RE))]
Time = Annotated[datetime, msgspec.Meta(tz=True, description="RFC 3339, with an offset")]
# A time in an answer: already RFC 3339 text with milliseconds and Z (timefmt.to_rfc3339).
TimeText = Annotated[str, msgspec.Meta(extra_json_schema={"format": "date-time"})]


def decode(value: object, into: type[T], where: str = "body") -> T:
    """A decoded JSON value (orjson's) as the shape `into`, strictly: exact types (a bool is
    no int, a string no number), bounds, whole-string patterns, no unknown field; otherwise
    400 invalid_request naming the field."""
    try:
        return msgspec.convert(value, into, strict=True)
    except msgspec.ValidationError as exc:
        raise invalid_request(describe(exc, where)) from None


_AT = re.compile(r"(?P<what>.*) - at `\$(?P<path>[^`]*)`\Z", re.S)
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<field>[^`]*)`\Z")
_MISSING = re.compile(r"Object missing required field `(?P<field>[^`]*)`\Z")


def describe(exc: msgspec.ValidationError, where: str = "body") -> str:
    """msgspec's error, told the API's way: "coupons[0].validity.days: expected ..."."""
    message = str(exc)
    match = _AT.fullmatch(message)
    what, path = (match["what"], match["path"]) if match else (message, "")
    unknown = _UNKNOWN.fullmatch(what)
    if unknown:
        return f"Unknown field {_join(where, path + '.' + unknown['field'])!r}."
    missing = _MISSING.fullmatch(what)
    if missing:
        return f"{_join(where, path + '.' + missing['field'])} is required."
    return f"{_join(where, path)}: {what[0].lower() + what[1:]}."


def _join(where: str, path: str) -> str:
    path = path.lstrip(".")
    if where == "body":
        return path or "body"
    return f"{where}{'.' if path and not path.startswith('[') else ''}{path}"


def epoch_ms(t: datetime, name: str) -> int:
    """An accepted time as epoch ms, within the years the service takes (2000..2200)."""
    ms = (t - _EPOCH) // _MS
    if not MIN_TIME_MS <= ms <= MAX_TIME_MS:
        raise invalid_request(f"{name} must be between the years 2000 and 2200.")
    return ms


def to_builtins(value: object) -> Any:
    """An answer (a Struct, or anything holding Structs) as plain JSON values."""
    return msgspec.to_builtins(value)


def encode(value: object) -> bytes:
    """An answer's JSON bytes (orjson, the service's codec)."""
    return orjson.dumps(to_builtins(value))
