"""A hot campaign spread over buckets (flashclaim/store/buckets.py): exact limits, no
oversell, stock that moves to where the claims are, and a ledger that sees every grant."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from flashclaim.claim.gate import ClaimGate
from flashclaim.keys import KeySpace, bucket_key_id
from flashclaim.ledger.consumer import ConsumerOptions, LedgerConsumer
from flashclaim.ledger.db import Ledger, open_ledger
from flashclaim.ledger.reconcile import reconcile_campaign
from flashclaim.ledger.retention import expire_ended
from flashclaim.settings import Settings
from flashclaim.store.buckets import SWEEP_EVERY_S, TRANSFER_GRACE_MS, sweep, totals
from flashclaim.store.connection import sync_client
from flashclaim.store.scripts import Scripts
from flashclaim.tools.local_cluster import LocalCluster

from failover_drill import wait_for_promotion
from helpers import (
    ADMIN,
    ADMIN_TOKEN,
    CODE_SECRET,
    NAMESPACE,
    SyncRedis,
    app_client,
    claim,
    create_campaign,
    server_binary,
    stats,
    users_at_home,
)

KS = KeySpace(NAMESPACE)
# A tap refused sold_out while stock sits in another bucket: at most until a transfer in
# flight is completed by the sweeper, plus the gate's memory of "sold out".
SOLD_OUT_BOUND_S = TRANSFER_GRACE_MS / 1000 + SWEEP_EVERY_S + ClaimGate()._ttl


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    db = open_ledger(None, tmp_path)
    yield db
    db.close()


def carry(r: SyncRedis, ledger: Ledger) -> None:
    consumer = LedgerConsumer(r, ledger, KS, ConsumerOptions(block_ms=10))
    consumer.start()
    for _ in range(50):
        if consumer.run_once() == 0:
            break


async def test_bucket_names_land_on_different_masters(cluster: LocalCluster) -> None:
    with sync_client(cluster.url) as rc:
        for campaign_id in ("hot", "sale-11", "x"):
            ports = {rc.get_node_from_key(KS.campaign(bucket_key_id(campaign_id, b, 3)).meta).port
                     for b in range(3)}
            assert len(ports) == 3, (campaign_id, ports)


async def test_a_user_whose_bucket_ran_out_is_granted_from_another(
        client: httpx.AsyncClient, redis_client: Redis) -> None:
    """Stock 3 over 3 buckets (1 each): three users of bucket 0 all get a coupon."""
    created = await create_campaign(client, id="hot", stock=3, buckets=3)
    assert created["buckets"] == 3
    parts = KS.buckets("hot", 3)
    assert [int(str(await redis_client.hget(p.meta, "remaining"))) for p in parts] == [1, 1, 1]
    home = users_at_home(0, 3, 4)
    answers = [(await claim(client, "hot", u)).status_code for u in home]
    assert answers == [201, 201, 201, 410]  # then sold out everywhere
    s = await stats(client, "hot")
    assert (s["granted"], s["remaining"], s["recorded"]) == (3, 0, 3)
    # two grants came after a refill: their first answers, sold out, are not rejections
    assert s["rejected"] == {"sold_out": 1}
    records = (await client.get("/v1/admin/campaigns/hot/claims", headers=ADMIN)).json()
    assert sorted(r["user_id"] for r in records["claims"]) == sorted(home[:3])
    assert all(r["entry_id"].startswith("0/") for r in records["claims"])  # decided at home
    assert sorted(r["seq"] for r in records["claims"]) == [1, 4, 7]  # bucket 0: 1, 1+3, 1+6


async def test_limits_are_exact_in_the_home_bucket(client: httpx.AsyncClient) -> None:
    await create_campaign(client, id="lim", stock=100, buckets=3, per_user_limit=2,
                          rate_limit={"max": 100, "per_seconds": 1})
    for user in ("ann", "bob", "cy"):
        codes = [(await claim(client, "lim", user)).status_code for _ in range(5)]
        assert codes == [201, 201, 409, 409, 409], user
    assert (await stats(client, "lim"))["granted"] == 6


async def test_admin_changes_reach_every_bucket(client: httpx.AsyncClient,
                                                redis_client: Redis) -> None:
    await create_campaign(client, id="adm", stock=90, buckets=3)
    users = [users_at_home(b, 3, 1, prefix=f"b{b}-")[0] for b in range(3)]
    paused = await client.post("/v1/admin/campaigns/adm/pause", headers=ADMIN)
    assert paused.status_code == 200, paused.text
    for user in users:
        refused = await claim(client, "adm", user)
        assert refused.json()["error"] == "paused", user
    await client.post("/v1/admin/campaigns/adm/resume", headers=ADMIN)
    patched = await client.patch("/v1/admin/campaigns/adm", headers=ADMIN,
                                 json={"per_user_limit": 3})
    assert patched.status_code == 200, patched.text
    for part in KS.buckets("adm", 3):
        assert await redis_client.hget(part.meta, "per_user_limit") == "3"
    assert [(await claim(client, "adm", u)).status_code for u in users] == [201, 201, 201]
    await client.post("/v1/admin/campaigns/adm/end", headers=ADMIN)
    for user in users:
        assert (await claim(client, "adm", user)).json()["error"] == "ended", user


async def test_stock_changes_and_codes(client: httpx.AsyncClient) -> None:
    await create_campaign(client, id="stk", stock=9, buckets=3)
    more = await client.post("/v1/admin/campaigns/stk/stock", headers=ADMIN, json={"delta": 3})
    assert (more.status_code, more.json()["remaining"]) == (200, 12), more.text
    # withdrawing more than bucket 0 holds gathers the other buckets' stock first
    less = await client.post("/v1/admin/campaigns/stk/stock", headers=ADMIN, json={"delta": -11})
    assert (less.status_code, less.json()["remaining"]) == (200, 1), less.text
    too_many = await client.post("/v1/admin/campaigns/stk/stock", headers=ADMIN,
                                 json={"delta": -2})
    assert too_many.status_code == 409
    codes = await client.post("/v1/admin/campaigns/stk/codes", headers=ADMIN,
                              json={"count": 5})
    assert (codes.status_code, codes.json()["error"]) == (409, "campaign_bucketed")


async def test_buckets_share_a_budget_and_spend_it_exactly(
        client: httpx.AsyncClient, redis_client: Redis) -> None:
    """A budget of 20 grants' face value (and ¥5 more than a whole grant) over 3 buckets,
    unlimited stock: a crowd of 60, all at home in one bucket or spread, is granted
    exactly 20; each refusal is counted once; a top-up into bucket 0 reaches the others."""
    cost = 2000  # one ¥20 cash coupon a grant
    await create_campaign(client, id="bud", stock=None, buckets=3,
                          coupons=[{"type": "cash", "value": cost}],
                          budget={"amount": 20 * cost + 500, "currency": "CNY"})
    parts = KS.buckets("bud", 3)
    shares = [int(str(await redis_client.hget(p.meta, "budget"))) for p in parts]
    assert shares == [7 * cost + 500, 7 * cost, 6 * cost]  # whole grants; the rest stays in 0
    crowd = users_at_home(1, 3, 30, prefix="one-") + [f"any-{i}" for i in range(30)]
    replies = await asyncio.gather(*[claim(client, "bud", u) for u in crowd])
    codes = Counter(r.status_code if r.status_code == 201 else r.json()["error"]
                    for r in replies)
    assert codes == {201: 20, "budget_exhausted": 40}
    s = await stats(client, "bud")
    assert s["budget"] == {"amount": 20 * cost + 500, "currency": "CNY",
                           "committed": 20 * cost, "remaining": 500}
    assert s["rejected"] == {"budget_exhausted": 40}  # a retried refusal counted once
    committed = [int(str(await redis_client.hget(p.meta, "committed"))) for p in parts]
    budgets = [int(str(await redis_client.hget(p.meta, "budget"))) for p in parts]
    assert all(c <= b for c, b in zip(committed, budgets, strict=True))  # each bucket's own
    topped = await client.post("/v1/admin/campaigns/bud/budget", headers=ADMIN,
                               json={"delta": 1500})  # ¥5 + ¥15: one more grant
    assert topped.json()["stats"]["budget"]["remaining"] == 2000
    late = users_at_home(2, 3, 2, prefix="late-")
    assert [(await claim(client, "bud", u)).status_code for u in late] == [201, 410]
    assert (await stats(client, "bud"))["budget"]["committed"] == 21 * cost


async def test_a_transfer_cut_short_is_completed_once(client: httpx.AsyncClient,
                                                      redis_client: Redis) -> None:
    """A giver that dies after bucket_give.lua: the stock is in neither bucket (unsellable,
    never sold twice) until the sweeper takes it in, once, however often it runs."""
    await create_campaign(client, id="cut", stock=30, buckets=3)
    scripts = Scripts(redis_client)
    parts = KS.buckets("cut", 3)
    assert await scripts.bucket_give(parts[1], "t1", 2, 4) == (4, 0, "")  # then the giver dies
    t = await totals(redis_client, KS, "cut", 3)
    assert (t.remaining, t.in_transfer, t.granted) == (26, 4, 0)
    assert (await stats(client, "cut"))["remaining"] == 30  # unclaimed, though moving
    assert await sweep(redis_client, scripts, KS) == 0  # younger than the grace: left alone
    assert await sweep(redis_client, scripts, KS, grace_ms=0) == 1
    assert await sweep(redis_client, scripts, KS, grace_ms=0) == 0
    assert await scripts.bucket_take(parts[2], "t1", 4, 0) == 0  # the giver's late take: none
    remaining = [int(str(await redis_client.hget(p.meta, "remaining"))) for p in parts]
    assert remaining == [10, 6, 14]
    assert (await totals(redis_client, KS, "cut", 3)).in_transfer == 0


async def test_a_bucket_created_late_is_made_by_the_sweeper(
        client: httpx.AsyncClient, redis_client: Redis) -> None:
    """A creator that died before the other buckets existed: the sweeper creates them
    from bucket 0, and claims there move bucket 0's stock in."""
    await create_campaign(client, id="late", stock=6, buckets=3)
    parts = KS.buckets("late", 3)
    await redis_client.delete(parts[2].meta)  # as if never created
    await redis_client.hincrby(parts[0].meta, "remaining", 2)  # its share never left 0
    await sweep(redis_client, Scripts(redis_client), KS)
    assert await redis_client.hget(parts[2].meta, "remaining") == "0"
    user = users_at_home(2, 3, 1)[0]
    assert (await claim(client, "late", user)).status_code == 201


def test_reconcile_judges_every_bucket(sync_redis: SyncRedis, ledger: Ledger,
                                       settings: Settings) -> None:
    async def traffic() -> None:
        async with app_client(settings) as c:
            await create_campaign(c, id="rec", stock=12, buckets=3)
            for i in range(10):
                assert (await claim(c, "rec", f"r{i}")).status_code == 201

    asyncio.run(traffic())
    carry(sync_redis, ledger)
    rec = reconcile_campaign(sync_redis, ledger, KS, "rec")
    assert rec.ok, rec.mismatches
    assert (rec.stock, rec.granted, rec.remaining, rec.stream_added, rec.ledger_rows) == (
        12, 10, 2, 10, 10)
    sync_redis.hincrby(KS.buckets("rec", 3)[2].meta, "remaining", 1)  # a coupon from nowhere
    assert any("stock 12 != granted 10 + remaining 3" in m
               for m in reconcile_campaign(sync_redis, ledger, KS, "rec").mismatches)


def crowd_settings(url: str, **extra: Any) -> Settings:
    return Settings(redis_url=url, admin_token=ADMIN_TOKEN, namespace=NAMESPACE,
                    max_in_flight=10_000, code_secret=CODE_SECRET, **extra)


async def grab_crowd(client: httpx.AsyncClient, campaign: str, users: list[str],
                     workers: int = 64, during: Any = None) -> list[tuple[str, float, float,
                                                                          int, str]]:
    """Every user taps, some twice; returns (user, sent, answered, status, claim id or
    error) per tap. `during(answers)` is awaited once, alongside the crowd."""
    queue = [u for i, u in enumerate(users) for _ in range(2 if i % 5 == 0 else 1)]
    answers: list[tuple[str, float, float, int, str]] = []

    async def worker(w: int) -> None:
        for user in queue[w::workers]:
            sent = time.monotonic()
            r = await claim(client, campaign, user)
            body = r.json()
            answers.append((user, sent, time.monotonic(), r.status_code,
                            body.get("claim_id") or body.get("error", "")))

    tasks = [worker(w) for w in range(workers)]
    if during is not None:
        tasks.append(during(answers))
    await asyncio.gather(*tasks)
    return answers


def judge_crowd(answers: list[tuple[str, float, float, int, str]], recorded: list[dict[str, Any]],
                stock: int, *, bound: bool = True) -> None:
    """The promises, from both sides: exactly the stock recorded, nobody above the limit,
    every 201 recorded, and a record nobody was told of only for a tap answered 503 (a
    Redis call that failed, perhaps after the script ran: what a 503 means in the API).
    bound: no grant sent longer than SOLD_OUT_BOUND_S after the first sold_out."""
    ids = [r["claim_id"] for r in recorded]
    assert len(ids) == len(set(ids)) == stock  # exactly the stock, not one more
    assert max(Counter(r["user_id"] for r in recorded).values()) == 1  # nobody above the limit
    told = {a[4] for a in answers if a[3] == 201}
    assert told <= set(ids)  # no acknowledged claim lost
    unavailable = {a[0] for a in answers if a[3] == 503}
    assert {r["user_id"] for r in recorded if r["claim_id"] not in told} <= unavailable
    statuses = Counter((a[3], a[4] if a[3] != 201 else "") for a in answers)
    assert set(statuses) <= {(201, ""), (410, "sold_out"), (409, "already_claimed"),
                             (503, "unavailable")}, statuses
    if bound:
        last_grant_sent = max(a[1] for a in answers if a[3] == 201)
        first_sold_out = min(a[2] for a in answers if a[4] == "sold_out")
        # nobody was refused sold_out while a bucket held stock for longer than the bound
        assert last_grant_sent - first_sold_out < SOLD_OUT_BOUND_S, (last_grant_sent,
                                                                      first_sold_out)


def assert_reconciled(url: str, tmp_path: Path, campaign_id: str, granted: int) -> None:
    """Carry every record into a SQLite ledger; reconcile then finds it all in agreement."""
    with sync_client(url) as rc:
        ledger = open_ledger(None, tmp_path)
        try:
            carry(rc, ledger)
            rec = reconcile_campaign(rc, ledger, KS, campaign_id)
            assert rec.ok, rec.mismatches
            assert (rec.granted, rec.ledger_rows, rec.lag) == (granted, granted, 0)
        finally:
            ledger.close()


async def all_records(client: httpx.AsyncClient, campaign: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = ""
    while True:
        page = (await client.get(f"/v1/admin/campaigns/{campaign}/claims", headers=ADMIN,
                                 params={"after": after, "limit": 300})).json()
        out += page["claims"]
        if page["next"] is None:
            return out
        after = page["next"]


@pytest.mark.cluster
async def test_a_crowd_on_three_masters_gets_exactly_the_stock(
        cluster: LocalCluster, tmp_path: Path) -> None:
    """Stock 1,000 over 3 buckets on 3 masters; 20,000 users, one in five tapping twice."""
    async with app_client(crowd_settings(cluster.url)) as client:
        await create_campaign(client, id="d11", stock=1000, buckets=3,
                              rate_limit={"max": 100, "per_seconds": 1})
        answers = await grab_crowd(client, "d11", [f"p{i}" for i in range(20_000)])
        judge_crowd(answers, await all_records(client, "d11"), 1000)
        s = await stats(client, "d11")
        assert (s["granted"], s["remaining"], s["recorded"]) == (1000, 0, 1000)
    assert_reconciled(cluster.url, tmp_path, "d11", 1000)


def test_the_crowd_judge_catches_what_it_guards() -> None:
    """judge_crowd fails on a sold_out answered 5 s before another grant, and on a record
    of a claim whose tap was refused (a 503 is the only answer that may hide a grant)."""
    answers = [("a", 0.0, 0.1, 201, "c1"), ("b", 0.2, 0.3, 410, "sold_out"),
               ("c", 5.3, 5.4, 201, "c2")]
    recorded = [{"claim_id": "c1", "user_id": "a"}, {"claim_id": "c2", "user_id": "c"}]
    with pytest.raises(AssertionError, match=r"\(5\.3, 0\.3\)"):
        judge_crowd(answers, recorded, 2)
    judge_crowd(answers, recorded, 2, bound=False)  # the rest holds
    hidden = [*recorded[:1], {"claim_id": "c9", "user_id": "b"}]
    with pytest.raises(AssertionError):
        judge_crowd(answers[:2], hidden, 2, bound=False)
    judge_crowd([*answers[:1], ("b", 0.2, 0.3, 503, "unavailable")], hidden, 2, bound=False)


@pytest.mark.cluster
async def test_a_master_killed_mid_run_loses_and_oversells_nothing(tmp_path: Path) -> None:
    """The same crowd with replica acks on; after 300 grants the master of bucket 0 is
    killed -9, its replica takes over, the old master rejoins; a second crowd comes after.
    Exactly the stock is granted, every 201 is recorded, nobody holds two."""
    cluster = LocalCluster(tmp_path / "cluster", server_binary("valkey"))
    cluster.start()
    try:
        bucket0 = KS.campaign("k11").meta
        with sync_client(cluster.url) as rc:
            port = rc.get_node_from_key(bucket0).port
        victim = next(n for n in cluster.nodes[:cluster.masters] if n.port == port)
        replica_port = cluster.nodes[cluster.nodes.index(victim) + cluster.masters].port
        settings = crowd_settings(cluster.url, replica_acks=1, replica_timeout_ms=500,
                                  redis_timeout_ms=1000)

        async def kill_after_300(answers: list[Any]) -> None:
            deadline = time.monotonic() + 60
            while sum(1 for a in answers if a[3] == 201) < 300:
                assert time.monotonic() < deadline, "the crowd never reached 300 grants"
                await asyncio.sleep(0.01)
            victim.kill()
            await asyncio.to_thread(wait_for_promotion, cluster, replica_port)
            victim.start(cluster.binary)

        async with app_client(settings) as client:
            await create_campaign(client, id="k11", stock=1000, buckets=3,
                                  rate_limit={"max": 100, "per_seconds": 1})
            answers = await grab_crowd(client, "k11", [f"p{i}" for i in range(12_000)],
                                       during=kill_after_300)
            answers += await grab_crowd(client, "k11", [f"q{i}" for i in range(8_000)])
            recorded = await all_records(client, "k11")
        assert any(a[3] == 503 for a in answers)  # the kill was felt
        # (a failover may strand a refill: the sold_out bound is not judged here)
        judge_crowd(answers, recorded, 1000, bound=False)
        assert_reconciled(cluster.url, tmp_path, "k11", 1000)
    finally:
        cluster.stop()


def test_retention_waits_for_every_bucket_then_removes_them_all(
        sync_redis: SyncRedis, ledger: Ledger, settings: Settings) -> None:
    async def traffic() -> None:
        async with app_client(settings) as c:
            await create_campaign(c, id="old", stock=9, buckets=3)
            for i in range(6):
                assert (await claim(c, "old", f"o{i}")).status_code == 201
            assert (await c.post("/v1/admin/campaigns/old/end", headers=ADMIN)).status_code == 200

    asyncio.run(traffic())
    parts = KS.buckets("old", 3)
    later = int(time.time() * 1000) + 400 * 86_400_000  # every coupon has expired
    group = "ledger"
    for part in parts:  # the ledger's group has joined, nothing acknowledged yet
        sync_redis.xgroup_create(part.stream, group, id="0", mkstream=True)
    # bucket 0 fully acknowledged, buckets 1 and 2 not: the campaign stays
    read = sync_redis.xreadgroup(group, "t", {parts[0].stream: ">"})
    sync_redis.xack(parts[0].stream, group, *[i for _, entries in read for i, _ in entries])
    assert sync_redis.xlen(parts[1].stream) and sync_redis.xlen(parts[2].stream)
    assert expire_ended(sync_redis, KS, ledger, 0, later) == []
    carry(sync_redis, ledger)
    assert expire_ended(sync_redis, KS, ledger, 0, later) == ["old"]
    assert not any(sync_redis.exists(k) for part in parts for k in part.all_keys())
    assert sync_redis.hget(KS.bucketed, "old") is None


async def test_a_keyed_retry_after_sell_out_replays_from_the_home_bucket(
        client: httpx.AsyncClient) -> None:
    await create_campaign(client, id="key", stock=3, buckets=3)
    user = users_at_home(2, 3, 1, prefix="k")[0]
    first = await claim(client, "key", user, key="tap-1")
    assert first.status_code == 201
    for i in range(3):
        await claim(client, "key", f"other{i}")
    assert (await claim(client, "key", "late")).json()["error"] == "sold_out"  # gate: closed
    again = await claim(client, "key", user, key="tap-1")
    assert (again.status_code, again.json()["claim_id"]) == (200, first.json()["claim_id"])
