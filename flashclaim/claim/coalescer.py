"""Coalescing: the claims that arrive together for one campaign go to Redis in one call.

claim.lua decides a batch in arrival order, exactly as it would decide the same
claims one by one, so batching changes cost, never outcomes. A campaign has at
most one call in flight per process; claims that arrive meanwhile form the next
batch. A lone claim waits for no one: its call starts on the next loop turn.

When a call fails (a stalled server times out, a dead one refuses), the claims
queued behind it get the same error at once instead of a call and a timeout of
their own: a claim waits for at most the one call in flight when it arrived (one
Redis timeout), never for a chain of them.
"""

from __future__ import annotations

import asyncio

from flashclaim.claim.decision import ClaimDecision, ClaimRequest
from flashclaim.keys import KeySpace
from flashclaim.store.scripts import Scripts

# Upper bound of claims in one script call: keeps each call short on the server.
MAX_BATCH = 128

_Waiter = tuple[ClaimRequest, "asyncio.Future[ClaimDecision]"]


class ClaimCoalescer:
    def __init__(self, scripts: Scripts, keyspace: KeySpace, max_batch: int = MAX_BATCH) -> None:
        self._scripts = scripts
        self._keyspace = keyspace
        self._max_batch = max_batch
        self._queues: dict[str, list[_Waiter]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def decide(self, campaign_id: str, request: ClaimRequest) -> ClaimDecision:
        future: asyncio.Future[ClaimDecision] = asyncio.get_running_loop().create_future()
        queue = self._queues.get(campaign_id)
        if queue is None:  # no call in flight for this campaign: start one
            queue = self._queues[campaign_id] = []
            task = asyncio.create_task(self._drain(campaign_id, queue))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        queue.append((request, future))
        return await future

    async def _drain(self, campaign_id: str, queue: list[_Waiter]) -> None:
        keys = self._keyspace.campaign(campaign_id)
        try:
            while queue:
                batch = queue[: self._max_batch]
                del queue[: self._max_batch]
                try:
                    decisions = await self._scripts.claim(keys, [r for r, _ in batch])
                except Exception as exc:  # this batch, and all queued behind it, get the error
                    batch += queue
                    queue.clear()
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), decision in zip(batch, decisions, strict=True):
                    if not future.done():  # its client may have gone away
                        future.set_result(ClaimDecision.of(decision))
        finally:
            # No await between the last emptiness check and this: nothing can slip in.
            del self._queues[campaign_id]
            for _, future in queue:
                if not future.done():
                    future.cancel()
