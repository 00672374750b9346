"""The background jobs' loop (runtime/poll_loop.py) stops when its service stops."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from flashclaim.runtime.poll_loop import poll_forever


async def test_a_loop_cancelled_as_it_is_woken_stops() -> None:
    """A wake-up and a cancellation in the same turn (a change that wakes the job just as the
    service shuts down): the cancellation wins. asyncio.wait_for on Python 3.11 returned the
    wake-up and dropped the cancellation, and the job ran on after its service."""
    wake = asyncio.Event()
    rounds = 0

    async def work() -> None:
        nonlocal rounds
        rounds += 1

    task = asyncio.create_task(poll_forever(work, wake, 60, "test job"))
    for _ in range(100):  # until the first round is done and the loop waits
        await asyncio.sleep(0)
        if rounds:
            break
    await asyncio.sleep(0)
    wake.set()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    assert task in done and task.cancelled(), f"still running after {rounds} rounds"


async def test_a_loop_stops_when_its_work_absorbed_the_cancellation() -> None:
    """The Redis client can swallow a cancellation that lands during a command (the command
    returns normally): the job must stop all the same, not outlive its service."""
    started = asyncio.Event()

    async def work() -> None:  # as redis-py's client does now and then
        started.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(60)

    task = asyncio.create_task(poll_forever(work, asyncio.Event(), 0.01, "test job"))
    await started.wait()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    assert task in done and task.cancelled()


async def test_a_failing_round_is_logged_and_the_job_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    """A bug in one round (not a store failure) must not end the job, nor, through the
    service's TaskGroup, every other background job."""
    rounds = 0
    done = asyncio.Event()

    async def work() -> None:
        nonlocal rounds
        rounds += 1
        if rounds == 1:
            raise ValueError("a bug")
        done.set()

    task = asyncio.create_task(poll_forever(work, asyncio.Event(), 0.01, "test job"))
    try:
        async with asyncio.timeout(5):
            await done.wait()
    finally:
        task.cancel()
    assert rounds >= 2 and "test job failed" in caplog.text
