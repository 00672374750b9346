"""Values Redis keeps as fields joined by the unit separator (\\x1f; `\\31` in Lua), each
layout once. No id, tag or channel can contain the separator (they are validated), and
an Idempotency-Key is printable ASCII. The Lua script that writes or reads each layout is
named beside it; keys.py names the keys that hold them.
"""

from __future__ import annotations

from dataclasses import dataclass

SEP = "\x1f"


def join(*fields: str) -> str:
    return SEP.join(fields)


# claim.lua's ARGV: the thirteen fields of a claim (flashclaim.claim.decision.ClaimRequest).


@dataclass(frozen=True, slots=True)
class IssuedCoupon:
    """A slot's coupons hash value, written by claim.lua, read by use_coupon.lua:
    "<campaign>\\31<valid_until ms>\\31<user>\\31<most off, minor units>"."""

    campaign_id: str
    valid_until: int
    user_id: str

    @classmethod
    def unpack(cls, value: str) -> IssuedCoupon:
        campaign_id, valid_until, user_id, _ = value.split(SEP, 3)
        return cls(campaign_id, int(valid_until), user_id)


def event_count_field(campaign_id: str, event: str) -> str:
    """A slot's event-counts field (use_coupon.lua): "<campaign>\\31<redeemed|released>"."""
    return join(campaign_id, event)


def code_owner(entry: str) -> str:
    """The campaign of a codes-hash value (store_codes.lua, claim.lua):
    "<campaign>:<uses left>[:<uses per user>]" (":" joins it: a campaign id has none)."""
    return entry.partition(":")[0]


def code_of_code_user(field: str) -> str:
    """The code of a code-users hash field (claim.lua): "<code hash>\\31<user>"."""
    return field.partition(SEP)[0]


@dataclass(frozen=True, slots=True)
class Transfer:
    """A bucket's transfers-out entry (bucket_give.lua):
    "<to>\\31<units>\\31<at ms>\\31<budget moved>" (an entry logged before budgets had
    no last part: it moved none)."""

    to: int
    amount: int  # units: grants' worth of stock
    at: int
    budget: int = 0  # minor units of budget moved with them
    values: str = ""  # a random coupon's values moved with them, "<value>:<count>,..."

    @classmethod
    def unpack(cls, value: str | bytes) -> Transfer:
        text = value.decode() if isinstance(value, bytes) else value
        to, amount, at, *rest = text.split(SEP)
        return cls(int(to), int(amount), int(at), int(rest[0]) if rest else 0,
                   rest[1] if len(rest) > 1 else "")


def grant_user(user_id: str, tags: tuple[str, ...], value: int | None = None) -> str:
    """A grant's users list entry (submit_grant.lua): "<user>\\31<,tag,tag,>", then
    "\\31<personal value>" when the grant gives the user one."""
    packed = join(user_id, "," + ",".join(tags) + "," if tags else "")
    return packed if value is None else join(packed, str(value))


def grant_user_of(packed: str) -> tuple[str, tuple[str, ...], int | None]:
    user_id, tags, *value = packed.split(SEP)
    return user_id, tuple(t for t in tags.split(",") if t), int(value[0]) if value else None
