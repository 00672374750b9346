"""Quotes in a process of their own: the ledger read, the rules, the search and the encoding.

A quote for a user with many coupons and a long cart is a millisecond or more of Python.
On the service's event loop it would hold up the claims; on a thread it competes with the
loop for the GIL, which changes hands only every few milliseconds, and a quote then takes
tens (docs/benchmarks.md, "The quote"). In a process of its own it shares nothing with the
claims but the CPU. The process starts with the first quote (a service that never quotes
never pays for it) and keeps one ledger connection.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from flashclaim.checkout.orders import held_of
from flashclaim.checkout.quote import Cart
from flashclaim.errors import unavailable
from flashclaim.ledger.db import Ledger, LedgerUnavailable, open_ledger
from flashclaim.runtime.lifeline import tie_to
from flashclaim.settings import Settings
from flashclaim.web.order_answers import quote_bytes

_ledger: list[Ledger] = []  # in the worker process: its one connection, once opened


def _quote(dsn: str | None, data_dir: str, user_id: str, cart: Cart, now_ms: int) -> bytes:
    """In the worker process: the user's coupons from the ledger, quoted and encoded."""
    if not _ledger:
        ledger = open_ledger(dsn, Path(data_dir))
        ledger.migrate()  # a ledger no consumer has written yet is empty, not an error
        _ledger.append(ledger)
    return quote_bytes(user_id, held_of(_ledger[0], user_id), cart, now_ms)


class QuoteWorker:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        # spawn, not fork: the service's process runs an event loop and threads
        self._pool = ProcessPoolExecutor(max_workers=1,
                                         mp_context=multiprocessing.get_context("spawn"),
                                         initializer=tie_to, initargs=(os.getpid(),))
        # (it dies with this process, also on a kill -9, as every child of serve)

    async def quote(self, user_id: str, cart: Cart, now_ms: int) -> bytes:
        s = self._settings
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._pool, _quote, s.ledger_dsn, str(s.data_dir), user_id, cart, now_ms)
        except LedgerUnavailable:
            raise unavailable("The ledger database is unavailable; try again shortly.") from None

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
