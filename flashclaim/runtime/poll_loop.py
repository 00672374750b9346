"""A background job's loop: do the work, then wait for a wake-up or the next poll."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

log = logging.getLogger("flashclaim")


async def poll_forever(work: Callable[[], Awaitable[None]], wake: asyncio.Event, poll_s: float,
                       what: str) -> None:
    """Run `work` every `poll_s`, or at once when `wake` is set; a Redis error is logged and
    the next round tries again (the job's state is in Redis, so nothing is lost); any other
    error is logged with its traceback and the job goes on too (one failing job must not stop
    the others: they share the service's TaskGroup). The loop ends when its task is
    cancelled, also when the work absorbed the cancellation."""
    task = asyncio.current_task()
    while True:
        wake.clear()  # before the work: a wake-up during it is not lost
        try:
            await work()
        except RedisError as exc:
            log.warning("%s: %s", what, exc)
        except Exception:  # a bug: said loudly, and the job goes on (its state is in Redis)
            log.exception("%s failed; trying again at the next round", what)
        # redis-py's asyncio client can absorb a cancellation that lands during a command
        # (the command returns, the task stays marked as cancelling): measured on redis-py
        # 6.4, 7.4 and 8.2, about one cancel in ten during a ZRANGE. The job must still stop.
        if task is not None and task.cancelling():
            raise asyncio.CancelledError
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
        # that lands as the wait ends, and the job then outlives its service (seen as a test
        # whose event loop never closed).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(poll_s):
                await wake.wait()
