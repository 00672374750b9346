"""Webhook delivery against real receivers on 127.0.0.1: ok, failing, slow, dead and
restarted; signed, in order, retried with backoff, dead-lettered after the give-up time, a
slow or dead endpoint holding back no other; replays; and the `flashclaim webhooks` process
killed mid-run: nothing lost, duplicates only with the same event id."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from flashclaim.keys import KeySpace
from flashclaim.outbox import OutEvent
from flashclaim.runtime.embedded import free_port
from flashclaim.store.connection import tool_client
from flashclaim.tools import children
from flashclaim.webhooks.dispatcher import LANE_BATCH, Dispatcher, Policy
from flashclaim.webhooks.endpoints import EndpointStore
from flashclaim.webhooks.signature import HEADER, verify

from helpers import NAMESPACE, Receiver

DEADLINE_S = 30
FAST = Policy(first_retry_s=0.05, max_retry_s=0.2, give_up_after_s=60, timeout_s=2,
              poll_s=0.05)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


KS = KeySpace(NAMESPACE)


def event(n: int, campaign: str = "c1") -> OutEvent:
    return OutEvent(f"claim.granted:k{n}", "claim.granted", campaign, 1_790_000_000_000 + n,
                    {"n": n})


async def tell(r: Redis, events: list[OutEvent]) -> None:
    for e in events:
        await r.xadd(KS.outbox, e.fields())  # type: ignore[arg-type]


async def until(check: Any, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


class Running:
    """A dispatcher running in this event loop until stopped."""

    def __init__(self, r: Redis, policy: Policy = FAST) -> None:
        self.dispatcher = Dispatcher(r, KS, policy)
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.dispatcher.run(self.stop))

    async def close(self) -> None:
        self.stop.set()
        await self.task


@pytest.fixture
async def store(redis_client: Redis) -> AsyncIterator[EndpointStore]:
    yield EndpointStore(redis_client, KS)


async def test_signed_and_in_order(redis_client: Redis, store: EndpointStore,
                                   receiver: Receiver) -> None:
    endpoint = await store.create(receiver.url, ["claim.granted"], 3)
    ignored = await store.create(receiver.url, ["coupon.used"], 3)
    await tell(redis_client, [event(n) for n in range(40)])
    running = Running(redis_client)
    await until(lambda: len(receiver.got) == 40, "every event delivered")
    await running.close()
    assert receiver.ids() == [f"claim.granted:k{n}" for n in range(40)]
    now = int(time.time())
    for headers, body in receiver.got:
        assert verify(endpoint.secret, headers[HEADER], body, now)
        assert not verify(ignored.secret, headers[HEADER], body, now)  # another's secret
        assert not verify(endpoint.secret, headers[HEADER], body + b" ", now)  # tampered
        assert headers["Flashclaim-Event-Type"] == "claim.granted"
    stale = receiver.got[0][0][HEADER]
    assert not verify(endpoint.secret, stale, receiver.got[0][1], now + 301)  # too old
    rows, waiting = await store.deliveries(endpoint.id, 100)
    assert waiting == 0 and len(rows) == 40 and {r["status"] for r in rows} == {"200"}


async def test_a_failing_endpoint_is_retried_with_backoff(redis_client: Redis,
                                                          store: EndpointStore,
                                                          receiver: Receiver) -> None:
    endpoint = await store.create(receiver.url, ["claim.granted"], 3)
    receiver.fail_first = 3
    await tell(redis_client, [event(1), event(2)])
    running = Running(redis_client)
    await until(lambda: len(receiver.got) == 2, "delivered after the failures")
    await running.close()
    assert receiver.ids() == ["claim.granted:k1", "claim.granted:k2"]  # the order held
    rows, _ = await store.deliveries(endpoint.id, 100)
    attempts = [(r["event_id"], r["attempt"], r["status"]) for r in reversed(rows)]
    assert attempts == [("claim.granted:k1", "1", "500"), ("claim.granted:k1", "2", "500"),
                        ("claim.granted:k1", "3", "500"), ("claim.granted:k1", "4", "200"),
                        ("claim.granted:k2", "1", "200")]
    at = [int(r["at"]) for r in reversed(rows)][:4]
    assert at[1] - at[0] >= 25 and at[3] - at[2] >= 2 * 25  # it waited, and longer each time


async def test_a_dead_or_slow_endpoint_holds_back_no_other(redis_client: Redis,
                                                           store: EndpointStore,
                                                           receiver: Receiver) -> None:
    slow = Receiver().start()
    slow.mode = "slow"
    try:
        dead = await store.create(f"http://127.0.0.1:{free_port()}/gone", ["claim.granted"], 3)
        await store.create(slow.url, ["claim.granted"], 3)
        await store.create(receiver.url, ["claim.granted"], 3)
        await tell(redis_client, [event(n) for n in range(8)])
        policy = Policy(first_retry_s=0.05, max_retry_s=0.1, give_up_after_s=0.4,
                        timeout_s=2, poll_s=0.05)
        running = Running(redis_client, policy)
        await until(lambda: len(receiver.got) == 8, "the healthy endpoint got everything")
        assert len(slow.got) < 4  # still on its way (0.5 s each): it held back no one
        await until(lambda: len(slow.got) == 8, "the slow endpoint got everything")
        dead_events = await store.dead(dead.id, 100)
        deadline = time.monotonic() + DEADLINE_S
        while len(dead_events) < 8:  # each given up 0.4 s after its first attempt
            assert time.monotonic() < deadline
            dead_events = await store.dead(dead.id, 100)
            await asyncio.sleep(0.05)
        await running.close()
        assert sorted(d["id"] for d in dead_events) == sorted(receiver.ids())
        rows, waiting = await store.deliveries(dead.id, 1000)
        assert waiting == 0 and rows and {r["status"] for r in rows} == {"0"}
        assert {r["error"] for r in rows} == {"ConnectError"}
    finally:
        slow.stop()


async def test_a_restarted_receiver_gets_everything(redis_client: Redis, store: EndpointStore,
                                                    receiver: Receiver) -> None:
    endpoint = await store.create(receiver.url, ["claim.granted"], 3)
    running = Running(redis_client)
    await tell(redis_client, [event(n) for n in range(10)])
    await until(lambda: len(receiver.got) == 10, "the first ten")
    receiver.stop()  # down while events keep coming
    await tell(redis_client, [event(n) for n in range(10, 25)])
    deadline = time.monotonic() + DEADLINE_S
    while not any(r["status"] == "0" for r in (await store.deliveries(endpoint.id, 5))[0]):
        assert time.monotonic() < deadline, "no attempt failed while the receiver was down"
        await asyncio.sleep(0.02)
    receiver.start()
    await until(lambda: len(receiver.got) == 25, "everything once it is back")
    await running.close()
    assert receiver.ids() == [f"claim.granted:k{n}" for n in range(25)]


async def test_replay_of_one_event_and_of_a_range(redis_client: Redis, store: EndpointStore,
                                                  receiver: Receiver) -> None:
    endpoint = await store.create(receiver.url, ["claim.granted"], 3)
    await tell(redis_client, [event(n) for n in range(5)])
    running = Running(redis_client)
    await until(lambda: len(receiver.got) == 5, "delivered")
    assert await store.replay(endpoint.id, "claim.granted:k3", None, None) == 1
    await until(lambda: len(receiver.got) == 6, "the replay")
    assert await store.replay(endpoint.id, None, 0, int(time.time() * 1000) + 1000) == 5
    await until(lambda: len(receiver.got) == 11, "the range replayed")
    await running.close()
    counts = Counter(receiver.ids())
    assert counts["claim.granted:k3"] == 3 and sum(counts.values()) == 11


def test_the_process_killed_mid_run_loses_nothing(sync_redis: Any, server: Any,
                                                  tmp_path: Path, receiver: Receiver) -> None:
    async def setup() -> None:
        r = tool_client(server.url, timeout_s=10)
        await EndpointStore(r, KS).create(receiver.url, ["claim.granted"], 3)
        await tell(r, [event(n) for n in range(300)])
        await r.aclose()
    asyncio.run(setup())
    receiver.mode = "slow"  # so the kill lands mid-run
    env = children.clean_env(FLASHCLAIM_REDIS_URL=server.url, FLASHCLAIM_NAMESPACE=NAMESPACE)
    args = ["webhooks", "--first-retry-s", "0.05", "--lease-ms", "1000"]
    first = children.start(args, env, tmp_path / "webhooks.log")
    deadline = time.monotonic() + DEADLINE_S
    while len(receiver.got) < 3:
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.02)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    receiver.mode = "ok"
    second = children.start(args, env, tmp_path / "webhooks.log")
    try:
        deadline = time.monotonic() + DEADLINE_S
        while len(set(receiver.ids())) < 300:
            assert time.monotonic() < deadline, f"{len(set(receiver.ids()))} of 300"
            time.sleep(0.05)
    finally:
        assert children.stop(second) == 0
    ids = receiver.ids()
    assert set(ids) == {f"claim.granted:k{n}" for n in range(300)}
    # repeated: at most the lane's batch not yet recorded at the kill, each with its id
    assert len(ids) - len(set(ids)) <= LANE_BATCH
