"""The claim gate: cheap answers after sell-out and for holders, never refusing a possible grant."""

from __future__ import annotations

from redis.asyncio import Redis

from flashclaim.claim.decision import ClaimCode, ClaimDecision
from flashclaim.claim.gate import ClaimGate
from flashclaim.claim.identity import Identity
from flashclaim.claim.service import ClaimService
from flashclaim.errors import ApiError
from flashclaim.keys import KeySpace
from flashclaim.schemas.campaigns import campaign_spec
from flashclaim.store.campaign_store import CampaignStore
from flashclaim.store.connection import server_time_ms
from flashclaim.store.scripts import Scripts

KS = KeySpace("gate")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def script_calls(r: Redis) -> int:
    stats = await r.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def setup(r: Redis, **fields: object) -> tuple[ClaimService, CampaignStore, Clock]:
    scripts = Scripts(r)
    store = CampaignStore(r, scripts, KS)
    now = await server_time_ms(r)
    body = {"id": "c", "name": "c", "stock": 1, "coupons": [{"type": "cash", "value": 1}],
            **fields}
    await store.create(campaign_spec(body, now), now)
    clock = Clock()
    return ClaimService.over(r, scripts, KS,
                             gate=ClaimGate(closed_ttl_ms=200, clock=clock)), store, clock


async def code_of(service: ClaimService, user: str, key: str | None = None) -> str:
    try:
        outcome = await service.claim("c", Identity(user), None, key)
    except ApiError as exc:
        return exc.code
    return "granted" if outcome.status == 201 else "replay"


async def test_after_sell_out_taps_are_answered_from_memory(redis_client: Redis) -> None:
    service, _, _ = await setup(redis_client)
    assert await code_of(service, "a") == "granted"
    assert await code_of(service, "b") == "sold_out"  # Redis says so, and the gate learns
    before = await script_calls(redis_client)
    assert [await code_of(service, f"u{i}") for i in range(50)] == ["sold_out"] * 50
    assert await script_calls(redis_client) == before  # not one script call


async def test_stock_added_elsewhere_is_seen_after_the_bound(redis_client: Redis) -> None:
    service, store, clock = await setup(redis_client)
    await code_of(service, "a")
    assert await code_of(service, "b") == "sold_out"
    await store.adjust_stock("c", 5)  # by another process: this gate is not told
    assert await code_of(service, "c") == "sold_out"  # within the bound: from memory
    clock.now += 0.201  # past the bound
    assert await code_of(service, "c") == "granted"
    assert await code_of(service, "d") == "granted"


async def test_holders_are_answered_from_memory_others_are_not(redis_client: Redis) -> None:
    service, _, _ = await setup(redis_client, stock=10)
    assert await code_of(service, "a") == "granted"  # and now holds its limit of 1
    before = await script_calls(redis_client)
    assert await code_of(service, "a") == "already_claimed"
    assert await script_calls(redis_client) == before
    assert await code_of(service, "b") == "granted"  # anyone who may still claim, does


async def test_a_key_bypasses_the_gate_so_replays_still_work(redis_client: Redis) -> None:
    service, _, _ = await setup(redis_client)
    assert await code_of(service, "a", key="k1") == "granted"  # took the last unit
    assert await code_of(service, "b") == "sold_out"
    assert await code_of(service, "a", key="k1") == "replay"  # not "sold out"


async def test_pause_is_bounded_and_resume_in_process_is_at_once(redis_client: Redis) -> None:
    service, store, _ = await setup(redis_client, stock=10)
    await store.set_paused("c", True)
    assert await code_of(service, "a") == "paused"
    await store.set_paused("c", False)
    service.gate.forget("c")  # what the admin API does in this process
    assert await code_of(service, "a") == "granted"


async def test_ended_is_remembered_for_good(redis_client: Redis) -> None:
    service, _, clock = await setup(redis_client, starts_at="2020-01-01T00:00:00Z",
                                    ends_at="2020-01-02T00:00:00Z")
    assert await code_of(service, "a") == "ended"
    clock.now += 10**6
    before = await script_calls(redis_client)
    assert await code_of(service, "b") == "ended"
    assert await script_calls(redis_client) == before


async def test_answers_from_memory_are_counted(redis_client: Redis) -> None:
    service, store, _ = await setup(redis_client)
    for user in ["a", "b", "c", "d", "a"]:
        await code_of(service, user)
    await service.gate.flush(redis_client, KS)
    stats = await store.stats(await store.get("c"))
    assert stats.rejected == {"sold_out": 3, "already_claimed": 1}


def decision(code: ClaimCode, holds_limit: bool = False) -> ClaimDecision:
    return ClaimDecision(code, "", holds_limit)


def test_holders_are_bounded() -> None:
    gate = ClaimGate(max_holders=2)
    for user in ["a", "b", "c"]:
        gate.learn("x", user, decision(ClaimCode.ALREADY_CLAIMED, True))
    assert gate.answer("x", "a") is None  # evicted: asks Redis, which still knows
    assert gate.answer("x", "c") is ClaimCode.ALREADY_CLAIMED


def test_a_grant_reopens_a_campaign() -> None:
    gate = ClaimGate()
    gate.learn("x", "a", decision(ClaimCode.SOLD_OUT))
    assert gate.answer("x", "b") is ClaimCode.SOLD_OUT
    gate.learn("x", "c", decision(ClaimCode.GRANTED))  # a claim in flight saw stock added
    assert gate.answer("x", "b") is None


async def test_a_user_below_the_limit_is_not_a_holder(redis_client: Redis) -> None:
    service, _, _ = await setup(redis_client, stock=10, per_user_limit=2)
    assert await code_of(service, "a") == "granted"
    assert await code_of(service, "a") == "granted"  # the gate let the second one through
    assert await code_of(service, "a") == "already_claimed"
