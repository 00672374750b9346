"""claim.lua and its sibling scripts, called directly, on Valkey and on Redis 7."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from flashclaim.campaigns import META_FIELDS
from flashclaim.claim.decision import ClaimCode, ClaimDecision, ClaimRequest
from flashclaim.holdout import CONTROL, group_of
from flashclaim.keys import KeySpace
from flashclaim.schemas.campaigns import campaign_spec
from flashclaim.store.campaign_store import CampaignStore
from flashclaim.store.connection import server_time_ms
from flashclaim.store.scripts import Scripts, StockCode
from flashclaim.stream import FIELDS, SCHEMA_VERSION, ClaimRecord, Source
from flashclaim.timefmt import to_rfc3339

from helpers import entries

KS = KeySpace("lua")
HOUR = 3_600_000
RedisScripts = tuple[Redis, Scripts]


async def make_campaign(r: Redis, scripts: Scripts, **overrides: Any) -> str:
    now = await server_time_ms(r)
    body: dict[str, Any] = {
        "id": "c" + secrets.token_hex(4),
        "name": "lua",
        "stock": 5,
        "coupons": [{"type": "cash", "value": 500}],
    }
    body.update(overrides)
    for name in ("starts_at", "ends_at"):
        if isinstance(body.get(name), int):  # offsets in ms from now
            body[name] = to_rfc3339(now + body[name])
    if "admission" in body:  # a drawn campaign: its times as offsets too
        body["admission"] = {"mode": "draw", **{
            k: to_rfc3339(now + v) for k, v in body["admission"].items() if k != "mode"}}
    spec = campaign_spec(body, now)
    await CampaignStore(r, scripts, KS).create(spec, now)
    return spec.id


def request(user: str, *, tags: tuple[str, ...] = (), channel: str | None = None,
            token: str | None = None, blocked: bool = False,
            source: Source = Source.GRAB, device: str = "", challenge: str = "",
            entry: bool = False) -> ClaimRequest:
    claim_id = secrets.token_hex(12)
    return ClaimRequest(claim_id, token or "r:" + claim_id, user, tags, channel, None,
                        source=source, blocked=blocked, device_id=device, challenge=challenge,
                        entry=entry)


async def decide(
    scripts: Scripts, campaign_id: str, *requests: ClaimRequest
) -> list[ClaimDecision]:
    return [ClaimDecision.of(d) for d in await scripts.claim(KS.campaign(campaign_id),
                                                              list(requests))]


@dataclass
class Case:
    name: str
    expected: list[ClaimCode]
    taps: list[dict[str, Any]]
    campaign: dict[str, Any] = field(default_factory=dict)
    paused: bool = False
    payload: str | None = None  # expected payload of the last decision, when fixed


CASES = [
    Case("granted", [ClaimCode.GRANTED], [{"user": "u1"}]),
    Case("not_started", [ClaimCode.NOT_STARTED], [{"user": "u1"}], {"starts_at": HOUR}),
    Case("ended", [ClaimCode.ENDED], [{"user": "u1"}], {"starts_at": -2 * HOUR, "ends_at": -HOUR}),
    Case("paused", [ClaimCode.PAUSED], [{"user": "u1"}], paused=True),
    Case("wrong channel", [ClaimCode.NOT_ELIGIBLE], [{"user": "u1", "channel": "web"}],
         {"channels": ["app"]}, payload="channel"),
    Case("no channel", [ClaimCode.NOT_ELIGIBLE], [{"user": "u1"}], {"channels": ["app"]},
         payload="channel"),
    Case("right channel", [ClaimCode.GRANTED], [{"user": "u1", "channel": "app"}],
         {"channels": ["web", "app"]}),
    Case("missing segment", [ClaimCode.NOT_ELIGIBLE], [{"user": "u1", "tags": ("new",)}],
         {"segments": ["vip"]}, payload="segment"),
    Case("segment prefix is not a match", [ClaimCode.NOT_ELIGIBLE],
         [{"user": "u1", "tags": ("vi",)}], {"segments": ["vip"]}, payload="segment"),
    Case("one of the segments", [ClaimCode.GRANTED], [{"user": "u1", "tags": ("new", "vip")}],
         {"segments": ["gold", "vip"]}),
    Case("already_claimed", [ClaimCode.GRANTED, ClaimCode.ALREADY_CLAIMED],
         [{"user": "u1"}, {"user": "u1"}], payload="1"),
    Case("per_user_limit 2", [ClaimCode.GRANTED, ClaimCode.GRANTED, ClaimCode.ALREADY_CLAIMED],
         [{"user": "u1"}] * 3, {"per_user_limit": 2}),
    Case("sold_out", [ClaimCode.GRANTED, ClaimCode.SOLD_OUT], [{"user": "u1"}, {"user": "u2"}],
         {"stock": 1}, payload=""),
    Case("rate_limited", [ClaimCode.GRANTED, ClaimCode.ALREADY_CLAIMED, ClaimCode.RATE_LIMITED],
         [{"user": "u1"}] * 3, {"rate_limit": {"max": 2, "per_seconds": 60}}),
    Case("replay", [ClaimCode.GRANTED, ClaimCode.REPLAY],
         [{"user": "u1", "token": "k:u1:x"}, {"user": "u1", "token": "k:u1:x"}]),
    Case("excluded segment", [ClaimCode.NOT_ELIGIBLE, ClaimCode.GRANTED],
         [{"user": "u1", "tags": ("vip", "risky")}, {"user": "u2", "tags": ("vip",)}],
         {"exclude_segments": ["risky"]}),
    Case("blocked", [ClaimCode.BLOCKED, ClaimCode.GRANTED],
         [{"user": "u1", "blocked": True}, {"user": "u2"}], payload=None),
    Case("blocked is decided after eligibility", [ClaimCode.NOT_ELIGIBLE],
         [{"user": "u1", "blocked": True}], {"channels": ["app"]}),
    Case("daily_limit", [ClaimCode.GRANTED, ClaimCode.DAILY_LIMIT],
         [{"user": "u1"}, {"user": "u1"}], {"per_user_limit": 5, "per_user_daily_limit": 1}),
    Case("daily limit 2 of lifetime 3", [ClaimCode.GRANTED] * 2 + [ClaimCode.DAILY_LIMIT],
         [{"user": "u1"}] * 3, {"per_user_limit": 3, "per_user_daily_limit": 2}),
    Case("lifetime before daily", [ClaimCode.GRANTED, ClaimCode.ALREADY_CLAIMED],
         [{"user": "u1"}] * 2, {"per_user_limit": 1, "per_user_daily_limit": 1}),
    Case("unlimited stock", [ClaimCode.GRANTED] * 8, [{"user": f"u{i}"} for i in range(8)],
         {"stock": None}),
    Case("grants skip the tap rate limit", [ClaimCode.GRANTED] * 3,
         [{"user": "u1", "source": Source.GRANT, "channel": "grant"}] * 3,
         {"rate_limit": {"max": 1, "per_seconds": 60}, "per_user_limit": 3}),
    Case("device_required", [ClaimCode.DEVICE_REQUIRED, ClaimCode.GRANTED],
         [{"user": "u1"}, {"user": "u1", "device": "d1"}], {"per_device_limit": 1}),
    Case("a missing device allowed", [ClaimCode.GRANTED] * 2,
         [{"user": "u1"}, {"user": "u2"}], {"per_device_limit": 1, "missing_device": "allow"}),
    Case("device_limit", [ClaimCode.GRANTED, ClaimCode.DEVICE_LIMIT, ClaimCode.GRANTED],
         [{"user": "u1", "device": "d1"}, {"user": "u2", "device": "d1"},
          {"user": "u3", "device": "d2"}], {"per_device_limit": 1}),
    Case("device limit 2", [ClaimCode.GRANTED] * 2 + [ClaimCode.DEVICE_LIMIT],
         [{"user": f"u{i}", "device": "d1"} for i in range(3)], {"per_device_limit": 2},
         payload="2"),
    Case("grants ignore the device limit", [ClaimCode.GRANTED] * 2,
         [{"user": f"u{i}", "source": Source.GRANT} for i in range(2)], {"per_device_limit": 1}),
    Case("challenge_required", [ClaimCode.CHALLENGE_REQUIRED] * 2 + [ClaimCode.GRANTED],
         [{"user": "u1"}, {"user": "u1", "challenge": "t0:9999999999999:3"},
          {"user": "u1", "challenge": "t1:9999999999999:4"}], {"challenge": {"difficulty": 4}}),
    Case("challenge_spent", [ClaimCode.GRANTED, ClaimCode.CHALLENGE_SPENT, ClaimCode.GRANTED],
         [{"user": "u1", "challenge": "t1:9999999999999:4"},
          {"user": "u2", "challenge": "t1:9999999999999:4"},
          {"user": "u2", "challenge": "t2:9999999999999:4"}], {"challenge": {"difficulty": 4}}),
    Case("draw_campaign", [ClaimCode.DRAW_CAMPAIGN], [{"user": "u1"}],
         {"admission": {"entries_until": HOUR, "draw_at": 2 * HOUR}}),
    Case("not_a_draw", [ClaimCode.NOT_A_DRAW], [{"user": "u1", "entry": True}]),
    Case("entered", [ClaimCode.ENTERED] * 3, [{"user": "u1", "entry": True}] * 2 + [
        {"user": "u2", "entry": True}], {"admission": {"entries_until": HOUR, "draw_at": HOUR}}),
    Case("entries_closed", [ClaimCode.ENTRIES_CLOSED], [{"user": "u1", "entry": True}],
         {"starts_at": -2 * HOUR,
          "admission": {"entries_until": -HOUR, "draw_at": HOUR}}),
    Case("holdout: the control group is refused, the treatment granted",
         [ClaimCode.HOLDOUT if group_of("ab", u, 50) == CONTROL else ClaimCode.GRANTED
          for u in ("u4", "u5", "u6", "u7")],  # (two of each with this salt)
         [{"user": u} for u in ("u4", "u5", "u6", "u7")],
         {"holdout": {"percent": 50, "salt": "ab"}}),
    Case("budget_exhausted", [ClaimCode.GRANTED] * 2 + [ClaimCode.BUDGET_EXHAUSTED],
         [{"user": f"u{i}"} for i in range(3)],
         {"budget": {"amount": 1200, "currency": "CNY"}}, payload="200"),
    Case("entries count per device", [ClaimCode.ENTERED, ClaimCode.DEVICE_LIMIT],
         [{"user": "u1", "entry": True, "device": "d1"},
          {"user": "u2", "entry": True, "device": "d1"}],
         {"per_device_limit": 1, "admission": {"entries_until": HOUR, "draw_at": HOUR}}),
]


def test_every_claim_code_is_reached_by_a_case() -> None:
    reached = {code for case in CASES for code in case.expected} | {
        ClaimCode.CAMPAIGN_NOT_FOUND, ClaimCode.CODE_NOT_FOUND, ClaimCode.CODE_USED,
        ClaimCode.CODE_ALREADY_REDEEMED,  # tests/claim/test_codes.py
        ClaimCode.CAP_REACHED, ClaimCode.CAP_DAILY_LIMIT}  # tests/web/test_cap_groups.py
    assert reached == set(ClaimCode)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_claim_codes(scripts_on_any: RedisScripts, case: Case) -> None:
    r, scripts = scripts_on_any
    campaign_id = await make_campaign(r, scripts, **case.campaign)
    if case.paused:
        assert await scripts.set_paused(KS.campaign(campaign_id), True)
    decisions = []
    for tap in case.taps:
        decisions += await decide(scripts, campaign_id, request(**tap))
    assert [d.code for d in decisions] == case.expected
    if case.payload is not None:
        assert decisions[-1].payload == case.payload
    granted = sum(d.code is ClaimCode.GRANTED for d in decisions)
    assert await r.xlen(KS.campaign(campaign_id).stream) == granted
    rejected = await r.hgetall(KS.campaign(campaign_id).rejected)
    expected_rejections: dict[str, str] = {}
    for d in decisions:
        if d.code not in (ClaimCode.GRANTED, ClaimCode.REPLAY, ClaimCode.ENTERED):
            expected_rejections[d.code] = str(int(expected_rejections.get(d.code, "0")) + 1)
    assert rejected == expected_rejections


async def test_unknown_campaign(scripts_on_any: RedisScripts) -> None:
    _, scripts = scripts_on_any
    [d] = await decide(scripts, "nope", request("u1"))
    assert d.code is ClaimCode.CAMPAIGN_NOT_FOUND


async def test_rate_limited_payload_is_time_to_reset(scripts_on_any: RedisScripts) -> None:
    r, scripts = scripts_on_any
    cid = await make_campaign(r, scripts, rate_limit={"max": 1, "per_seconds": 30})
    await decide(scripts, cid, request("u1"))
    [d] = await decide(scripts, cid, request("u1"))
    assert d.code is ClaimCode.RATE_LIMITED
    assert 0 < int(d.payload) <= 30_000


async def test_grant_writes_the_full_record(scripts_on_any: RedisScripts) -> None:
    r, scripts = scripts_on_any
    cid = await make_campaign(
        r, scripts, coupons=[
            {"type": "threshold", "value": 2000, "min_spend": 10000, "validity": {"days": 7},
             "scope": {"categories": ["shoes", "鞋"], "exclude_skus": ["gift \"card\""]},
             "use_channels": ["store"], "stacking": {"group": "merchant", "exclusive": True}},
            {"type": "discount", "percent_off": 10, "max_discount": 3000, "currency": "USD",
             "validity": {"from": "2026-01-01T00:00:00Z", "until": "2199-01-01T00:00:00Z"}},
        ])
    req = ClaimRequest("claim1", "k:u1:abc", "u1", ("vip",), "app", "key with \"quotes\"")
    [d] = await decide(scripts, cid, req)
    assert d.code is ClaimCode.GRANTED
    claim = orjson.loads(d.payload)
    [(entry_id, fields)] = await entries(r, KS.campaign(cid).stream)
    record = ClaimRecord.decode(entry_id, fields)
    assert record.claim == claim
    assert (record.claim_id, record.campaign_id, record.user_id, record.seq) == (
        "claim1", cid, "u1", 1)
    assert record.channel == "app" and record.idempotency_key == 'key with "quotes"'
    assert claim["claimed_at"] == record.claimed_at
    first, second = claim["coupons"]
    assert first["coupon_id"] == "claim1-1" and second["coupon_id"] == "claim1-2"
    # the rules of use, spliced as the service encoded them (Lua's cjson never re-encodes
    # them: an empty scope stays {}, not [])
    assert first["scope"] == {"categories": ["shoes", "鞋"], "exclude_skus": ['gift "card"']}
    assert (first["use_channels"], first["stacking"]) == (
        ["store"], {"group": "merchant", "exclusive": True})
    assert second["scope"] == {} and "stacking" not in second
    assert first["valid_until"] - first["valid_from"] == 7 * 24 * HOUR
    assert first["valid_from"] == claim["claimed_at"]
    assert second["valid_until"] == 7_226_582_400_000 and second["currency"] == "USD"
    assert await r.hget(KS.campaign(cid).dedup, "k:u1:abc") == d.payload


async def test_lua_and_python_agree_on_the_record_and_the_meta_hash(
    scripts_on_any: RedisScripts,
) -> None:
    """One schema: claim.lua writes exactly stream.FIELDS, in that order, at
    stream.SCHEMA_VERSION, and ClaimRecord.fields() gives back what it wrote; the
    scripts leave the meta hash with exactly campaigns.META_FIELDS."""
    r, scripts = scripts_on_any
    cid = await make_campaign(r, scripts, stock=5)
    [d] = await decide(scripts, cid, ClaimRequest("c1", "r:c1", "u1", (), "web", "k1"))
    assert d.code is ClaimCode.GRANTED
    [(entry_id, fields)] = await entries(r, KS.campaign(cid).stream)
    assert tuple(fields) == FIELDS and fields["v"] == str(SCHEMA_VERSION)
    record = ClaimRecord.decode(entry_id, fields)
    written = dict(fields)
    written["claim"] = orjson.dumps(orjson.loads(written["claim"])).decode()
    assert record.fields() == written
    await scripts.set_paused(KS.campaign(cid), True)
    await scripts.adjust_stock(KS.campaign(cid), 3, 1_000_000_000)
    assert set(await r.hkeys(KS.campaign(cid).meta)) == set(META_FIELDS)


@pytest.mark.parametrize("odd", ['u"1', "u\n", "u\\", "u</1>\u00e9"])
async def test_no_user_id_or_channel_can_break_the_record(
    scripts_on_any: RedisScripts, odd: str
) -> None:
    """The service validates ids; the script does not rely on it: every string is JSON-
    encoded, so the record decodes whatever it carries (a raw "x\n" once broke it)."""
    r, scripts = scripts_on_any
    cid = await make_campaign(r, scripts)
    [d] = await decide(scripts, cid, ClaimRequest("c1", "r:c1", odd, (), odd, None))
    assert d.code is ClaimCode.GRANTED
    [(entry_id, fields)] = await entries(r, KS.campaign(cid).stream)
    record = ClaimRecord.decode(entry_id, fields)
    assert (record.user_id, record.claim["user_id"], record.claim["channel"]) == (odd, odd, odd)
    assert orjson.loads(d.payload) == record.claim


async def test_batch_is_decided_in_order(scripts_on_any: RedisScripts) -> None:
    r, scripts = scripts_on_any
    cid = await make_campaign(r, scripts, stock=2)
    decisions = await decide(
        scripts, cid, request("a"), request("a"), request("b"), request("c"))
    assert [d.code for d in decisions] == [
        ClaimCode.GRANTED, ClaimCode.ALREADY_CLAIMED, ClaimCode.GRANTED, ClaimCode.SOLD_OUT]
    seqs = [orjson.loads(d.payload)["seq"] for d in decisions if d.code is ClaimCode.GRANTED]
    assert seqs == [1, 2]


async def test_same_call_twice_grants_once(scripts_on_any: RedisScripts) -> None:
    """What a client-library retry does: the very same script call, executed again."""
    r, scripts = scripts_on_any
    cid = await make_campaign(r, scripts)
    req = request("u1")
    [first] = await decide(scripts, cid, req)
    [again] = await decide(scripts, cid, req)
    assert (first.code, again.code) == (ClaimCode.GRANTED, ClaimCode.REPLAY)
    assert again.payload == first.payload
    assert await r.xlen(KS.campaign(cid).stream) == 1
    assert await r.hget(KS.campaign(cid).meta, "granted") == "1"


async def test_replay_wins_over_sold_out_and_pause(scripts_on_any: RedisScripts) -> None:
    """A retry of the claim that took the last unit must get that claim, not 'sold out'."""
    r, scripts = scripts_on_any
    cid = await make_campaign(r, scripts, stock=1)
    req = request("u1", token="k:u1:last")
    [first] = await decide(scripts, cid, req)
    await scripts.set_paused(KS.campaign(cid), True)
    [again] = await decide(scripts, cid, request("u1", token="k:u1:last"))
    assert again.code is ClaimCode.REPLAY and again.payload == first.payload


async def test_script_flush_is_transparent(scripts_on_any: RedisScripts) -> None:
    r, scripts = scripts_on_any
    cid = await make_campaign(r, scripts)
    [a] = await decide(scripts, cid, request("u1"))
    await r.script_flush()
    [b] = await decide(scripts, cid, request("u2"))
    assert (a.code, b.code) == (ClaimCode.GRANTED, ClaimCode.GRANTED)


async def test_create_refuses_an_existing_id(scripts_on_any: RedisScripts) -> None:
    r, scripts = scripts_on_any
    cid = await make_campaign(r, scripts, stock=3)
    keys = KS.campaign(cid)
    assert await scripts.create_campaign(keys, ["stock", 99]) == 0
    assert await r.hget(keys.meta, "stock") == "3"


async def test_set_paused_on_a_missing_campaign_writes_nothing(
    scripts_on_any: RedisScripts,
) -> None:
    r, scripts = scripts_on_any
    assert await scripts.set_paused(KS.campaign("ghost"), True) is False
    assert await r.exists(KS.campaign("ghost").meta) == 0


@pytest.mark.parametrize(
    ("delta", "code", "stock", "remaining"),
    [
        (5, StockCode.OK, 15, 14),
        (-9, StockCode.OK, 1, 0),
        (-10, StockCode.INSUFFICIENT_STOCK, 10, 9),
        (999_999_991, StockCode.STOCK_LIMIT, 10, 9),
    ],
)
async def test_adjust_stock(
    scripts_on_any: RedisScripts, delta: int, code: StockCode, stock: int, remaining: int
) -> None:
    r, scripts = scripts_on_any
    cid = await make_campaign(r, scripts, stock=10)
    await decide(scripts, cid, request("u1"))
    result = await scripts.adjust_stock(KS.campaign(cid), delta, 1_000_000_000)
    assert result == (code, stock, remaining)
    meta = await r.hgetall(KS.campaign(cid).meta)
    assert (int(meta["stock"]), int(meta["remaining"]), int(meta["granted"])) == (
        stock, remaining, 1)


async def test_adjust_stock_on_missing_campaign(scripts_on_any: RedisScripts) -> None:
    _, scripts = scripts_on_any
    result = await scripts.adjust_stock(KS.campaign("ghost"), 5, 1_000_000_000)
    assert result == (StockCode.CAMPAIGN_NOT_FOUND, 0, 0)


async def test_each_answer_says_whether_the_user_holds_the_limit(
    scripts_on_any: RedisScripts,
) -> None:
    r, scripts = scripts_on_any
    cid = await make_campaign(r, scripts, per_user_limit=2, stock=1)
    decisions = [d for _ in range(3) for d in await decide(scripts, cid, request("u1"))]
    assert [(d.code, d.holds_limit) for d in decisions] == [
        (ClaimCode.GRANTED, False), (ClaimCode.SOLD_OUT, False), (ClaimCode.SOLD_OUT, False)]
    cid = await make_campaign(r, scripts, per_user_limit=2)
    decisions = [d for _ in range(3) for d in await decide(scripts, cid, request("u1"))]
    assert [(d.code, d.holds_limit) for d in decisions] == [
        (ClaimCode.GRANTED, False), (ClaimCode.GRANTED, True), (ClaimCode.ALREADY_CLAIMED, True)]


async def test_per_ip_limit_counts_taps_from_one_address(scripts_on_any: RedisScripts) -> None:
    r, scripts = scripts_on_any
    cid = await make_campaign(r, scripts, stock=10)

    def from_ip(user: str, ip: str) -> ClaimRequest:
        req = request(user)
        return ClaimRequest(req.claim_id, req.dedup_token, user, (), None, None, ip, (2, 60_000))

    decisions = await decide(scripts, cid, from_ip("a", "10.0.0.1"), from_ip("b", "10.0.0.1"),
                             from_ip("c", "10.0.0.1"), from_ip("d", "10.0.0.2"))
    assert [d.code for d in decisions] == [
        ClaimCode.GRANTED, ClaimCode.GRANTED, ClaimCode.RATE_LIMITED, ClaimCode.GRANTED]
    assert 0 < int(decisions[2].payload) <= 60_000
    assert await r.pttl(KS.campaign(cid).ip_rate_limit("10.0.0.1")) > 0


async def test_the_window_edges_on_the_server_clock(scripts_on_any: RedisScripts) -> None:
    """Tap in a tight loop across a 300 ms window: every grant lies in [starts_at, ends_at),
    and the answers run not_started, then grants, then ended, never back."""
    r, scripts = scripts_on_any
    now = await server_time_ms(r)
    start, end = now + 300, now + 600
    cid = await make_campaign(r, scripts, stock=10**6, rate_limit={"max": 10_000,
                                                                   "per_seconds": 1},
                              starts_at=to_rfc3339(start), ends_at=to_rfc3339(end))
    codes: list[ClaimCode] = []
    deadline = now + 5000
    while not codes or codes[-1] is not ClaimCode.ENDED:
        assert await server_time_ms(r) < deadline
        [d] = await decide(scripts, cid, request(f"u{len(codes)}"))
        codes.append(d.code)
        if d.code is ClaimCode.GRANTED:
            claimed_at = orjson.loads(d.payload)["claimed_at"]
            assert start <= claimed_at < end
    phases = [c for i, c in enumerate(codes) if i == 0 or c is not codes[i - 1]]
    assert phases == [ClaimCode.NOT_STARTED, ClaimCode.GRANTED, ClaimCode.ENDED]


async def test_the_device_cap_holds_under_a_crowd(scripts_on_any: RedisScripts) -> None:
    """100 claims at once, each its own script call, 50 accounts on 5 devices: exactly the
    cap per device (on Valkey and on Redis 7; the API's crowd runs on the cluster)."""
    r, scripts = scripts_on_any
    cid = await make_campaign(r, scripts, stock=1000, per_device_limit=2, per_user_limit=2)
    taps = [decide(scripts, cid, request(f"u{i % 50}", device=f"d{i % 5}")) for i in range(100)]
    decisions = [d for batch in await asyncio.gather(*taps) for d in batch]
    granted = Counter(code for code in (d.code for d in decisions))
    assert granted[ClaimCode.GRANTED] == 10 and granted[ClaimCode.DEVICE_LIMIT] == 90
    assert await r.hgetall(KS.campaign(cid).devices) == {f"d{k}": "2" for k in range(5)}


async def test_a_solution_is_spent_once_under_a_crowd(scripts_on_any: RedisScripts) -> None:
    r, scripts = scripts_on_any
    cid = await make_campaign(r, scripts, stock=100, per_user_limit=50,
                              challenge={"difficulty": 4})
    spent = "t1:9999999999999:4"
    taps = [decide(scripts, cid, request("u1", challenge=spent)) for _ in range(30)]
    decisions = [d for batch in await asyncio.gather(*taps) for d in batch]
    assert Counter(d.code for d in decisions) == {ClaimCode.GRANTED: 1,
                                                 ClaimCode.CHALLENGE_SPENT: 29}


async def test_expired_solutions_leave_the_spent_set(scripts_on_any: RedisScripts) -> None:
    r, scripts = scripts_on_any
    cid = await make_campaign(r, scripts, stock=100, per_user_limit=50,
                              challenge={"difficulty": 4})
    now = await server_time_ms(r)
    await decide(scripts, cid, request("u1", challenge=f"old:{now + 50}:4"))
    assert await r.zcard(KS.campaign(cid).spent) == 1
    deadline = time.monotonic() + 5
    while await server_time_ms(r) <= now + 50:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    await decide(scripts, cid, request("u1", challenge=f"new:{now + 60_000}:4"))
    assert await r.zrange(KS.campaign(cid).spent, 0, -1) == ["new"]


async def test_a_budget_holds_under_a_crowd(scripts_on_any: RedisScripts) -> None:
    """A pack of ¥3 cash and a 10 % coupon capped at ¥2 commits ¥5 a grant: a budget of ¥50
    is reached exactly, never passed, by 60 claims at once."""
    r, scripts = scripts_on_any
    cid = await make_campaign(r, scripts, stock=None, budget={"amount": 5000, "currency": "CNY"},
                              coupons=[{"type": "cash", "value": 300},
                                       {"type": "discount", "percent_off": 10,
                                        "max_discount": 200}])
    taps = [decide(scripts, cid, request(f"u{i}")) for i in range(60)]
    decisions = [d for batch in await asyncio.gather(*taps) for d in batch]
    assert Counter(d.code for d in decisions) == {ClaimCode.GRANTED: 10,
                                                 ClaimCode.BUDGET_EXHAUSTED: 50}
    assert await r.hget(KS.campaign(cid).meta, "committed") == "5000"


async def test_random_face_values_are_drawn_exactly_under_a_crowd(
        scripts_on_any: RedisScripts) -> None:
    """Seven ¥1, two ¥5 and one ¥30: thirty claims at once draw exactly that multiset, so
    the face value issued is exactly ¥47; the multiset is then empty, and so is the stock."""
    r, scripts = scripts_on_any
    cid = await make_campaign(r, scripts, stock=None, coupons=[{"type": "random_cash", "values": [
        {"value": 100, "count": 7}, {"value": 500, "count": 2}, {"value": 3000, "count": 1}]}])
    taps = [decide(scripts, cid, request(f"u{i}")) for i in range(30)]
    decisions = [d for batch in await asyncio.gather(*taps) for d in batch]
    granted = [orjson.loads(d.payload) for d in decisions if d.code is ClaimCode.GRANTED]
    assert Counter(d.code for d in decisions) == {ClaimCode.GRANTED: 10, ClaimCode.SOLD_OUT: 20}
    drawn = Counter(c["coupons"][0]["value"] for c in granted)
    assert drawn == {100: 7, 500: 2, 3000: 1}
    assert all(c["coupons"][0]["type"] == "cash" for c in granted)
    assert sum(value * n for value, n in drawn.items()) == 4700
    meta = KS.campaign(cid).meta
    assert await r.hmget(meta, ["values_left", "remaining"]) == ["100:0,500:0,3000:0", "0"]
    # what the write-back may take off is each coupon's own drawn value
    caps = {c["coupons"][0]["coupon_id"]: str(c["coupons"][0]["value"]) for c in granted}
    stored = await r.hgetall(KS.campaign(cid).coupon_slot().coupons)
    assert {str(k): str(v).rsplit("\x1f", 1)[1] for k, v in stored.items()} == caps

