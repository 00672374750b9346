"""Operator grants: the same decision as a grab, idempotent per (grant, user), resumable
after a crash, scheduled grants that survive a restart."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from redis.asyncio import Redis

from flashclaim.claim.grant_runner import GrantRunner
from flashclaim.claim.identity import Identity
from flashclaim.claim.service import ClaimService
from flashclaim.keys import KeySpace
from flashclaim.settings import Settings
from flashclaim.store.grant_store import GrantStore
from flashclaim.store.scripts import Scripts

from helpers import ADMIN, app_client, claim, create_campaign, entries, iso, stats


async def submit(client: httpx.AsyncClient, campaign_id: str, grant_id: str, users: list[Any],
                 **extra: Any) -> httpx.Response:
    return await client.post(f"/v1/admin/campaigns/{campaign_id}/grants", headers=ADMIN,
                             json={"grant_id": grant_id, "users": users, **extra})


async def wait_done(client: httpx.AsyncClient, campaign_id: str, grant_id: str,
                    seconds: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        r = await client.get(f"/v1/admin/campaigns/{campaign_id}/grants/{grant_id}",
                             headers=ADMIN)
        body: dict[str, Any] = r.json()
        if body["state"] == "done":
            return body
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.02)


async def test_a_grant_decides_each_user_like_a_claim_and_records_its_source(
    client: httpx.AsyncClient, redis_client: Redis, keyspace: KeySpace,
) -> None:
    c = await create_campaign(client, stock=5, exclude_segments=["risky"])
    await client.put("/v1/admin/blocklist/bad", headers=ADMIN, json={"reason": "fraud"})
    assert (await claim(client, c["id"], "had")).status_code == 201
    users: list[Any] = ["a", "b", "had", "bad", {"user_id": "r", "tags": ["risky"]}, "c", "d",
                        "e", "f"]
    r = await submit(client, c["id"], "comp-1", users)
    assert r.status_code == 202 and r.json()["total"] == 9
    done = await wait_done(client, c["id"], "comp-1")
    assert done["processed"] == 9
    assert done["outcomes"] == {"granted": 4, "already_claimed": 1, "blocked": 1,
                                "not_eligible": 1, "sold_out": 2}
    outcomes = {u["user_id"]: u["outcome"] for u in done["users"]}
    assert outcomes == {"a": "granted", "b": "granted", "had": "already_claimed",
                        "bad": "blocked", "r": "not_eligible", "c": "granted", "d": "granted",
                        "e": "sold_out", "f": "sold_out"}
    assert all("claim_id" in u for u in done["users"] if u["outcome"] == "granted")
    records = await entries(redis_client, keyspace.campaign(c["id"]).stream)
    grants = [f for _, f in records if f["source"] == "grant"]
    assert len(grants) == 4 and {f["source_ref"] for f in grants} == {"comp-1"}
    assert {f["channel"] for f in grants} == {"grant"}
    assert orjson.loads(grants[0]["claim"])["source"] == "grant"
    s = await stats(client, c["id"])
    assert (s["granted"], s["remaining"], s["recorded"]) == (5, 0, 5)


async def test_resubmitting_a_grant_never_grants_twice(client: httpx.AsyncClient) -> None:
    c = await create_campaign(client, stock=100, per_user_limit=5)
    users = [f"u{i}" for i in range(50)]
    await submit(client, c["id"], "monthly", users)
    first = await wait_done(client, c["id"], "monthly")
    again = await submit(client, c["id"], "monthly", [*users, "late"])
    assert again.json()["total"] == 51
    second = await wait_done(client, c["id"], "monthly")
    assert second["outcomes"] == {"granted": 51} and first["outcomes"] == {"granted": 50}
    assert (await stats(client, c["id"]))["granted"] == 51
    # another grant id is another grant: the same users get a second coupon
    await submit(client, c["id"], "monthly-2", users[:3])
    assert (await wait_done(client, c["id"], "monthly-2"))["outcomes"] == {"granted": 3}


async def test_a_crash_between_decision_and_record_resumes_without_double_grants(
    redis_client: Redis, keyspace: KeySpace, client: httpx.AsyncClient,
) -> None:
    """The first batch was decided by claim.lua but its outcomes were never recorded (the
    process died): the next runner decides it again, and every grant replays."""
    c = await create_campaign(client, stock=1000)
    scripts = Scripts(redis_client)
    claims = ClaimService.over(redis_client, scripts, keyspace)
    store = GrantStore(redis_client, scripts, keyspace)
    runner = GrantRunner(store, claims, batch=10)
    await submit(client, c["id"], "crash", [f"u{i}" for i in range(35)])
    first = await store.batch(c["id"], "crash", 0, 10)
    await claims.grant(c["id"], "crash", [Identity(u.user_id) for u in first])  # then "dies"
    assert (await stats(client, c["id"]))["granted"] >= 10
    await runner.run(c["id"], "crash")
    done = await wait_done(client, c["id"], "crash")
    assert done["outcomes"] == {"granted": 35} and done["processed"] == 35
    records = await entries(redis_client, keyspace.campaign(c["id"]).stream)
    assert sorted(f["user_id"] for _, f in records) == sorted(f"u{i}" for i in range(35))


async def test_a_runner_waits_for_a_lease_held_by_another(
    redis_client: Redis, keyspace: KeySpace, client: httpx.AsyncClient,
) -> None:
    c = await create_campaign(client, stock=1000)
    scripts = Scripts(redis_client)
    store = GrantStore(redis_client, scripts, keyspace)
    runner = GrantRunner(store, ClaimService.over(redis_client, scripts, keyspace))
    assert await store.take_lease(c["id"], "held", "someone-else", 60_000)
    await submit(client, c["id"], "held", ["a"])
    assert await runner.run(c["id"], "held") is False  # not its turn
    assert await store.progress(c["id"], "held") == (0, 1)
    await redis_client.delete(keyspace.grant_lease(c["id"], "held"))  # the holder's lapsed
    await runner.run(c["id"], "held")  # (or the service's own runner takes it first)
    assert (await wait_done(client, c["id"], "held"))["outcomes"] == {"granted": 1}


async def test_runners_racing_on_one_grant_grant_each_user_once(
    redis_client: Redis, keyspace: KeySpace, client: httpx.AsyncClient,
) -> None:
    c = await create_campaign(client, stock=10_000)
    scripts = Scripts(redis_client)
    store = GrantStore(redis_client, scripts, keyspace)
    await submit(client, c["id"], "race", [f"u{i}" for i in range(2000)])
    runners = [GrantRunner(store, ClaimService.over(redis_client, scripts, keyspace), batch=50,
                           lease_ms=1) for _ in range(4)]  # leases lapse at once: all run
    await asyncio.gather(*(r.run(c["id"], "race") for r in runners))
    for r in runners:
        await r.run(c["id"], "race")
    done = await wait_done(client, c["id"], "race")
    assert done["outcomes"] == {"granted": 2000}
    s = await stats(client, c["id"])
    assert (s["granted"], s["recorded"]) == (2000, 2000)


async def test_a_scheduled_grant_waits_for_its_time_and_survives_a_restart(
    settings: Settings,
) -> None:
    async with app_client(settings) as first:
        c = await create_campaign(first, stock=10)
        r = await submit(first, c["id"], "later", ["a", "b"], at=iso(timedelta(seconds=1.5)))
        assert r.json()["state"] == "scheduled"
    # the service that took it is gone; a new one starts and runs it at its time
    async with app_client(settings) as second:
        early = (await second.get(f"/v1/admin/campaigns/{c['id']}/grants/later",
                                  headers=ADMIN)).json()
        assert early["state"] == "scheduled" and early["processed"] == 0
        done = await wait_done(second, c["id"], "later")
        assert done["outcomes"] == {"granted": 2}
        first_grant = (await second.get(f"/v1/admin/campaigns/{c['id']}/claims",
                                        headers=ADMIN)).json()["claims"][0]
        assert int(first_grant["entry_id"].split("-")[0]) >= int(
            datetime.fromisoformat(done["at"]).timestamp() * 1000)


async def test_bad_grants_are_refused_and_write_nothing(
    client: httpx.AsyncClient, redis_client: Redis, keyspace: KeySpace,
) -> None:
    c = await create_campaign(client)
    cases: list[dict[str, Any]] = [
        {"users": ["a"]},
        {"grant_id": "g", "users": []},
        {"grant_id": "g", "users": ["a"] * 10_001},
        {"grant_id": "g", "users": ["bad id"]},
        {"grant_id": "g", "users": [{"user_id": "a", "tags": ["no spaces"]}]},
        {"grant_id": "g", "users": [{"user_id": "a", "segment": "x"}]},
        {"grant_id": "g", "users": [7]},
        {"grant_id": "g b", "users": ["a"]},
        {"grant_id": "g", "users": ["a"], "at": "tomorrow"},
        {"grant_id": "g", "users": ["a"], "extra": True},
    ]
    for body in cases:
        r = await client.post(f"/v1/admin/campaigns/{c['id']}/grants", headers=ADMIN, json=body)
        assert r.status_code == 400, (body, r.text)
    r = await submit(client, "nope", "g", ["a"])
    assert (r.status_code, r.json()["error"]) == (404, "campaign_not_found")
    assert await redis_client.zcard(keyspace.pending_grants) == 0
    assert await redis_client.keys(f"{keyspace.namespace}:*grant:*") == []
    r = await client.get(f"/v1/admin/campaigns/{c['id']}/grants/none", headers=ADMIN)
    assert (r.status_code, r.json()["error"]) == (404, "grant_not_found")


async def test_the_grant_command_grants_a_file_and_refuses_a_bad_one(
    client: httpx.AsyncClient, redis_client: Redis, keyspace: KeySpace, tmp_path: Path,
    settings: Settings,
) -> None:
    c = await create_campaign(client, stock=None, segments=["vip"])
    good = tmp_path / "users.txt"
    good.write_text("# compensation for order delays\n" + "".join(
        f"v{i} vip,new\n" for i in range(1200)) + "\nplain\n")
    env = {**os.environ, "FLASHCLAIM_REDIS_URL": str(settings.redis_url),
           "FLASHCLAIM_NAMESPACE": keyspace.namespace}
    run = [sys.executable, "-m", "flashclaim", "grant", c["id"], "--grant-id", "file-1",
           "--users-file"]
    result = await asyncio.to_thread(subprocess.run, [*run, str(good)], env=env,
                                     capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "granted 1,200" in result.stdout and "not_eligible 1" in result.stdout
    assert "1,201/1,201" in result.stderr  # the progress bar reached the end
    assert (await stats(client, c["id"]))["granted"] == 1200
    again = await asyncio.to_thread(subprocess.run, [*run, str(good)], env=env,
                                    capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and (await stats(client, c["id"]))["granted"] == 1200
    bad = tmp_path / "bad.txt"
    bad.write_text("ok1\nnot ok!\n")
    result = await asyncio.to_thread(subprocess.run, [*run[:-3], "--grant-id", "file-2",
                                                      "--users-file", str(bad)],
                                     env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "bad.txt:2" in result.stderr
    assert await redis_client.exists(keyspace.campaign(c["id"]).grant("file-2").meta) == 0


def standalone(redis_client: Redis, keyspace: KeySpace) -> tuple[GrantStore, GrantRunner]:
    """A grant store and a runner of this test's own (next to the app's)."""
    scripts = Scripts(redis_client)
    store = GrantStore(redis_client, scripts, keyspace)
    return store, GrantRunner(store, ClaimService.over(redis_client, scripts, keyspace))


async def test_a_grant_that_lost_its_pending_entry_is_found_by_the_sweep(
    redis_client: Redis, keyspace: KeySpace, client: httpx.AsyncClient,
) -> None:
    """The state a lost race (or a crash between a submit's two steps) leaves: users queued,
    no pending entry. A runner's sweep finds the grant and finishes it."""
    c = await create_campaign(client, stock=100)
    r = await submit(client, c["id"], "lost", ["a", "b"], at=iso(timedelta(seconds=30)))
    assert r.json()["state"] == "scheduled"
    await redis_client.zrem(keyspace.pending_grants, f"{c['id']}/lost")  # the entry is gone
    # it was meant to start now: its start is in the undone set's score, moved to the past
    await redis_client.zadd(keyspace.campaign(c["id"]).grants_undone, {"lost": 0})
    await redis_client.delete(keyspace.grant_sweep_lease)  # the app's runner swept at start
    store, runner = standalone(redis_client, keyspace)
    await runner.run_due()
    assert await store.progress(c["id"], "lost") == (2, 2)
    assert (await wait_done(client, c["id"], "lost"))["outcomes"] == {"granted": 2}


async def test_a_second_call_racing_the_finish_of_the_first_is_never_stranded(
    redis_client: Redis, keyspace: KeySpace, client: httpx.AsyncClient,
) -> None:
    """Two calls per grant id, the second landing while runners finish the first: every
    grant ends done with both users decided (before any sweep could rescue one)."""
    c = await create_campaign(client, stock=None)
    store, runner = standalone(redis_client, keyspace)
    await redis_client.set(keyspace.grant_sweep_lease, "nobody", px=60_000)  # no sweep now
    runners = [asyncio.create_task(runner.run_forever(poll_s=0.001))]
    ids = [f"two-{i}" for i in range(300)]
    try:
        gate = asyncio.Semaphore(16)  # the app's Redis pool serves these too

        async def two_calls(grant_id: str) -> None:
            async with gate:
                first = await submit(client, c["id"], grant_id, [grant_id + "-a"])
                await asyncio.sleep(0.001 * (hash(grant_id) % 5))
                second = await submit(client, c["id"], grant_id, [grant_id + "-b"])
                assert (first.status_code, second.status_code) == (202, 202)

        await asyncio.gather(*(two_calls(g) for g in ids))
        deadline = time.monotonic() + 6  # under the runner's sweep period
        while True:
            progress = [await store.progress(c["id"], g) for g in ids]
            if all(p == (2, 2) for p in progress):
                break
            stuck = [g for g, p in zip(ids, progress, strict=True) if p != (2, 2)]
            assert time.monotonic() < deadline, f"stranded: {stuck[:5]} ({len(stuck)})"
            await asyncio.sleep(0.05)
    finally:
        for task in runners:
            task.cancel()
    assert (await stats(client, c["id"]))["granted"] == 600


async def test_one_round_of_the_runner_drains_every_due_grant(
    redis_client: Redis, keyspace: KeySpace, client: httpx.AsyncClient,
) -> None:
    c = await create_campaign(client, stock=None)
    store, runner = standalone(redis_client, keyspace)
    later = iso(timedelta(hours=1))
    for i in range(500):  # scheduled, so that the app's own runner leaves them
        r = await submit(client, c["id"], f"one-{i}", [f"u{i}"], at=later)
        assert r.status_code == 202
    await redis_client.zadd(keyspace.pending_grants,
                            {f"{c['id']}/one-{i}": 0 for i in range(500)})  # due now
    await runner.run_due()
    assert [await store.progress(c["id"], f"one-{i}") for i in range(500)] == [(1, 1)] * 500
    assert await redis_client.zcard(keyspace.pending_grants) == 0


async def test_a_resubmission_says_what_it_added_and_keeps_the_start(
    client: httpx.AsyncClient,
) -> None:
    c = await create_campaign(client, stock=100)
    at = iso(timedelta(hours=1))
    first = await submit(client, c["id"], "g", ["a", {"user_id": "b", "tags": ["vip"]}], at=at)
    assert (first.json()["added"], first.json()["already_in_grant"]) == (2, 0)
    again = await submit(client, c["id"], "g", [{"user_id": "b", "tags": ["new"]}, "c"])
    assert (again.json()["added"], again.json()["already_in_grant"], again.json()["total"]) \
        == (1, 1, 3)
    moved = await submit(client, c["id"], "g", ["d"], at=iso(timedelta(hours=2)))
    assert (moved.status_code, moved.json()["error"]) == (409, "grant_at_fixed")
    status = (await client.get(f"/v1/admin/campaigns/{c['id']}/grants/g",
                               headers=ADMIN)).json()
    assert status["total"] == 3  # the refused call added nobody
