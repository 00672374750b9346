"""Redemption codes: how a code is made, typed, checked and found, without storing it.

A code is 18 characters of an alphabet with no 0/O/1/I/L, typed in three groups of
six (ABCDEF-GHJKMN-PQRS23):

  3 characters   the Redis Cluster hash slot of its campaign (0..16383), so a code
                 finds its campaign's shard with no global lookup key
  14 characters  the secret part: 31^14 = 2^69.4 values
  1 character    a check character (weighted sum mod 31) over the 17 before it: a
                 mistyped character or two swapped neighbours are refused without a
                 Redis call

The secret part is HMAC-SHA256(code secret, batch nonce + index): the nonce is 32
bytes from `secrets`, the code secret comes from the settings. So a batch's codes
can be written out once (the export) and then never again: the export deletes the
nonce. Redis only ever holds HMAC(code secret, code), the keyed hash a redemption
looks up.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import cache

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_BASE = len(ALPHABET)  # 31
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
SLOT_CHARS, SECRET_CHARS = 3, 14
CODE_CHARS = SLOT_CHARS + SECRET_CHARS + 1
GROUP = 6
HASH_HEX = 32  # the keyed hash's hex digits kept in Redis (128 bits)


def _digits(value: int, count: int) -> str:
    out = []
    for _ in range(count):
        value, d = divmod(value, _BASE)
        out.append(ALPHABET[d])
    return "".join(reversed(out))


def check_char(body: str) -> str:
    """The character c that makes sum(position * value) over body + c divisible by 31.

    31 is prime and every weight (1..18) is below it, so any single wrong character
    changes the sum by weight x difference, never a multiple of 31; two swapped
    neighbours change it by the difference of their values. Both are always caught.
    """
    total = sum((i + 1) * _INDEX[c] for i, c in enumerate(body))
    weight = len(body) + 1
    return ALPHABET[(-total * pow(weight, -1, _BASE)) % _BASE]


def make_code(secret: bytes, nonce: bytes, index: int, slot: int) -> str:
    """The index-th code of a batch, grouped for typing."""
    digest = hmac.new(secret, b"code:" + nonce + index.to_bytes(8, "big"), hashlib.sha256)
    body = _digits(slot, SLOT_CHARS) + _digits(int.from_bytes(digest.digest(), "big"),
                                               SECRET_CHARS)
    code = body + check_char(body)
    return "-".join(code[i:i + GROUP] for i in range(0, CODE_CHARS, GROUP))


def normalize(typed: str) -> str | None:
    """The code as typed (any case, spaces or dashes), or None when it cannot be one:
    a wrong length, a character outside the alphabet, or a failed check character."""
    if len(typed) > 64:
        return None
    code = "".join(c for c in typed.upper() if c not in " -")
    if len(code) != CODE_CHARS or any(c not in _INDEX for c in code):
        return None
    if check_char(code[:-1]) != code[-1]:
        return None
    if slot_of(code) >= REDIS_CLUSTER_HASH_SLOTS:
        return None
    return code


def slot_of(code: str) -> int:
    """The hash slot a normalized code names."""
    value = 0
    for c in code[:SLOT_CHARS]:
        value = value * _BASE + _INDEX[c]
    return value


def code_hash(secret: bytes, code: str) -> str:
    """What Redis keeps: HMAC-SHA256(code secret, normalized code), 128 bits in hex."""
    return hmac.new(secret, b"redeem:" + code.encode(), hashlib.sha256).hexdigest()[:HASH_HEX]


def campaign_slot(campaign_id: str) -> int:
    """The hash slot of a campaign's keys (its id is their hash tag)."""
    return int(key_slot(b"{" + campaign_id.encode() + b"}"))


@cache
def _slot_tags() -> tuple[str, ...]:
    """For each hash slot, a short string that hashes to it (built once, about 0.1 s)."""
    tags: list[str | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
    left, n = REDIS_CLUSTER_HASH_SLOTS, 0
    while left:
        slot = key_slot(str(n).encode())
        if tags[slot] is None:
            tags[slot] = str(n)
            left -= 1
        n += 1
    return tuple(t for t in tags if t is not None)


def slot_tag(slot: int) -> str:
    """A hash tag whose keys live in `slot`: the codes hash of a slot is named with it, so
    it sits on the same shard as every campaign of that slot."""
    return _slot_tags()[slot]
