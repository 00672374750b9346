"""`flashclaim webhooks`: the dispatcher as a process of its own, until SIGTERM or SIGINT.

A process of its own (not inside the ledger consumer): a receiver that answers slowly
holds a lane of this process, never the ledger's commits or the claims.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import uvloop

from flashclaim.keys import KeySpace
from flashclaim.settings import Settings
from flashclaim.store.connection import connect, redis_url_of
from flashclaim.webhooks.dispatcher import Dispatcher, Policy

log = logging.getLogger("flashclaim.webhooks")


async def _serve(settings: Settings, policy: Policy) -> None:
    redis = connect(settings, redis_url_of(settings))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    dispatcher = Dispatcher(redis, KeySpace(settings.namespace), policy)
    log.info("webhook dispatcher %s started", dispatcher.owner)
    try:
        await dispatcher.run(stop)
    finally:
        await redis.aclose()
    log.info("webhook dispatcher stopped: %d deliveries", dispatcher.delivered)


def run_webhooks(settings: Settings, policy: Policy) -> int:
    uvloop.run(_serve(settings, policy))
    return 0
